"""The main job: all three probes on one dataset (the embedded digits by default), in one report.

``nnprobe demo`` runs offline in about two minutes on two CPU cores:

1. trains an MLP while :class:`~nnprobe.probes.margin.MarginCallback` watches the last layer converge to the
   max-margin SVM, then re-initialises and retrains the head on frozen features;
2. trains a second MLP with a 2-D penultimate layer on two classes and draws NN and SVM boundaries;
3. records the activation codes of the first MLP (determinism, categorisation);
4. trains a base MLP on half the data with snapshots, and a GradNet per snapshot on the other half.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

from nnprobe.io import write_json_atomic
from nnprobe.report.document import Report


def _spec(dataset, **options) -> dict:
    return {"name": "mlp", "input_shape": list(dataset.input_shape), "num_classes": dataset.num_classes, "options": options}


def run_demo(out_dir: str | Path, *, data: str = "digits", data_dir=None, epochs: int = 40, seed: int = 0,
             device: str = "auto", progress: bool = True, echo: Callable[[str], None] = print) -> dict:
    """Run the three probes on ``data`` and write ``report.md``/``report.html`` and ``demo.json`` to ``out_dir``.

    >>> summary = run_demo("runs/demo")   # doctest: +SKIP
    >>> summary["margin"]["cosine_to_svm"]  # doctest: +SKIP
    """
    from nnprobe.data import load_dataset
    from nnprobe.models import build_from_spec
    from nnprobe.probes.codes import measure_codes
    from nnprobe.probes.gradspace import GradientConfig, GradNetConfig, run_gradnet_study
    from nnprobe.probes.margin import MarginCallback, probe_margin, retrain_head
    from nnprobe.report.codes_plots import plot_categorisation
    from nnprobe.report.gradnet_plots import plot_learning_curves, plot_snapshot_table
    from nnprobe.report.margin_plots import save_convergence, save_feature_boundaries
    from nnprobe.training import TrainConfig, train

    out = Path(out_dir)
    figs = out / "figures"
    start = time.perf_counter()
    ds = load_dataset(data, data_dir=data_dir, seed=seed)
    report = Report(f"nnprobe demo: three probes on {ds.name}")
    report.text(f"Dataset `{ds.name}`: {ds.n_train} training and {ds.n_test} test examples, {ds.num_classes} classes, "
                f"input shape {ds.input_shape}. Every number below was measured in this run (seed {seed}).")
    # constant learning rate: the drift towards the max-margin direction stops when a schedule decays to zero
    cfg = TrainConfig(epochs=epochs, batch_size=64, lr=0.05, schedule="constant", seed=seed, device=device,
                      progress=progress)

    # 1. max-margin probe, over training and after retraining the head
    echo(f"[1/4] training an MLP (2 x 128 ReLU) on {ds.name} for {epochs} epochs, margin probe watching ...")
    spec = _spec(ds, width=128, depth=2)
    model = build_from_spec(spec, seed)
    multi = "crammer_singer" if ds.num_classes > 2 else "ovr"
    cb = MarginCallback(log_spaced=6, multi_class=multi)
    run = train(model, ds, cfg, callbacks=[cb], out_dir=out / "mlp", model_spec=spec)
    final = cb.results[-1] if cb.results and cb.results[-1].epoch == run.final["epoch"] else probe_margin(model, ds, multi_class=multi)
    retrained = retrain_head(model, ds, epochs=300, seed=seed, multi_class=multi)
    echo(f"      test accuracy {run.final['test_accuracy']:.4f}; cosine(NN, SVM) {final.cosine_to_svm:.4f}, "
         f"test agreement {final.test_agreement:.4f}; retrained head cosine {retrained.retrained.cosine_to_svm:.4f}")
    report.heading("1. Max-margin probe (Li, Ding & Gao)")
    report.text("Does the last linear layer point where the max-margin linear SVM on the penultimate features points? "
                "The SVM is the hard-margin multi-class (Crammer-Singer) SVM with free intercepts, the max-margin problem "
                "that gradient descent on cross-entropy approaches; cosines are per class and averaged. The approach "
                "is logarithmic in the number of steps: the curve rises steadily rather than jumping.")
    report.table([{"head": "jointly trained", **retrained.joint.summary()},
                  {"head": "re-initialised, retrained alone", **retrained.retrained.summary()}],
                 columns=["head", "cosine_to_svm", "test_agreement", "nn_test_accuracy", "svm_test_accuracy",
                          "svm_train_error", "nn_weight_norm"])
    report.figure(save_convergence(figs / "margin_convergence.png", cb.results), "Last layer vs SVM over training")

    echo("[2/4] a 2-D penultimate layer on two classes, NN and SVM boundaries ...")
    pair = load_dataset(f"{data.split(':')[0]}:0,1", data_dir=data_dir, seed=seed)
    spec2 = _spec(pair, width=64, depth=1, feature_dim=2)
    model2 = train(build_from_spec(spec2, seed), pair, TrainConfig(epochs=4 * epochs, batch_size=64, lr=0.05, seed=seed,
                                                          schedule="constant", device=device, progress=progress)).model
    result2 = probe_margin(model2, pair)
    from nnprobe.probes.margin import extract_features

    feats = extract_features(model2, pair.x_train)
    path2, disagreement = save_feature_boundaries(figs / "margin_boundaries_2d.png", result2, feats, pair.y_train,
                                                  class_names=pair.class_names)
    echo(f"      cosine(NN, SVM) {result2.cosine_to_svm:.4f}, test agreement {result2.test_agreement:.4f}, "
         f"grid disagreement {disagreement:.4f}")
    report.table([{"data": pair.name, **result2.summary(), "grid_disagreement": disagreement}],
                 columns=["data", "cosine_to_svm", "test_agreement", "svm_margin", "nn_offset_from_svm",
                          "nn_offset_from_midpoint", "grid_disagreement"])
    report.figure(path2, "2-D penultimate space: NN regions, SVM regions and margins, overlay")

    # 2. activation codes of the first model
    echo("[3/4] activation codes of the trained MLP ...")
    codes = measure_codes(model, ds, seed=seed)
    echo(f"      redundancy ratio train {codes.determinism.redundancy_ratio_train:.4f}; "
         f"K-NN test accuracy {codes.categorisation.knn_test_accuracy:.4f}")
    report.heading("2. Activation codes (He, Lei, Ji & Tao)")
    report.text("The on/off pattern of all ReLUs is the input's code. Redundancy ratio: (n - distinct codes) / n.")
    report.table(codes.summary_rows(), columns=["measure", "train", "test"])
    report.figure(plot_categorisation(codes.to_dict(), figs / "codes_categorisation.png"), "Classifiers on the codes")

    # 3. GradNet
    echo("[4/4] GradNet on per-sample gradients of base-network snapshots ...")
    spec3 = _spec(ds, width=64, depth=2)
    snapshots = [1, 3, max(4, epochs // 4)]
    study = run_gradnet_study(ds, lambda: build_from_spec(spec3, seed),
                              TrainConfig(epochs=snapshots[-1], batch_size=64, lr=0.01, seed=seed, device=device,
                                          progress=progress),
                              snapshots, GradientConfig(percent=20.0, seed=seed),
                              GradNetConfig(structure="10+10+10", epochs=30, seed=seed))
    for row in study.rows():
        echo(f"      epoch {row['epoch']}: base {row['base_test_accuracy']:.4f}  GradNet {row['gradnet_test_accuracy']:.4f}")
    report.heading("3. Gradient space: GradNet vs the base network")
    report.text("A base MLP is trained on half of the training set; at each snapshot a block-structured GradNet is "
                "trained on per-sample gradients of the other half and tested by summing its outputs over all "
                "candidate labels.")
    report.table(study.rows(), columns=["epoch", "base_test_accuracy", "gradnet_test_accuracy", "gain", "gradient_dim"])
    study_dict = study.to_dict()
    report.figure(plot_snapshot_table(study_dict, figs / "gradnet_snapshots.png"), "Base vs GradNet accuracy per snapshot")
    report.figure(plot_learning_curves(study_dict, figs / "gradnet_curves.png"), "Learning curves")

    seconds = time.perf_counter() - start
    report.text(f"Total time {seconds:.0f} s.")
    summary = {"dataset": ds.summary(), "train": run.final, "margin": final.summary(),
               "margin_retrained": retrained.retrained.summary(), "margin_2d": {**result2.summary(), "grid_disagreement": disagreement},
               "codes": codes.to_dict(), "gradnet": study.rows(), "seconds": seconds}
    write_json_atomic(out / "demo.json", summary)
    md, page = report.write(out)
    echo(f"report: {page}  ({seconds:.0f} s)")
    return summary
