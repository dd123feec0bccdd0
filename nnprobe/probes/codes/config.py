"""Settings of the activation-code probe, declared and validated once (CLI, sweeps, demo and reproduce read these)."""

from __future__ import annotations

from dataclasses import dataclass, field

from nnprobe.config import Config, check_choice, check_int


METHODS = ("kmeans", "knn", "logistic")


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
    train and test out of the classifiers (He et al.; no redundancy ratio changes).

    >>> CodesConfig(k=5).k
    5
    """

    layers: list | None = None
    k: int = 9
    max_fit_samples: int | None = 20000
    max_knn_train_queries: int | None = 5000
    labels: str = "noisy"
    per_layer: bool = True
    categorisation: bool = True
    record_batch_size: int = 512
    logistic: str = "multinomial"   # or "ovo": one-vs-one, He et al.'s
    drop_constant_units: bool = False   # He et al. drop units constant over train + test before the classifiers
    max_units: int | None = 2**16
    max_memory: int | None = 2**31
    scratch_dir: str | None = None
    methods: list = field(default_factory=lambda: list(METHODS))
    kmeans_seeds: int = 3

    def validate(self) -> None:
        if isinstance(self.layers, str) and self.layers.strip() != "all":
            self.layers = [s.strip() for s in self.layers.split(",") if s.strip()] or None
        if isinstance(self.layers, str) or self.layers == ["all"]:
            self.layers = "all"
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
        check_choice("labels", self.labels, ("noisy", "clean"))
        check_choice("per_layer", self.per_layer, (True, False))
        check_choice("categorisation", self.categorisation, (True, False))
        check_int("record_batch_size", self.record_batch_size, minimum=1)
        check_choice("logistic", self.logistic, ("multinomial", "ovo"))
        check_choice("drop_constant_units", self.drop_constant_units, (True, False))


__all__ = ["CodesConfig"]
