"""What the papers' reproductions share: which datasets are present, the command line of a plan entry, and
aligned text tables for the console."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from nnprobe.errors import NNProbeError

# where a reproduction writes its progress lines: click.echo (the command line) or print
Echo = Callable[[str], object]


def missing_data(name: str, data_dir: str | Path | None) -> str | None:
    """``None`` when dataset ``name`` can be loaded (one example per class is tried), else the reason.

    >>> missing_data("digits", None) is None
    True
    """
    from nnprobe.data.loaders import load_dataset  # lazy: torch off the --help path

    try:
        load_dataset(name, data_dir=data_dir, samples_per_class=1, test_samples_per_class=1)
        return None
    except NNProbeError as exc:
        return exc.problem


def pick_data(name: str, data_dir: str | Path | None) -> tuple[str, str]:
    """MNIST when its files are found, else the embedded digits (and say why): ``(dataset, note)``."""
    if name != "mnist":
        return name, ""
    missing = missing_data("mnist:0,1", data_dir)
    return (
        ("mnist", "")
        if missing is None
        else ("digits", f"MNIST files not found ({missing}); used the embedded digits instead.")
    )


DEFAULT_SEEDS, QUICK_SEEDS = 5, 3  # seeds per headline setting of every reproduce command (issue 18)


def seed_count(seeds: int | None, quick: bool) -> int:
    """The seeds per setting of a reproduce command: ``seeds`` when given, else 5 (3 with ``--quick``).

    >>> seed_count(None, False), seed_count(None, True), seed_count(2, True)
    (5, 3, 2)
    """
    if seeds is None:
        return QUICK_SEEDS if quick else DEFAULT_SEEDS
    if isinstance(seeds, bool) or int(seeds) < 1:
        raise NNProbeError(f"--seeds is {seeds}; it must be at least 1", "pass --seeds 1 or more (default 5, quick 3)")
    return int(seeds)


def command_line(probe: str, params: dict[str, Any]) -> str:
    """The ``nnprobe <probe>`` command line equivalent to a plan entry's settings.

    >>> command_line("margin", {"data": "mnist:0,1", "live_seed": False, "C": None})
    'nnprobe margin --data mnist:0,1 --no-live-seed'
    """
    parts = [
        (f"--{'' if v else 'no-'}{k.replace('_', '-')}" if isinstance(v, bool) else f"--{k.replace('_', '-')} {v}")
        for k, v in params.items()
        if v is not None
    ]
    return f"nnprobe {probe} " + " ".join(parts)


__all__ = ["DEFAULT_SEEDS", "QUICK_SEEDS", "command_line", "missing_data", "pick_data", "seed_count"]
