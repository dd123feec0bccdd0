"""The probes a :class:`~nnprobe.experiments.Run` can run: the entries of :mod:`nnprobe.entries`, seen from the
experiment layer.

Each probe's entry says which config it takes, what a run of it defaults to (dataset, model, epochs, ...: the
values ``nnprobe <probe> --help`` shows, the ones sweeps and Python calls get), how its result is rebuilt from
a file, and how it executes (by default: build -> train -> ``measure``). :func:`register` adds the one check
the experiment layer needs (:func:`~nnprobe.experiments.settings.check_settings`): a probe's setting names
must differ from the data, model and training settings, so that a flat settings dict is unambiguous.
"""

from __future__ import annotations

from collections.abc import Mapping

from nnprobe.entries import ProbeEntry, entries, get_probe
from nnprobe.entries import register as _register
from nnprobe.experiments.settings import check_settings
from nnprobe.experiments.train_entry import TrainRunResult
from nnprobe.probes.gradnet.run_hooks import default_snapshots
from nnprobe.probes.margin.run_hooks import live_seed


def register(entry: ProbeEntry) -> ProbeEntry:
    """Add a probe (or replace one) for runs, the CLI, sweeps, results and reports, after checking that its
    settings do not clash with the run's others (see :func:`nnprobe.entries.register`)."""
    check_settings(entry)
    return _register(entry)


class _Probes(Mapping):
    """Every registered probe by name (a live view of :func:`nnprobe.entries.entries`)."""

    def __getitem__(self, name: str) -> ProbeEntry:
        if name not in self:
            raise KeyError(name)
        return get_probe(name)

    def __iter__(self):
        return iter([e.name for e in entries()])

    def __len__(self) -> int:
        return len(entries())

    def __contains__(self, name) -> bool:
        return name in [e.name for e in entries()]


PROBES = _Probes()

__all__ = ["PROBES", "ProbeEntry", "TrainRunResult", "check_settings", "default_snapshots", "get_probe", "live_seed",
           "register"]
