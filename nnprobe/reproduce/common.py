"""What the papers' reproductions share: which datasets are present, the command line of a plan entry, and
aligned text tables for the console."""

from __future__ import annotations

from nnprobe import data
from nnprobe.errors import NNProbeError


def missing_data(name: str, data_dir) -> str | None:
    """``None`` when dataset ``name`` can be loaded (one example per class is tried), else the reason.

    >>> missing_data("digits", None) is None
    True
    """
    try:
        data.load_dataset(name, data_dir=data_dir, samples_per_class=1, test_samples_per_class=1)
        return None
    except NNProbeError as exc:
        return exc.problem


def pick_data(name: str, data_dir) -> tuple[str, str]:
    """MNIST when its files are found, else the embedded digits (and say why): ``(dataset, note)``."""
    if name != "mnist":
        return name, ""
    missing = missing_data("mnist:0,1", data_dir)
    return ("mnist", "") if missing is None else ("digits", f"MNIST files not found ({missing}); used the embedded "
                                                            "digits instead.")


def command_line(probe: str, params: dict) -> str:
    """The ``nnprobe <probe>`` command line equivalent to a plan entry's settings.

    >>> command_line("margin", {"data": "mnist:0,1", "live_seed": False, "C": None})
    'nnprobe margin --data mnist:0,1 --no-live-seed'
    """
    parts = [(f"--{'' if v else 'no-'}{k.replace('_', '-')}" if isinstance(v, bool) else f"--{k.replace('_', '-')} {v}")
             for k, v in params.items() if v is not None]
    return f"nnprobe {probe} " + " ".join(parts)


__all__ = ["command_line", "missing_data", "pick_data"]
