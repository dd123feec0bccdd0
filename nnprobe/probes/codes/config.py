"""Settings of the activation-code probe, declared and validated once (CLI, sweeps, demo and reproduce read these).

This module imports no torch: the command line derives the probe's flags (help, choices, kinds) from the
fields' metadata (:func:`nnprobe.config.option`) without loading the recorder.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from nnprobe.config import Config, check_choice, check_int, option
from nnprobe.training.rundir import register_later_setting, register_recorded_key

METHODS = ("kmeans", "knn", "logistic")  # the classifiers fitted on the codes
LABEL_MODES = ("noisy", "clean")  # training codes scored against the labels trained on, or the true ones
LOGISTIC_MODES = ("multinomial", "ovo")  # logistic regression: multinomial, or one-vs-one (He et al.'s)
ALL_LAYERS = "all"  # ``layers=`` value for every ReLU site
DEFAULT_MAX_UNITS = 2**16  # above it, the code is the last sites that fit (see selection.py)
register_later_setting("region_segments", 0)  # added in 0.3 (linear regions): earlier runs resume without them
register_later_setting("region_distance_points", 0)
register_later_setting("region_slice", False)
register_recorded_key("scratch_dir")  # where the scratch file goes changes no result: resume ignores it


@dataclass
class CodesConfig(Config):
    """How the codes of a trained ReLU network are recorded and measured.

    ``layers``: the ReLU sites the code is made of: ``None`` (default) every site while the network has at most
    ``max_units`` units, else the last sites that fit ``max_units`` (the result's ``selection`` says which and
    why); ``"all"``: every site; or a list of names as reported in the result. ``max_memory``: bytes of code
    matrices (train + test, packed) and fitted float rows the probe may hold in memory: larger codes go to a
    memory-mapped scratch file in ``scratch_dir`` (default: the system temp directory) and the rows K-Means and
    logistic regression are fitted on are capped to fit. ``methods``: which classifiers ``categorisation``
    runs. ``kmeans_seeds``: K-Means repeats (each of 10 restarts); the lowest-inertia run is reported. ``k``: neighbours
    of the Hamming K-NN (9, the authors' choice). ``max_fit_samples``: cap on the codes K-Means and logistic
    regression are fitted on (seeded subsample; ``None``: all). ``max_knn_train_queries``: cap on the
    leave-one-out K-NN training-accuracy queries. ``labels``: score training codes against the labels the
    model was trained on (``noisy``) or the true ones (``clean``). ``per_layer``: also the determinism of each
    layer's codes alone. ``categorisation``: run the three classifiers (off: determinism only). ``logistic``:
    ``multinomial`` or ``ovo`` (one-vs-one, He et al.'s). ``drop_constant_units``: leave units constant over
    train and test out of the classifiers (He et al.; no redundancy ratio changes). ``record_batch_size``:
    examples per recording forward pass. ``nulls``: also measure the null baselines (see
    :mod:`nnprobe.probes.codes.nulls`): the untrained network's codes (same architecture and seed, K-Means with
    one seed) and 9-NN / logistic regression on the raw inputs; off saves about the cost of a second measurement.
    ``region_segments``: linear regions (:mod:`nnprobe.probes.codes.regions`), walked exactly along this many
    segments from training points of each kind (same class, different class, random direction), with He et al.'s
    sampled region diameter beside the exact one at as many points; 0 (default): off.
    ``region_distance_points``: training points whose exact distance to the boundary of their linear region is
    measured (one backward pass per ReLU unit per batch of 64); 0 (default): off. ``region_slice``: the exact
    partition of the 2-D slice through the first training examples of three classes
    (:mod:`nnprobe.probes.codes.regions.partition`): its number of regions and of linear pieces of the decision
    boundary; off by default.

    >>> CodesConfig(k=5).k
    5
    """

    layers: list[str] | str | None = field(
        default=None,
        metadata=option(
            "Comma-separated ReLU sites to keep, or 'all' (default: every site while the network has <= max_units "
            "units, else the last sites that fit; names in result.json)."
        ),
    )
    k: int = field(default=9, metadata=option("Neighbours for Hamming K-NN."))
    max_fit_samples: int | None = field(
        default=20000,
        metadata=option("Cap on the codes K-Means and logistic regression are fitted on (seeded subsample)."),
    )
    max_knn_train_queries: int | None = field(
        default=5000,
        metadata=option("Cap on the leave-one-out K-NN training-accuracy queries (seeded subsample).", cli=False),
    )
    labels: str = field(
        default="noisy",
        metadata=option(
            "Score training codes against the labels trained on (noisy) or the true ones (clean).", choices=LABEL_MODES
        ),
    )
    per_layer: bool = field(
        default=True, metadata=option("Also the determinism of each ReLU site's codes alone.", kind="flag", cli=False)
    )
    categorisation: bool = field(
        default=True,
        metadata=option("Fit the classifiers on the codes (off: determinism only).", kind="flag", cli=False),
    )
    record_batch_size: int = field(default=512, metadata=option("Examples per recording forward pass.", cli=False))
    logistic: str = field(
        default="multinomial",
        metadata=option(  # or "ovo": one-vs-one, He et al.'s
            "Logistic regression: multinomial, or ovo (one-vs-one over all pairs of classes, He et al.'s).",
            choices=LOGISTIC_MODES,
            cli=False,
        ),
    )
    drop_constant_units: bool = field(
        default=False,
        metadata=option(  # He et al. drop units constant over train + test
            "Leave units constant over train and test out of the classifiers (He et al.).", kind="flag", cli=False
        ),
    )
    max_units: int | None = field(
        default=DEFAULT_MAX_UNITS,
        metadata=option(
            "Units in the code by default: a larger network's code is its last ReLU sites that fit.", cli=False
        ),
    )
    max_memory: int | None = field(
        default=2**31,
        metadata=option(
            "Bytes of codes and fitted float rows held in memory (larger codes are memory-mapped from a scratch "
            "file), e.g. 2G, 512M.",
            kind="bytes",
            cli=False,
        ),
    )
    scratch_dir: str | None = field(
        default=None,
        metadata=option(
            "Directory of the scratch file for codes beyond max_memory (default: the system temp directory).",
            kind="path",
            cli=False,
        ),
    )
    methods: list[str] = field(
        default_factory=lambda: list(METHODS),
        metadata=option("Classifiers fitted on the codes, comma-separated.", choices=METHODS, kind="list", cli=False),
    )
    kmeans_seeds: int = field(
        default=3, metadata=option("K-Means repeats (10 restarts each); the lowest-inertia run is reported.", cli=False)
    )
    nulls: bool = field(
        default=True,
        metadata=option(
            "Also the null baselines: the same measures on the untrained network's codes, and 9-NN / logistic "
            "regression on the raw inputs.",
            kind="flag",
        ),
    )
    region_segments: int = field(
        default=0,
        metadata=option(
            "Linear regions: segments of each kind (same class, different class, random direction) walked exactly, "
            "and points of the sampled vs exact region diameter (0: off)."
        ),
    )
    region_distance_points: int = field(
        default=0,
        metadata=option("Linear regions: training points whose exact distance to their region's boundary is measured."),
    )
    region_slice: bool = field(
        default=False,
        metadata=option(
            "Linear regions: the exact partition of the 2-D slice through the first training examples of three "
            "classes (regions and decision-boundary pieces).",
            kind="flag",
        ),
    )

    def validate(self) -> None:
        if isinstance(self.layers, str) and self.layers.strip() != ALL_LAYERS:
            self.layers = [s.strip() for s in self.layers.split(",") if s.strip()] or None
        if isinstance(self.layers, str) or self.layers == [ALL_LAYERS]:
            self.layers = ALL_LAYERS
        elif self.layers is not None:
            self.layers = list(self.layers)
        if isinstance(self.methods, str):
            self.methods = [s.strip() for s in self.methods.split(",") if s.strip()]
        self.methods = list(self.methods)
        for method in self.methods:
            check_choice("methods", method, METHODS)
        check_int("max_units", self.max_units, minimum=1, allow_none=True)
        check_int("max_memory", self.max_memory, minimum=1, allow_none=True)
        check_int("kmeans_seeds", self.kmeans_seeds, minimum=1)
        check_int("k", self.k, minimum=1)
        check_int("max_fit_samples", self.max_fit_samples, minimum=10, allow_none=True)
        check_int("max_knn_train_queries", self.max_knn_train_queries, minimum=1, allow_none=True)
        check_choice("labels", self.labels, LABEL_MODES)
        check_choice("per_layer", self.per_layer, (True, False))
        check_choice("categorisation", self.categorisation, (True, False))
        check_int("record_batch_size", self.record_batch_size, minimum=1)
        check_choice("logistic", self.logistic, LOGISTIC_MODES)
        check_choice("drop_constant_units", self.drop_constant_units, (True, False))
        check_choice("nulls", self.nulls, (True, False))
        check_int("region_segments", self.region_segments, minimum=0)
        check_int("region_distance_points", self.region_distance_points, minimum=0)
        check_choice("region_slice", self.region_slice, (True, False))


__all__ = ["ALL_LAYERS", "DEFAULT_MAX_UNITS", "LABEL_MODES", "LOGISTIC_MODES", "METHODS", "CodesConfig"]
