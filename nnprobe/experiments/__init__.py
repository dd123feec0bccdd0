"""The experiment layer: a :class:`Run` is data + model + training + probe config, executed one way for all.

The CLI, sweeps, ``nnprobe demo`` and ``nnprobe reproduce`` are thin mappings onto :class:`Run`; each probe's
run-level defaults live in :mod:`nnprobe.experiments.registry`, its own settings in its config dataclass.
Names are exported lazily (:mod:`nnprobe.lazy`): :class:`DataConfig` and :class:`ModelConfig` load without torch.

>>> from nnprobe.experiments import Run
>>> result = Run.from_flat(                                                                # doctest: +SKIP
...     "codes", {"data": "digits", "width": 32, "epochs": 3}
... ).execute("runs/codes")
>>> result.summary()["redundancy_ratio_train"]                                                          # doctest: +SKIP
"""

from typing import TYPE_CHECKING

from nnprobe.lazy import export_lazily

if TYPE_CHECKING:  # the names export_lazily loads on first access, for type checkers
    from nnprobe.experiments.collect import result_records, result_rows, results_frame
    from nnprobe.experiments.registry import PROBES, ProbeEntry, TrainRunResult, default_snapshots, get_probe, register
    from nnprobe.experiments.run import RESULT_FILE, Run, load_result
    from nnprobe.experiments.seeds import SeedsResult, execute_seeds, judge_seeds, seed_values
    from nnprobe.experiments.specs import DataConfig, ModelConfig

__all__ = [
    "DataConfig",
    "ModelConfig",
    "PROBES",
    "ProbeEntry",
    "RESULT_FILE",
    "Run",
    "TrainRunResult",
    "SeedsResult",
    "default_snapshots",
    "execute_seeds",
    "get_probe",
    "judge_seeds",
    "load_result",
    "register",
    "result_records",
    "result_rows",
    "results_frame",
    "seed_values",
]
export_lazily(
    __name__,
    {
        "nnprobe.experiments.collect": ("result_records", "result_rows", "results_frame"),
        "nnprobe.experiments.registry": (
            "PROBES",
            "ProbeEntry",
            "TrainRunResult",
            "default_snapshots",
            "get_probe",
            "register",
        ),
        "nnprobe.experiments.run": ("RESULT_FILE", "Run", "load_result"),
        "nnprobe.experiments.seeds": ("SeedsResult", "execute_seeds", "judge_seeds", "seed_values"),
        "nnprobe.experiments.specs": ("DataConfig", "ModelConfig"),
    },
)
