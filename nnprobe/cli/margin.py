"""``nnprobe margin`` and ``nnprobe reproduce margin``: the last layer against the max-margin SVM.

Li, Ding & Gao, "On the decision boundary of deep neural networks" (arXiv 1808.05385). Thin: parses flags,
trains (or loads a checkpoint), calls :mod:`nnprobe.probes.margin`, writes JSON, figures and the report.
"""

from __future__ import annotations

import time
import warnings
from pathlib import Path

import click

from nnprobe.cli.common import data_options, model_options, out_option, pass_opts, train_options
from nnprobe.errors import NNProbeError

PAPER = 'Li, Ding & Gao, "On the decision boundary of deep neural networks" (arXiv 1808.05385)'
TABLE_COLUMNS = ["experiment", "mode", "head", "cosine_to_svm", "test_agreement", "nn_test_accuracy",
                 "svm_test_accuracy", "svm_train_error", "svm_margin", "nn_min_margin", "nn_bias_scaled", "svm_bias",
                 "nn_offset_from_svm", "nn_offset_from_midpoint", "grid_disagreement", "dead_feature_dims"]


def _row(name: str, result, head: str = "joint", grid=None) -> dict:
    """One table row from a :class:`MarginResult`."""
    row = {"experiment": name, "mode": result.mode, "head": head, **result.summary(), "grid_disagreement": grid,
           "dead_feature_dims": result.extra.get("dead_feature_dims")}
    if result.mode != "binary":
        row["cosine_per_class"] = ", ".join(f"{r.cosine_to_svm:.4f}" for r in result.rows)
    return row


def run_margin(opts: dict, model=None, dataset=None, name: str | None = None) -> dict:
    """Train (with the margin callback) or load, probe, retrain the head, plot; returns rows + paths.

    Writes ``margin.json``, ``boundaries.png`` (2-D features), ``convergence.png`` and ``retrain.png``.
    """
    from nnprobe.cli.common import load_data, model_spec, train_config
    from nnprobe.models import build_from_spec
    from nnprobe.io import write_json_atomic
    from nnprobe.probes.margin import MarginCallback, extract_features, probe_margin, retrain_head
    from nnprobe.report.margin_plots import save_convergence, save_feature_boundaries
    from nnprobe.training import load_checkpoint, train

    out = Path(opts["out"])
    name = name or opts.get("data", "run")
    C, modes = opts.get("C"), _modes(opts.get("multi_class", "ovr"))
    callback = None
    if model is None:
        dataset = dataset or load_data(opts)
        if opts.get("checkpoint"):
            model, _ = load_checkpoint(opts["checkpoint"])
        else:
            spec = model_spec(opts, dataset)
            if opts.get("live_seed"):
                opts["seed"] = live_seed(spec, dataset, opts.get("seed", 0), opts.get("head"))
            model = build_from_spec(spec, opts.get("seed", 0))
            every, log_n = opts.get("every"), opts.get("log_spaced")
            callback = MarginCallback(every=None if log_n else (every or 1), log_spaced=log_n, C=C, multi_class=modes[0],
                                      head_name=opts.get("head"))
            train(model, dataset, train_config(opts), callbacks=[callback], out_dir=out / "train", model_spec=spec)
    if dataset.num_classes == 2:
        modes = modes[:1]  # two classes: one binary SVM whatever the multi-class choice
    rows, files, results = [], {}, {}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for mode in modes:
            results[mode] = probe_margin(model, dataset, C=C, multi_class=mode, head_name=opts.get("head"))
    notes = sorted({str(w.message) for w in caught})
    first = results[modes[0]]
    f_train = extract_features(model, dataset.x_train, head_name=opts.get("head"))
    for mode, result in results.items():
        grid = None
        if result.feature_dim == 2:
            path = out / f"boundaries_{mode}.png" if len(modes) > 1 else out / "boundaries.png"
            files[f"boundaries_{mode}"], grid = save_feature_boundaries(
                path, result, f_train, dataset.y_train, class_names=dataset.class_names,
                title=f"{name}: penultimate features, NN head vs SVM ({_mode_label(mode, result)})")
        rows.append(_row(name, result, "joint", grid))
    if callback is not None and len(callback.results) > 1:
        files["convergence"] = save_convergence(out / "convergence.png", callback.results,
                                                title=f"{name}: last layer vs SVM during training")
    payload = {"paper": PAPER, "dataset": dataset.summary(), "checkpoint": opts.get("checkpoint"), "warnings": notes,
               "results": {m: r.to_dict() for m, r in results.items()},
               "curves": callback.curves() if callback is not None else None}
    if opts.get("retrain_epochs", 0) > 0:
        rr = retrain_head(model, dataset, epochs=opts["retrain_epochs"], C=C, multi_class=modes[0],
                          head_name=opts.get("head"), seed=opts.get("seed", 0))
        grid = None
        if first.feature_dim == 2:
            files["retrain"], grid = save_feature_boundaries(
                out / "retrain.png", rr.retrained, f_train, dataset.y_train, class_names=dataset.class_names,
                extra_heads={"NN head, jointly trained": (first.nn_coef, first.nn_intercept)}, nn_label="retrained head",
                title=f"{name}: re-initialised head retrained on frozen features vs SVM")
        rows.append(_row(name, rr.retrained, "retrained", grid))
        payload["retrain"] = rr.to_dict()
    payload["rows"] = rows
    write_json_atomic(out / "margin.json", payload)
    return {"rows": rows, "files": files, "results": results, "notes": notes, "callback": callback}


def live_seed(spec: dict, dataset, start: int = 0, head_name=None, tries: int = 20) -> int:
    """First seed from ``start`` whose initialised model has every penultimate unit active on some input.

    With a 2-unit ReLU feature layer a unit is often dead for *all* inputs at initialisation (it then gets no
    gradient and the feature space is really 1-D). This check looks only at the untrained model, never at
    the outcome of training.
    """
    from nnprobe.models import build_from_spec
    from nnprobe.probes.margin import extract_features

    x = dataset.x_train[:512]
    for seed in range(start, start + tries):
        if bool((extract_features(build_from_spec(spec, seed), x, head_name=head_name) != 0).any(0).all()):
            return seed
    raise NNProbeError(f"no seed in {start}..{start + tries - 1} gives a model whose feature units are all active",
                       "use a wider --feature-dim or another --activation")


def _modes(multi_class: str) -> list[str]:
    return ["ovr", "crammer_singer"] if multi_class == "both" else [multi_class]


def _mode_label(mode: str, result) -> str:
    return "binary" if result.mode == "binary" else {"ovr": "one-vs-rest", "crammer_singer": "Crammer-Singer"}[mode]


def _echo_table(rows: list[dict]) -> None:
    cols = [c for c in TABLE_COLUMNS if any(r.get(c) is not None for r in rows)]
    fmt = lambda v: f"{v:.4f}" if isinstance(v, float) else ("-" if v is None else str(v))  # noqa: E731
    widths = [max(len(c), *(len(fmt(r.get(c))) for r in rows)) for c in cols]
    click.echo("  ".join(c.rjust(w) for c, w in zip(cols, widths)))
    for r in rows:
        click.echo("  ".join(fmt(r.get(c)).rjust(w) for c, w in zip(cols, widths)))


def margin_options(fn):
    for deco in reversed([
        click.option("--checkpoint", type=click.Path(dir_okay=False, exists=True), default=None,
                     help="Probe this checkpoint instead of training (its dataset flags must match)."),
        click.option("--C", "C", type=float, default=None, help="SVM soft-margin C (default: hard margin; the reference used 1)."),
        click.option("--multi-class", type=click.Choice(["ovr", "crammer_singer", "both"]), default="ovr", show_default=True,
                     help="SVM for more than two classes."),
        click.option("--every", type=int, default=None, help="Measure every N epochs during training (default 1)."),
        click.option("--log-spaced", type=int, default=None, help="Measure at about N log-spaced epochs instead."),
        click.option("--retrain-epochs", type=int, default=500, show_default=True,
                     help="Re-initialise the head and retrain it alone for N epochs on frozen features (0: skip)."),
        click.option("--head", default=None, help="Name of the final linear layer (default: the last nn.Linear)."),
        click.option("--live-seed", is_flag=True,
                     help="From --seed on, use the first seed whose untrained model has no all-dead feature unit."),
    ]):
        fn = deco(fn)
    return fn


# ---- reference experiments ------------------------------------------------------------------------------------

def _experiments(quick: bool) -> list[dict]:
    """The reference experiments (design note, "Reference experiments"), sized for a CPU with ``quick``."""
    q = quick
    base = dict(samples_per_class=None, label_noise=0.0, normalize="standard", seed=0, momentum=0.9, weight_decay=0.0,
                device="auto", snapshot_epochs="", progress=False, width=None, depth=None, growth=None, fc_width=None,
                activation=None, dropout=None, every=None, log_spaced=None, C=None, retrain_epochs=0, head=None,
                checkpoint=None, multi_class="ovr", live_seed=False)
    return [
        dict(base, key="blobs", title="Simulated 2-D blobs, MLP 2-200-2-2", data="synthetic:blobs", normalize="none",
             model="mlp", width=200 if q else 2000, depth=1, feature_dim=2, epochs=100 if q else 400, batch_size=512,
             optimizer="momentum", lr=0.05, schedule="constant", log_spaced=10, retrain_epochs=1000),
        dict(base, key="blobs3", title="Simulated 3-class blobs, MLP 2-200-2-3", data="synthetic:blobs3",
             model="mlp", width=200 if q else 2000, depth=1, feature_dim=2, epochs=300 if q else 1000, batch_size=512,
             optimizer="adam", lr=1e-3, schedule="constant", log_spaced=10, multi_class="both"),
        dict(base, key="mnist01", title="MNIST 0 vs 1, ResNet -> FC 200 -> FC 2 ReLU -> linear", data="mnist:0,1",
             model="resnet", depth=8, width=16 if q else 32, fc_width=200, feature_dim=2,
             samples_per_class=None, epochs=6 if q else 15, batch_size=128, optimizer="adam",
             lr=1e-3, schedule="cosine", log_spaced=4 if q else 8, retrain_epochs=1000, needs="mnist", live_seed=True),
        dict(base, key="cifar02", title="CIFAR-10 airplane vs bird, DenseNet -> FC 2 ReLU -> linear",
             data="cifar10:0,2", model="densenet", depth=10 if q else 40, growth=8 if q else 12, fc_width=200,
             feature_dim=2, samples_per_class=1000 if q else None, epochs=4 if q else 60, batch_size=128,
             optimizer="adam", lr=1e-3, schedule="cosine", log_spaced=6, retrain_epochs=1000, needs="cifar10", live_seed=True),
        dict(base, key="mnist012", title="MNIST 0, 1, 2, " + ("ResNet-8" if q else "DenseNet-40") + " -> FC 200 -> FC 2 SELU "
             "-> linear", data="mnist:0,1,2", model="resnet" if q else "densenet", depth=8 if q else 40,
             width=16 if q else None, growth=None if q else 12, fc_width=200, feature_dim=2, activation="selu",
             samples_per_class=800 if q else None, epochs=6 if q else 40, batch_size=64 if q else 128,
             optimizer="adam", lr=1e-3, schedule="cosine", log_spaced=6, multi_class="both", retrain_epochs=100,
             needs="mnist", note="With ReLU at the 2-unit feature layer, 3-class training collapsed two classes onto "
             "one ray on this CPU budget (train accuracy 0.66 after 25 epochs); SELU, one of the reference's "
             "activations, trains to > 0.99."),
    ]


def _available(name: str, data_dir) -> str | None:
    """None when dataset ``name`` can be loaded, else the reason."""
    from nnprobe.data import load_dataset

    spec = {"mnist": "mnist:0,1", "cifar10": "cifar10:0,2"}[name]
    try:
        load_dataset(spec, data_dir=data_dir, samples_per_class=1, test_samples_per_class=1)
        return None
    except NNProbeError as exc:
        return exc.problem


def _command(opts: dict) -> str:
    """The ``nnprobe margin`` command line equivalent to one experiment's settings."""
    flags = ["data", "normalize", "samples_per_class", "model", "depth", "width", "growth", "fc_width", "feature_dim",
             "activation", "epochs", "batch_size", "optimizer", "lr", "schedule", "seed", "log_spaced", "multi_class",
             "retrain_epochs"]
    parts = [f"--{f.replace('_', '-')} {opts[f]}" for f in flags if opts.get(f) is not None]
    return "nnprobe margin " + " ".join(parts)


def reproduce_margin(out: Path, quick: bool, data_dir=None, only: tuple[str, ...] = ()) -> tuple[Path, Path]:
    """Run the reference experiments and write one Markdown + HTML report into ``out``."""
    from nnprobe.report.document import Report

    report = Report("Max-margin probe: the last layer vs the max-margin SVM")
    report.text(f"Reproduces the experiments of {PAPER} with nnprobe's measurements "
                f"({'--quick: CPU-sized settings' if quick else 'full settings'}). Measured numbers, not copied ones. "
                "Cosines compare NN weight vectors (binary: `w_1 - w_0`; multi-class: centred rows) with the SVM's; "
                "margins and offsets are in feature-space units, offsets in units of the SVM margin (positive: towards "
                "the positive class), measured at the midpoint of the class means.")
    all_rows, start = [], time.perf_counter()
    for exp in _experiments(quick):
        if only and exp["key"] not in only:
            continue
        report.heading(exp["title"])
        missing = _available(exp["needs"], data_dir) if exp.get("needs") else None
        if missing:
            report.text(f"Skipped: {missing}. Put the files under `--data-dir` or `$NNPROBE_DATA` to run it.")
            click.echo(f"[{exp['key']}] skipped: {missing}")
            continue
        t0 = time.perf_counter()
        opts = dict(exp, data_dir=data_dir, out=str(out / exp["key"]))
        done = run_margin(opts, name=exp["key"])
        report.text(f"`{_command(opts)}` "
                    + (f"(seed {opts['seed']}: the first whose untrained feature units are all active) " if exp["live_seed"] else "")
                    + f"({time.perf_counter() - t0:.0f} s on this machine).")
        if exp.get("note"):
            report.text(exp["note"])
        if done["notes"]:
            report.text("Warnings: " + "; ".join(done["notes"]))
        report.table(done["rows"], columns=[c for c in TABLE_COLUMNS + ["cosine_per_class"]
                                            if any(r.get(c) is not None for r in done["rows"])])
        for key, path in done["files"].items():
            report.figure(path, {"convergence": "Cosine to the SVM, 1 - cosine and head weight norm against epoch.",
                                 "retrain": "Head re-initialised and retrained on the frozen features (solid black), "
                                            "the jointly trained head (dash-dot) and the SVM (dashed, margins dotted)."
                                 }.get(key, "Training features, decision regions of the NN head and of the SVM, and "
                                            "the overlay (NN solid, SVM dashed, SVM margin dotted)."))
        all_rows += done["rows"]
        click.echo(f"[{exp['key']}] done in {time.perf_counter() - t0:.0f} s")
    report.heading("All measurements")
    report.table(all_rows, columns=[c for c in TABLE_COLUMNS if any(r.get(c) is not None for r in all_rows)])
    report.text(f"Total time {time.perf_counter() - start:.0f} s.")
    md, html = report.write(out)
    _echo_table(all_rows)
    return md, html


def register(main, reproduce) -> None:
    @main.command("margin")
    @data_options(default="mnist:0,1")
    @model_options(default="resnet")
    @train_options(epochs=5, lr=0.05, batch_size=128)
    @margin_options
    @out_option(default="runs/margin")
    @pass_opts
    def margin_cmd(opts):
        """Train (or load) a classifier and compare its last layer with the max-margin SVM on its penultimate
        features: cosine, margins, bias and offsets, test agreement, curves over training, retrained head."""
        done = run_margin(opts)
        for result in done["results"].values():
            click.echo(repr(result))
        _echo_table(done["rows"])
        for w in done["notes"]:
            click.echo(f"warning: {w}", err=True)
        click.echo(f"wrote {Path(opts['out']) / 'margin.json'}" + "".join(f", {p}" for p in done["files"].values()))

    @reproduce.command("margin")
    @click.option("--quick", is_flag=True, help="CPU-sized settings (under 10 minutes on 2 cores).")
    @click.option("--out", type=click.Path(file_okay=False), default="runs/reproduce-margin", show_default=True)
    @click.option("--data-dir", type=click.Path(file_okay=False), envvar="NNPROBE_DATA", default=None,
                  help="Directory with MNIST / CIFAR-10 files [env NNPROBE_DATA].")
    @click.option("--only", multiple=True, help="Run only these experiments (blobs, blobs3, mnist01, cifar02, mnist012).")
    def reproduce_margin_cmd(quick, out, data_dir, only):
        """Reference experiments of Li, Ding & Gao (2018): simulated clusters, MNIST 0/1 ResNet, CIFAR-10 0/2 and
        MNIST 0/1/2 DenseNet, with the retrained-head experiment; writes report.md and report.html."""
        md, html = reproduce_margin(Path(out), quick, data_dir, tuple(only))
        click.echo(f"wrote {md} and {html}")
