"""Plans as data: the runs behind ``nnprobe demo`` and ``nnprobe reproduce`` (the papers' experiments).

A plan entry is ``{"key", "title", "probe", "params", ...}``: ``params`` are the flat settings of one
:class:`~nnprobe.experiments.Run` (anything not given takes the probe's default), the other keys describe
it in the report (``needs``: the dataset whose files must be present; ``note``: a sentence about the setting,
not about its outcome).

>>> [e["key"] for e in margin_plan(quick=True)]
['blobs', 'blobs3', 'mnist01', 'mnist01_32d', 'cifar02', 'mnist012', 'mnist012_selu']
>>> runs = [plan_run(e) for e in demo_plan()]; [r.probe for r in runs]
['margin', 'margin', 'codes', 'gradnet']

Imports no torch (``nnprobe reproduce --help`` reads the protocol and sweep names here); :func:`plan_run`
reaches :class:`~nnprobe.experiments.Run` through the lazy ``nnprobe.experiments``.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Sequence
from typing import Any

from nnprobe import experiments
from nnprobe.errors import NNProbeError
from nnprobe.experiments.seeds import seed_values
from nnprobe.reproduce.common import seed_count

SCALE = "scale"  # the real-scale margin settings (margin_scale_plan): run only when selected with --only
MIDPOINT = "midpoint"  # the key of the margin midpoint study (margin_midpoint_plan) among the experiments
GRADNET_PROTOCOLS = ("nnprobe", "reference")  # gradnet_plan, gradnet_reference_plan
CODES_PROTOCOLS = ("nnprobe", "reference")  # the sweeps and phase chart; He et al.'s own (codes_reference_plan)
CODES_REFERENCE_SWEEPS = ("width", "epochs", "samples", "nnprobe_width")  # codes_reference_plan + nnprobe's widths


def plan_run(entry: dict[str, Any], **overrides: Any) -> experiments.Run:
    """The :class:`~nnprobe.experiments.Run` of a plan entry (``overrides``: flat settings such as ``data_dir``)."""
    return experiments.Run.from_flat(
        entry["probe"], {**entry["params"], **{k: v for k, v in overrides.items() if v is not None}}
    )


MNIST012_QUICK_EPOCHS = 20  # the ReLU row of MNIST 0/1/2, quick: measured over 5 seeds in docs/margin.md
MNIST012_QUICK_BATCH = 8
# seeds of one setting: seed, seed + 100, ... (a 2-D run may move to the next live seed), as --seeds numbers them

# The headline setting of the direction claim (README, docs/margin.md): 32-D ReLU features of an MLP on MNIST 0 vs 1,
# momentum SGD at a constant rate, trained until the features are separable and the head has had time to turn.
# The perceptron null is well below 0.99 on these features, so the cosine says something; in 2-D it is near 1.
HEADLINE_MARGIN = dict(
    data="mnist:0,1",
    model="mlp",
    width=256,
    depth=2,
    feature_dim=32,
    epochs=150,
    batch_size=128,
    optimizer="momentum",
    lr=0.05,
    momentum=0.9,
    schedule="constant",
)
REFERENCE_MOMENTUM = "momentum SGD (lr 1e-4, 0.9) in the reference's MNIST 0 vs 1 run"


def seed_runs(entry: dict[str, Any], seeds: int) -> list[dict[str, Any]]:
    """The plan entries of ``seeds`` training seeds of ``entry``: the entry itself (its own seed, default 0), then
    copies keyed ``<key>-seed<S>`` with seed ``S`` = seed + 100, + 200, ... (``entry["seeded"]`` false: the entry
    alone, one seed). The copies skip the re-initialised head's retraining (``retrain_epochs=0``): it comes after
    training, so the jointly trained head that the verdict reads is the same, and the first seed keeps the figure.

    >>> [(e["key"], e["params"]["seed"]) for e in seed_runs({"key": "a", "seeded": True, "params": {}}, 3)]
    [('a', 0), ('a-seed100', 100), ('a-seed200', 200)]
    """
    first = dict(entry, params={"seed": 0, **entry["params"]})
    if not entry.get("seeded") or seeds <= 1:
        return [first]
    return [first] + [
        dict(entry, key=f"{entry['key']}-seed{s}", params=dict(entry["params"], seed=s, retrain_epochs=0))
        for s in seed_values(first["params"]["seed"], seeds)[1:]
    ]


def margin_plan(quick: bool) -> list[dict[str, Any]]:
    """The reference experiments of the max-margin paper (design note, "Reference experiments"), CPU-sized with
    ``quick``, and nnprobe's headline setting of the direction claim (``mnist01_32d``). Entries marked ``seeded``
    carry a verdict and run over seeds (:func:`seed_runs`); they train with momentum SGD, the reference's optimizer
    (Adam's implicit bias is not the l2 max margin), and Adam rows are labelled extras."""
    q = quick
    adam = " Adam is not the reference's optimizer (its implicit bias is not the l2 max margin): an extra row."
    return [
        {
            "key": "blobs",
            "title": "Simulated 2-D blobs, MLP 2-200-2-2",
            "probe": "margin",
            "seeded": True,
            "note": "Momentum SGD (0.05, 0.9) at a constant rate, batch 512; the reference: full-batch gradient "
            "descent at lr 1e-4 for up to 100k steps.",
            "params": dict(
                data="synthetic:blobs",
                normalize="none",
                model="mlp",
                width=200 if q else 2000,
                depth=1,
                feature_dim=2,
                epochs=100 if q else 400,
                batch_size=512,
                optimizer="momentum",
                lr=0.05,
                schedule="constant",
                log_spaced=10,
                retrain_epochs=1000,
            ),
        },
        {
            "key": "blobs3",
            "title": "Simulated 3-class blobs, MLP 2-200-2-3 (Adam, extra row)",
            "probe": "margin",
            "note": adam.strip(),
            "params": dict(
                data="synthetic:blobs3",
                model="mlp",
                width=200 if q else 2000,
                depth=1,
                feature_dim=2,
                epochs=300 if q else 1000,
                batch_size=512,
                optimizer="adam",
                lr=1e-3,
                schedule="constant",
                log_spaced=10,
                multi_class="both",
                retrain_epochs=0,
            ),
        },
        {
            "key": "mnist01",
            "title": "MNIST 0 vs 1, ResNet -> FC 200 -> FC 2 ReLU -> linear",
            "probe": "margin",
            "needs": "mnist:0,1",
            "seeded": True,
            "note": f"Momentum SGD (0.01, 0.9) at a constant rate, batch 32 (4x the steps of batch 128 for the same "
            f"compute: at batch 128 and 6 epochs 4 training points stayed misclassified in feature space); the "
            f"reference: {REFERENCE_MOMENTUM}, which is too slow for a CPU budget. In a 2-D feature space almost "
            "any separator lines up with the "
            "SVM, so the perceptron null is near 1 and the direction claim is not informative here: this row is "
            "the reference's picture; the 32-D row below tests the claim.",
            "params": dict(
                data="mnist:0,1",
                model="resnet",
                depth=8,
                width=16 if q else 32,
                fc_width=200,
                feature_dim=2,
                epochs=6 if q else 15,
                batch_size=32,
                optimizer="momentum",
                lr=0.01,
                schedule="constant",
                log_spaced=4 if q else 8,
                retrain_epochs=1000,
            ),
        },
        {
            "key": "mnist01_32d",
            "title": "MNIST 0 vs 1, MLP 784-256-256 -> 32-D ReLU features -> linear (nnprobe's headline setting)",
            "probe": "margin",
            "needs": "mnist:0,1",
            "seeded": True,
            "note": f"The README's headline command. Momentum SGD (0.05, 0.9) at a constant rate, batch 128, "
            f"{100 if q else 150} epochs; the reference: {REFERENCE_MOMENTUM}. 32-D features, where the "
            "perceptron null stays well below 0.99, so a cosine near 1 is evidence.",
            "params": dict(
                HEADLINE_MARGIN,
                epochs=100 if q else HEADLINE_MARGIN["epochs"],
                log_spaced=8,
                retrain_epochs=0 if q else 500,
            ),
        },
        {
            "key": "cifar02",
            "title": "CIFAR-10 airplane vs bird, DenseNet -> FC 2 ReLU -> linear (Adam, extra row)",
            "probe": "margin",
            "needs": "cifar10:0,2",
            "note": adam.strip(),
            "params": dict(
                data="cifar10:0,2",
                model="densenet",
                depth=10 if q else 40,
                growth=8 if q else 12,
                fc_width=200,
                feature_dim=2,
                samples_per_class=1000 if q else None,
                epochs=4 if q else 60,
                batch_size=128,
                optimizer="adam",
                lr=1e-3,
                schedule="cosine",
                log_spaced=6,
                retrain_epochs=1000,
            ),
        },
        {
            "key": "mnist012",
            "title": "MNIST 0, 1, 2, " + ("CNN (2 conv) -> FC 64" if q else "DenseNet-40") + " -> FC 2 ReLU -> linear",
            "probe": "margin",
            "needs": "mnist:0,1,2",
            "seeded": True,
            "note": (
                "ReLU at the 2-unit feature layer, as in the reference; momentum SGD (the reference's optimizer) at a "
                f"constant rate ({0.01 if q else 1e-3}, 0.9; the reference: 1e-3, 0.9, batch 1024); compared with "
                "the multi-class max-margin (Crammer-Singer) SVM, the problem of the "
                "claim (one-vs-rest has no separable 'middle class vs rest' problem when three classes lie on three "
                "rays of the positive quadrant). "
                + (
                    f"A two-conv CNN -> FC 64 (no global pooling: with it the 2-unit layer is on or off for every "
                    f"input at initialisation and classes collapse onto one ray), batch {MNIST012_QUICK_BATCH}: the "
                    f"head converges in direction logarithmically in lr x steps, and its bias, an input of 1 next to "
                    f"features of size 40-70, converges slowest; {MNIST012_QUICK_EPOCHS} epochs of batch 8 give 4x "
                    f"the steps of batch 32."
                    if q
                    else "The reference's DenseNet-40 (growth 12) with no FC 200 layer, its optimizer and "
                    "batch size; needs a GPU."
                )
            ),
            "params": dict(
                data="mnist:0,1,2",
                model="cnn" if q else "densenet",
                depth=None if q else 40,
                channels=8 if q else None,
                width=64 if q else None,
                growth=None if q else 12,
                feature_dim=2,
                activation="relu",
                samples_per_class=800 if q else None,
                epochs=MNIST012_QUICK_EPOCHS if q else 1000,
                batch_size=MNIST012_QUICK_BATCH if q else 1024,
                optimizer="momentum",
                lr=0.01 if q else 1e-3,
                schedule="constant",
                seed=0,
                log_spaced=6,
                multi_class="crammer_singer",
                retrain_epochs=100,
                bias_penalised=True,
            ),
        },
        {
            "key": "mnist012_selu",
            "title": "MNIST 0, 1, 2, "
            + ("ResNet-8" if q else "DenseNet-40")
            + " -> FC 200 -> FC 2 SELU -> linear (Adam, extra row)",
            "probe": "margin",
            "needs": "mnist:0,1,2",
            "note": "SELU at the 2-unit feature layer (one of the reference's activations; the reference's MNIST 0/1/2 "
            "run used ReLU, the row above)." + adam,
            "params": dict(
                data="mnist:0,1,2",
                model="resnet" if q else "densenet",
                depth=8 if q else 40,
                width=16 if q else None,
                growth=None if q else 12,
                fc_width=200,
                feature_dim=2,
                activation="selu",
                samples_per_class=800 if q else None,
                epochs=6 if q else 40,
                batch_size=64 if q else 128,
                optimizer="adam",
                lr=1e-3,
                schedule="cosine",
                log_spaced=6,
                multi_class="both",
                retrain_epochs=100,
            ),
        },
    ]


# what the demo page says under each probe's verdict
DEMO_TEXT = {
    "margin": "Does the last linear layer point where the max-margin linear SVM on the penultimate features points? "
    "The SVM is the hard-margin multi-class (Crammer-Singer) SVM with free intercepts, the max-margin problem "
    "that gradient descent on cross-entropy approaches; cosines are per class and averaged. The approach "
    "is logarithmic in the number of steps: the curve rises steadily rather than jumping.",
    "codes": "The on/off pattern of all ReLUs is the input's code. Redundancy ratio: (n - distinct codes) / n.",
    "gradnet": "A base MLP is trained on half of the training set; at each snapshot a block-structured GradNet is "
    "trained on per-sample gradients of the other half and tested by summing its outputs over all "
    "candidate labels.",
}


def margin_scale_plan(quick: bool) -> list[dict[str, Any]]:
    """The max-margin claim at real scale (:mod:`nnprobe.reproduce.margin_scale`): all ten MNIST classes and a
    Fashion-MNIST subset, a CNN with 128-D penultimate features, momentum SGD at a constant rate, the curve at
    log-spaced epochs. ``quick``: a seeded 1,000 (MNIST) / 500 (Fashion-MNIST) training images per class, sized for
    about 15 minutes per seed on an idle 2-core CPU; full: all 60,000 MNIST images and 2,000 Fashion-MNIST images
    per class, about an hour per seed.

    >>> [(e["key"], e["params"]["samples_per_class"]) for e in margin_scale_plan(quick=True)]
    [('scale_mnist', 1000), ('scale_fashion', 500)]
    """
    common = dict(
        model="cnn",
        channels=16,
        feature_dim=128,
        optimizer="momentum",
        lr=0.05,
        momentum=0.9,
        batch_size=128,
        schedule="constant",
        log_spaced=8,
        retrain_epochs=0,
        live_seed=False,
    )
    return [
        {
            "key": "scale_mnist",
            "title": "MNIST, 10 classes, CNN, 128-D features",
            "probe": "margin",
            "needs": "mnist",
            "params": dict(common, data="mnist", samples_per_class=1000 if quick else None, epochs=40 if quick else 30),
        },
        {
            "key": "scale_fashion",
            "title": "Fashion-MNIST, 10 classes, CNN, 128-D features",
            "probe": "margin",
            "needs": "fashion-mnist",
            "params": dict(
                common, data="fashion-mnist", samples_per_class=500 if quick else 2000, epochs=40 if quick else 60
            ),
        },
    ]


def demo_plan(data: str = "digits", epochs: int = 40, seed: int = 0, device: str = "auto") -> list[dict[str, Any]]:
    """``nnprobe demo``: the three probes on one dataset (the embedded digits by default)."""
    common = dict(data=data, seed=seed, device=device, batch_size=64, lr=0.05, schedule="constant")
    mlp = dict(model="mlp", width=128, depth=2)
    pair = f"{data.split(':')[0]}:0,1"
    return [
        {
            "key": "margin",
            "title": "1. Max-margin probe (Li, Ding & Gao)",
            "probe": "margin",
            "text": DEMO_TEXT["margin"],
            "params": dict(
                common, **mlp, epochs=epochs, log_spaced=6, multi_class="crammer_singer", retrain_epochs=300
            ),
        },
        {
            "key": "margin_2d",
            "title": "A 2-D penultimate layer on two classes",
            "probe": "margin",
            "columns": [
                "experiment",
                "cosine_to_svm",
                "test_agreement",
                "svm_margin",
                "nn_offset_from_svm",
                "nn_offset_from_midpoint",
                "grid_disagreement",
            ],
            "note": "Leaky ReLU activations: with ReLU, one of the two feature units of this easy pair tends to die "
            "during training and the 2-D picture collapses onto one axis.",
            "params": dict(
                common,
                data=pair,
                model="mlp",
                width=64,
                depth=1,
                feature_dim=2,
                activation="leaky_relu",
                epochs=4 * epochs,
                log_spaced=None,
                retrain_epochs=0,
            ),
        },
        {
            "key": "codes",
            "title": "2. Activation codes (He, Lei, Ji & Tao)",
            "probe": "codes",
            "text": DEMO_TEXT["codes"],
            "note": "Same model settings and seed as the max-margin run, so the same trained MLP.",
            "params": dict(common, **mlp, epochs=epochs),
        },
        {
            "key": "gradnet",
            "title": "3. Gradient space: GradNet vs the base network",
            "probe": "gradnet",
            "text": DEMO_TEXT["gradnet"],
            "params": dict(
                common,
                model="mlp",
                width=64,
                depth=2,
                lr=0.01,
                schedule="cosine",
                epochs=max(4, epochs // 4),
                snapshot_epochs=f"1,3,{max(4, epochs // 4)}",
                percent=20.0,
                structure="10+10+10",
                gradnet_epochs=30,
                gradnet_weight_decay=0.0,
                gradnet_dropout=0.0,
            ),
        },
    ]


def gradnet_plan(quick: bool) -> list[dict[str, Any]]:
    """``nnprobe reproduce gradnet``: one snapshot study per dataset (``quick``: subsampled, ~15 CPU minutes)."""
    if quick:
        params = dict(
            samples_per_class=2000,
            test_samples_per_class=500,
            epochs=8,
            snapshot_epochs="1,2,4,8",
            channels=8,
            width=64,
            percent=2.0,
            fit_samples=1000,
            structure="5+25+25+10",
            gradnet_epochs=15,
        )
    else:
        params = dict(
            epochs=20,
            snapshot_epochs="1,2,5,10,20",
            channels=32,
            width=128,
            percent=1.0,
            fit_samples=2000,
            structure="5+25+100+10",
            gradnet_epochs=30,
        )
    common = dict(model="cnn", batch_size=64, optimizer="momentum", lr=0.01, schedule="constant", seed=0, **params)
    names = ["mnist", "fashion-mnist"] + ([] if quick else ["cifar10"])
    return [{"key": name, "title": name, "probe": "gradnet", "params": dict(common, data=name)} for name in names]


def per_seed(plan: list[dict[str, Any]], seeds: int) -> list[dict[str, Any]]:
    """Each entry of ``plan`` once per seed: seed ``s`` adds ``s`` to the entry's seed, is keyed
    ``<key>/seed<s>`` and carries ``group`` (the entry's key: the runs of one setting) and ``seed_index``.

    >>> [(e["key"], e["group"], e["params"]["seed"]) for e in per_seed(gradnet_plan(quick=True), 2)][:2]
    [('mnist/seed0', 'mnist', 0), ('mnist/seed1', 'mnist', 1)]
    """
    if isinstance(seeds, bool) or int(seeds) < 1:
        raise NNProbeError(f"seeds is {seeds}; it must be at least 1", "pass 1 or more seeds per setting")
    return [
        {
            **e,
            "key": f"{e['key']}/seed{s}",
            "group": e["key"],
            "seed_index": s,
            "params": {**e["params"], "seed": int(e["params"].get("seed", 0)) + s},
        }
        for e in plan
        for s in range(int(seeds))
    ]


# ---- activation codes: the factor sweeps and the phase chart ---------------------------------------------------
CODES_SWEEP_BASE = {
    "data": "mnist",
    "model": "mlp",
    "width": 100,
    "depth": 1,
    "epochs": 20,
    "samples_per_class": 100,
    "test_samples_per_class": 100,
    "lr": 0.05,
    "batch_size": 64,
    "schedule": "constant",
}
FACTORS = ("width", "depth", "epochs", "samples_per_class", "weight_decay", "dropout", "label_noise")


def codes_point(**params: Any) -> dict[str, Any]:
    """A flat ``codes`` run: the sweep base (one hidden layer of 100, 20 epochs at a constant rate, 100 examples
    per class) overridden by ``params``.

    >>> codes_point(width=10)["width"], codes_point(width=10)["depth"]
    (10, 1)
    """
    return {**CODES_SWEEP_BASE, **params}


def phase_grid(
    widths: Iterable[int], epochs: Iterable[int], samples_per_class: Iterable[int], **base: Any
) -> list[dict[str, Any]]:
    """Every (width, epochs, samples_per_class) combination: the points of the phase chart.

    >>> len(phase_grid([5, 10], [1, 10], [50]))
    4
    """
    return [
        codes_point(**{**base, "width": w, "epochs": e, "samples_per_class": n})
        for w, e, n in itertools.product(widths, epochs, samples_per_class)
    ]


def factor_line(factor: str, values: Iterable[float], **base: Any) -> list[dict[str, Any]]:
    """One factor varied around a base point, the others held.

    >>> [p["label_noise"] for p in factor_line("label_noise", [0.0, 0.5])]
    [0.0, 0.5]
    """
    if factor not in FACTORS:
        raise NNProbeError(f"unknown factor '{factor}'", f"use one of: {', '.join(FACTORS)}")
    return [codes_point(**{**base, factor: v}) for v in values]


def codes_quick_plan(
    data: str = "mnist", *, samples: Sequence[int] = (20, 200, 2000)
) -> dict[str, list[dict[str, Any]]]:
    """The CPU-sized plan of ``nnprobe reproduce codes --quick``: ``{"phase": [...], "<factor>": [...]}``."""
    base = {"data": data}
    return {
        "phase": phase_grid([4, 8, 16, 32, 64, 128, 256], [1, 3, 10, 30], list(samples), **base),
        "width": factor_line("width", [2, 4, 8, 16, 32, 64, 128, 256], **base),
        "depth": factor_line("depth", [1, 2, 3, 4], width=64, **base),
        "epochs": factor_line("epochs", [1, 2, 3, 5, 10, 20, 40], width=32, **base),
        "samples_per_class": factor_line("samples_per_class", [10, 20, 50, 100, 200, 500, 1000], width=64, **base),
        "weight_decay": factor_line("weight_decay", [0.0, 1e-4, 1e-3, 1e-2, 3e-2], width=64, **base),
        "dropout": factor_line("dropout", [0.0, 0.2, 0.5], width=64, **base),
        "label_noise": factor_line("label_noise", [0.0, 0.2, 0.4, 0.6, 0.8], width=32, **base),
    }


def codes_full_plan(data: str = "mnist") -> dict[str, list[dict[str, Any]]]:
    """A larger plan for a longer run (same shape as :func:`codes_quick_plan`)."""
    base = {"data": data, "test_samples_per_class": 500}
    return {
        "phase": phase_grid([2, 4, 8, 16, 32, 64, 128, 256], [1, 2, 5, 10, 20, 50], [20, 100, 500, 2000], **base),
        "width": factor_line("width", [2, 4, 8, 16, 32, 64, 128, 256, 512], samples_per_class=500, **base),
        "depth": factor_line("depth", [1, 2, 3, 4, 5], width=64, samples_per_class=500, **base),
        "epochs": factor_line("epochs", [1, 2, 5, 10, 20, 50, 100], width=64, samples_per_class=500, **base),
        "samples_per_class": factor_line("samples_per_class", [10, 50, 100, 500, 1000, 2000], width=64, **base),
        "weight_decay": factor_line("weight_decay", [0.0, 1e-4, 1e-3, 1e-2], width=64, samples_per_class=500, **base),
        "dropout": factor_line("dropout", [0.0, 0.2, 0.5], width=64, samples_per_class=500, **base),
        "label_noise": factor_line("label_noise", [0.0, 0.2, 0.4, 0.6, 0.8], width=64, samples_per_class=500, **base),
    }


def gradnet_reference_plan(quick: bool) -> list[dict[str, Any]]:
    """``nnprobe reproduce gradnet --protocol reference``: the GradNet reference's protocol (design note
    ``gradnet.md``) on MNIST and Fashion-MNIST (and CIFAR-10 in the full run, when present).

    Base: the reference's two-conv CNN (``refcnn``; 32 maps with ``quick``, 64 otherwise), SGD lr 0.05, weight
    decay 5e-4, batch 64, the rate halved every quarter of the run (the reference: every 25 of 100 epochs), random
    crops of the images padded by 2 (4 on CIFAR-10), with horizontal flips on Fashion-MNIST and CIFAR-10 (a
    mirrored garment is the same garment; a mirrored digit is not). Gradients of the loss with the base's weight
    decay (``grad_weight_decay`` 5e-4) w.r.t. the layer weights only; per example and per layer the top 15 % by
    magnitude kept; min-max + signed square root; a new random label per training image every GradNet epoch;
    GradNet ``5+100+25``, N(0, 0.02), SGD lr 0.01, 25 images a step (the reference trains 200 epochs; here 20
    with ``quick`` and in the full run).

    >>> [(e["params"]["model"], e["params"]["augment"]) for e in gradnet_reference_plan(quick=True)]
    [('refcnn', 'crop'), ('refcnn', 'crop+flip')]
    """
    if quick:
        params = dict(
            samples_per_class=300,
            test_samples_per_class=100,
            epochs=4,
            snapshot_epochs="1,4",
            channels=32,
            lr_step_epochs=1,
            gradnet_epochs=20,
        )
    else:
        params = dict(epochs=20, snapshot_epochs="1,2,5,10,20", channels=64, lr_step_epochs=5, gradnet_epochs=20)
    common = dict(
        model="refcnn",
        batch_size=64,
        optimizer="sgd",
        lr=0.05,
        weight_decay=5e-4,
        schedule="epoch_step",
        lr_step_factor=0.5,
        seed=0,
        weights_only=True,
        selection="per_example_topk",
        percent=15.0,
        grad_normalize="minmax_sqrt",
        grad_weight_decay=5e-4,
        labels_per_sample=1,
        label_draw="per_epoch",
        target="random",
        structure="5+100+25",
        window=1,
        gradnet_optimizer="sgd",
        gradnet_lr=0.01,
        gradnet_batch_size=25,
        gradnet_weight_decay=0.0,
        gradnet_dropout=0.0,
        gradnet_init_std=0.02,
        **params,
    )
    augment = {"mnist": "crop", "fashion-mnist": "crop+flip", "cifar10": "crop:4+flip"}
    names = ["mnist", "fashion-mnist"] + ([] if quick else ["cifar10"])
    return [
        {
            "key": f"{name}-reference",
            "title": f"{name}, reference protocol",
            "probe": "gradnet",
            "params": dict(common, data=name, augment=augment[name]),
        }
        for name in names
    ]


# ---- activation codes: He et al.'s own protocol (design note codes.md, "The reference protocol") ------------------
CODES_REFERENCE_WIDTHS = (3, 7, 10, 15, 20, 23, 27, 30, 33, 37, 40, 43, 47, 50, 53, 57, 60, 65, 70, 75, 80, 90, 100)
CODES_REFERENCE_EPOCHS = (0, 1, 3, 6, 10, 20, 30, 40, 60, 80, 100, 120, 140, 160, 180, 200)
CODES_REFERENCE_SAMPLES = (10, 30, 60, 100, 300, 600, 1000, 2000, 3000, 6000, 10000, 20000, 30000, 40000)
# The authors' MLP and training (run_layer_width_train_mlp.py): Dense -> BatchNorm -> ReLU, Glorot init, inputs in
# [0, 1], Adam 1e-2 x0.1 every 20 epochs, batch 64, <= 200 epochs with early stopping on the training loss
# (patience 10), Keras l2(1e-6) on the kernels (gradient 2e-6 w: PyTorch weight_decay 2e-6); train = the first
# 80% of the training set. Codes: units constant over train+test dropped, one K-Means (10 restarts) with the
# majority mapping, 9-NN Hamming, one-vs-one logistic regression, all fitted on every training code.
CODES_REFERENCE_BASE = {
    "data": "mnist",
    "train_fraction": 0.8,
    "normalize": "unit",
    "model": "mlp",
    "depth": 1,
    "batchnorm": True,
    "width_is_total": True,
    "init": "glorot",
    "optimizer": "adam",
    "lr": 1e-2,
    "weight_decay": 2e-6,
    "schedule": "epoch_step",
    "lr_step_epochs": 20,
    "batch_size": 64,
    "epochs": 200,
    "early_stop_patience": 10,
    "logistic": "ovo",
    "drop_constant_units": True,
    "max_fit_samples": None,
    "kmeans_seeds": 1,
    "k": 9,
}


def codes_reference_plan(quick: bool, seeds: int | None = None, data: str = "mnist") -> dict[str, list[dict[str, Any]]]:
    """He et al.'s three MNIST sweeps in their protocol: ``{"width": [...], "epochs": [...], "samples": [...]}``,
    flat ``codes`` points with their seed, ordered seed-major (runs of one seed train as one ensemble).

    Full: every width of the authors' list; training time for widths 40/50/60 at their checkpoints (no early
    stopping there, as in their script); sample size 10 ... 40000 (first n rows, tiled so an epoch has ~48k
    examples); ``seeds`` 5 by default (3 quick). ``quick`` (CPU minutes): the widths of the reference table, a
    compressed schedule (30 epochs, x0.1 every 10), checkpoints up to epoch 10, four sample sizes. The null
    baselines (untrained network, raw pixels) are measured in the width and training-time sweeps; the sample-size
    sweep runs without them (``nulls`` off: each n is new data, so nothing would be shared, and its finding is
    the redundancy at n = 10).

    >>> plan = codes_reference_plan(quick=True)
    >>> sorted({p["width"] for p in plan["width"]}), len({p["seed"] for p in plan["width"]})
    ([3, 10, 20, 40, 60, 100], 3)
    """
    base = {**CODES_REFERENCE_BASE, "data": data}
    widths: tuple[int, ...]
    checkpoints: tuple[int, ...]
    samples: tuple[int, ...]
    seed_list = list(range(seed_count(seeds, quick)))
    if quick:
        base.update(epochs=30, lr_step_epochs=10)
        widths, checkpoints, samples = (3, 10, 20, 40, 60, 100), (0, 1, 2, 3, 6, 10), (10, 100, 1000, 10000)
    else:
        widths, checkpoints, samples = CODES_REFERENCE_WIDTHS, CODES_REFERENCE_EPOCHS, CODES_REFERENCE_SAMPLES
    time_base = {**base, "early_stop_patience": None}
    return {
        "width": [{**base, "width": w, "seed": s} for s in seed_list for w in widths],
        "epochs": [
            {**time_base, "width": w, "epochs": e, "seed": s}
            for s in seed_list
            for w in (40, 50, 60)
            for e in checkpoints
        ],
        "samples": [
            {**base, "width": w, "train_first": n, "epoch_examples": 48000, "seed": s, "nulls": False}
            for n in samples
            for s in seed_list
            for w in (40, 50, 60)
        ],
    }


# ---- max-margin: the midpoint claim over seeds (issue 11, section 4) ------------------------------------------
MIDPOINT_SEEDS = (0, 100, 200, 300, 400)


def margin_midpoint_plan(quick: bool, seeds: int | Sequence[int] = MIDPOINT_SEEDS) -> list[dict[str, Any]]:
    """``nnprobe reproduce margin --only midpoint``: MNIST 0 vs 1 with a 2-D ReLU feature layer, two architectures
    (ResNet-8 -> FC 200 -> FC 2, and a two-conv CNN -> FC 128 -> FC 2), one run per seed, each with the head
    re-initialised and retrained alone. Entries carry ``group`` (the architecture); each run starts from its seed
    and takes the first whose untrained feature units are all alive (seeds 100 apart stay distinct). ``seeds``: the
    seeds, or their count (0, 100, 200, ...).

    >>> plan = margin_midpoint_plan(quick=True); len(plan), sorted({e["group"] for e in plan})
    (10, ['cnn', 'resnet'])
    >>> len(margin_midpoint_plan(quick=True, seeds=3))
    6
    """
    if isinstance(seeds, int):
        seeds = tuple(seed_values(0, seeds))
    common = dict(
        data="mnist:0,1",
        feature_dim=2,
        activation="relu",
        samples_per_class=1000 if quick else None,
        epochs=12 if quick else 40,
        batch_size=32,
        optimizer="momentum",
        lr=0.01,
        schedule="constant",
        log_spaced=0,
        retrain_epochs=1000,
    )
    archs: dict[str, tuple[str, dict[str, Any]]] = {
        "resnet": (
            "ResNet-8 -> FC 200 -> FC 2 ReLU -> linear",
            dict(model="resnet", depth=8, width=8 if quick else 16, fc_width=200),
        ),
        "cnn": (
            "CNN (2 conv) -> FC 128 -> FC 2 ReLU -> linear",
            dict(model="cnn", channels=8 if quick else 32, width=128),
        ),
    }
    note = (
        "Momentum SGD (0.01, 0.9; the reference's optimizer) at a constant rate, so that the head's bias trains "
        "with the features (with Adam at 1e-3 it moves by at most ~1e-3 per step); the head retrained alone for "
        "1000 epochs from a fresh initialisation of its weights and bias."
    )
    return [
        {
            "key": f"{arch}-seed{seed}",
            "group": arch,
            "title": f"MNIST 0 vs 1, {title}, seed {seed}",
            "probe": "margin",
            "needs": "mnist:0,1",
            "note": note,
            "params": dict(common, **opts, seed=seed),
        }
        for arch, (title, opts) in archs.items()
        for seed in seeds
    ]


def margin_experiments() -> list[str]:
    """The keys ``nnprobe reproduce margin --only`` selects: the reference experiments, the midpoint study, and the
    real-scale settings (``scale``: run only when selected).

    >>> margin_experiments()[-3:]
    ['mnist012_selu', 'midpoint', 'scale']
    """
    return [e["key"] for e in margin_plan(quick=True)] + [MIDPOINT, SCALE]


__all__ = [
    "CODES_PROTOCOLS",
    "CODES_REFERENCE_BASE",
    "CODES_REFERENCE_SWEEPS",
    "CODES_SWEEP_BASE",
    "FACTORS",
    "GRADNET_PROTOCOLS",
    "HEADLINE_MARGIN",
    "MIDPOINT",
    "MIDPOINT_SEEDS",
    "SCALE",
    "codes_full_plan",
    "codes_point",
    "codes_quick_plan",
    "codes_reference_plan",
    "demo_plan",
    "factor_line",
    "gradnet_plan",
    "gradnet_reference_plan",
    "margin_experiments",
    "margin_midpoint_plan",
    "margin_plan",
    "margin_scale_plan",
    "per_seed",
    "phase_grid",
    "plan_run",
    "seed_runs",
]
