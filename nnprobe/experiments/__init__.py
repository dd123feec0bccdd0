"""The experiment layer: a :class:`Run` is data + model + training + probe config, executed one way for all.

The CLI, sweeps, ``nnprobe demo`` and ``nnprobe reproduce`` are thin mappings onto :class:`Run`; each probe's
run-level defaults live in :mod:`nnprobe.experiments.registry`, its own settings in its config dataclass.

>>> from nnprobe.experiments import Run
>>> result = Run.from_flat("codes", {"data": "digits", "width": 32, "epochs": 3}).execute("runs/codes")  # doctest: +SKIP
>>> result.summary()["redundancy_ratio_train"]                                                          # doctest: +SKIP
"""

from nnprobe.experiments.collect import result_records, results_frame
from nnprobe.experiments.registry import PROBES, ProbeEntry, TrainRunResult, default_snapshots, get_probe, register
from nnprobe.experiments.run import RESULT_FILE, Run, load_result
from nnprobe.experiments.specs import DataConfig, ModelConfig

__all__ = ["DataConfig", "ModelConfig", "PROBES", "ProbeEntry", "RESULT_FILE", "Run", "TrainRunResult",
           "default_snapshots", "get_probe", "load_result", "register", "result_records", "results_frame"]
