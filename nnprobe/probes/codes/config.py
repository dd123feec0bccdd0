"""Settings of the activation-code probe, declared and validated once (CLI, sweeps, demo and reproduce read these)."""

from __future__ import annotations

from dataclasses import dataclass

from nnprobe.config import Config, check_choice, check_int


@dataclass
class CodesConfig(Config):
    """How the codes of a trained ReLU network are recorded and measured.

    ``layers``: recorded ReLU sites to keep (``None``: all; names as reported in the result). ``k``: neighbours
    of the Hamming K-NN (9, the authors' choice). ``max_fit_samples``: cap on the codes K-Means and logistic
    regression are fitted on (seeded subsample; ``None``: all). ``max_knn_train_queries``: cap on the
    leave-one-out K-NN training-accuracy queries. ``labels``: score training codes against the labels the
    model was trained on (``noisy``) or the true ones (``clean``). ``per_layer``: also the determinism of each
    layer's codes alone. ``categorisation``: run the three classifiers (off: determinism only).

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

    def validate(self) -> None:
        if isinstance(self.layers, str):
            self.layers = [s.strip() for s in self.layers.split(",") if s.strip()] or None
        if self.layers is not None:
            self.layers = list(self.layers)
        check_int("k", self.k, minimum=1)
        check_int("max_fit_samples", self.max_fit_samples, minimum=10, allow_none=True)
        check_int("max_knn_train_queries", self.max_knn_train_queries, minimum=1, allow_none=True)
        check_choice("labels", self.labels, ("noisy", "clean"))
        check_choice("per_layer", self.per_layer, (True, False))
        check_choice("categorisation", self.categorisation, (True, False))
        check_int("record_batch_size", self.record_batch_size, minimum=1)


__all__ = ["CodesConfig"]
