"""The probes a :class:`~nnprobe.experiments.Run` can run: the entries of :mod:`nnprobe.entries`, seen from the
experiment layer.

Each probe's entry says which config it takes, what a run of it defaults to (dataset, model, epochs, ...: the
values ``nnprobe <probe> --help`` shows, the ones sweeps and Python calls get), how its result is rebuilt from
a file, and how it executes (by default: build -> train -> ``measure``). :func:`register` adds the one check
the experiment layer needs (:func:`~nnprobe.experiments.settings.check_settings`): a probe's setting names
must differ from the data, model and training settings, so that a flat settings dict is unambiguous.
"""

from __future__ import annotations

from nnprobe.entries import LiveMapping, ProbeEntry, caller_origin, entries, get_probe
from nnprobe.entries import register as _register
from nnprobe.experiments.settings import check_settings
from nnprobe.experiments.train_entry import TrainRunResult
from nnprobe.probes.gradnet.run_hooks import default_snapshots
from nnprobe.probes.margin.run_hooks import live_seed


def register(entry: ProbeEntry) -> ProbeEntry:
    """Add a probe (or replace one) for runs, the CLI, sweeps, results and reports, after checking that its
    settings do not clash with the run's others (see :func:`nnprobe.entries.register`)."""
    check_settings(entry)
    return _register(entry, origin=caller_origin())  # the caller's module, not this one, is the probe's origin


PROBES = LiveMapping(lambda: {e.name: e for e in entries()})  # every registered probe by name

__all__ = [
    "PROBES",
    "ProbeEntry",
    "TrainRunResult",
    "check_settings",
    "default_snapshots",
    "get_probe",
    "live_seed",
    "register",
]
