"""One entry object per probe: everything the rest of nnprobe needs to know about a probe, in one place.

A probe is a folder (``nnprobe/probes/<name>/``) plus one :class:`ProbeEntry`. Runs, the command line,
sweeps, grouping, ``nnprobe results``, reports, the demo and the layering test iterate the entries; none of
them names a probe. The entry holds the config class (settings, defaults, validation and the command-line
options derived from its fields), the measure function, the result class, the verdict rule with its
thresholds, the summary columns, the claim, the figures' captions, and optional hooks (a run of its own,
checks before anything is trained). ``docs/ADDING_A_PROBE.md`` says what a new probe writes.

This module is on the ground floor and imports nothing heavy: heavy parts of an entry (the measure function,
the result class, a custom run) may be given as ``"package.module:attribute"`` strings, resolved on first use,
so that ``nnprobe --help`` lists the probes without importing torch.

>>> entry = get_probe("codes")
>>> entry.name, entry.thresholds["max_redundancy"]
('codes', 0.05)
>>> "margin" in probe_names()
True
"""

from __future__ import annotations

import importlib
import importlib.util
import math
import sys
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from nnprobe.errors import NNProbeError

# The built-in probes: the module that defines each entry (as ENTRY). A new built-in probe adds one line here.
BUILTIN = (
    "nnprobe.experiments.train_entry",
    "nnprobe.probes.margin.entry",
    "nnprobe.probes.codes.entry",
    "nnprobe.probes.gradnet.entry",
    "nnprobe.probes.collapse.entry",
)
ENTRY_POINT_GROUP = "nnprobe.probes"  # third-party packages register entries here (pyproject entry points)


def resolve(ref: Any) -> Any:
    """``ref`` itself, or the attribute a ``"package.module:attribute"`` string names (imported on first use).

    >>> resolve("math:pi") > 3
    True
    """
    if not isinstance(ref, str):
        return ref
    module_name, _, attr = ref.partition(":")
    try:
        target = importlib.import_module(module_name)
        for part in attr.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as exc:
        raise NNProbeError(f"cannot import '{ref}': {exc}", "check the probe entry's module:attribute names") from None
    return target


@dataclass(frozen=True)
class Verdict:
    """A probe's finding on one run: ``holds`` is True / False, or None when it could not be judged."""

    probe: str
    holds: bool | None
    sentence: str
    outcome: str = ""  # holds / does not hold / inconclusive / not testable (nnprobe.stats.OUTCOMES)
    details: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    @property
    def word(self) -> str:
        if self.outcome:
            return self.outcome
        return {True: "holds", False: "does not hold", None: "not measured"}[self.holds]


def number(summary: dict[str, Any], key: str) -> float | None:
    """``summary[key]`` as a float, or None when it is missing, not a number, or NaN (for verdict rules).

    >>> number({"a": 1, "b": "x", "c": float("nan")}, "a"), number({"b": "x"}, "b")
    (1.0, None)
    """
    value = summary.get(key)
    if value is None or isinstance(value, (bool, str)):
        return None
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(value) else value


@dataclass
class ProbeEntry:
    """Everything about one probe (see the module docstring). Only ``name``, ``config_cls`` and ``measure`` are
    needed; a probe without a verdict rule is reported without a verdict, one without figures without figures.

    ``measure(model, dataset, config, *, seed, progress) -> result``: the probe on a trained model. The result
    has ``summary() -> dict``, ``to_dict()`` and ``result_cls.from_dict``; by default the run trains the model
    (unless a checkpoint is given) and then calls ``measure``. ``execute(run, ctx) -> result`` replaces that
    when the probe measures during training or trains models of its own (margin, gradnet); ``ctx`` is the
    experiment layer's :class:`~nnprobe.experiments.run.RunContext` (training, events, stored parts).

    ``defaults``: run-level defaults (``data``, ``model``, ``epochs``, ...), what an empty command line runs.
    ``summary_columns``: the headline columns of results tables. ``thresholds`` / ``verdict`` /
    ``criteria``: ``verdict(summary, thresholds) -> (holds, sentence)``, ``criteria(thresholds) -> words``.
    ``evidence(summaries, thresholds) -> nnprobe.stats.Decision``: the verdict over the runs of one setting
    that differ only in seed (one summary per seed; the rules of ``docs/evidence.md``: intervals over seeds,
    nulls, paired tests, "not testable" outside the claim's regime). A probe with ``evidence`` is judged by it,
    also on one seed; ``verdict`` is then only the one-run fallback of older code.
    ``figures``: figure name -> caption (``report/`` draws them, found by the probe's name). ``validate(run)``
    and ``preflight(run, dataset, model)`` raise :class:`~nnprobe.errors.NNProbeError` on bad settings before
    anything is trained or written. ``groupable(run) -> bool``: whether runs of it may train as one batched
    ensemble (it then must use the default run).

    ``table(run, result) -> rows``: the probe's table in reports (``table_columns``, ``table_labels``).

    For curves over training (:mod:`nnprobe.tracking`: a user's loop, Lightning, Hugging Face, saved checkpoints):
    ``track(model, dataset, config, *, seed) -> result`` measures one point of a curve, cheap enough to repeat at
    every tracked step (default: ``measure``); ``track_settings`` are the config settings a point uses when the
    probe is tracked by name (e.g. the codes probe leaves out its nulls, which do not change during training).

    For the command line: ``help`` (one line in ``nnprobe --help``), ``command_help`` (the command's own help,
    with examples), ``checkpoint_help`` (its ``--checkpoint`` flag), ``default_out`` (``--out``),
    ``event_text(kind, payload) -> str | None`` (a progress line for a run event) and ``details(run, result)
    -> str`` (printed under the result's table).
    """

    name: str
    config_cls: Any
    measure: Callable[..., Any] | str | None
    result_cls: Any = None
    defaults: dict[str, Any] = field(default_factory=dict)
    help: str = ""
    claim: str = ""
    paper: str = ""
    summary_columns: tuple[str, ...] = ()
    thresholds: dict[str, float] = field(default_factory=dict)
    verdict: Callable[..., Any] | str | None = None
    criteria: Callable[..., Any] | str | None = None
    evidence: Callable[..., Any] | str | None = None
    figures: dict[str, str] = field(default_factory=dict)
    execute: Callable[..., Any] | str | None = None
    validate: Callable[..., Any] | str | None = None
    preflight: Callable[..., Any] | str | None = None
    groupable: Callable[..., Any] | str | None = None
    table: Callable[..., Any] | str | None = None
    table_columns: tuple[str, ...] = ()
    table_labels: dict[str, str] = field(default_factory=dict)
    event_text: Callable[..., Any] | str | None = None
    details: Callable[..., Any] | str | None = None
    checkpoint_help: str = "Probe this saved model instead of training (its dataset flags must match)."
    command_help: str = ""
    default_out: str = ""
    track: Callable[..., Any] | str | None = None
    track_settings: dict[str, Any] = field(default_factory=dict)
    origin: tuple[str, ...] = ()  # (module name, file) of the module that registered it: sweep workers import it

    def hook(self, name: str) -> Callable[..., Any] | None:
        """The hook ``name`` (``measure``, ``execute``, ``validate``, ...) resolved, or None."""
        value = getattr(self, name)
        return None if value is None else resolve(value)

    @property
    def result_class(self) -> Any:
        """The class whose ``from_dict`` rebuilds this probe's result."""
        return resolve(self.result_cls)

    def judge(self, summary: dict[str, Any]) -> Verdict:
        """The verdict on a run's ``summary()``: ``holds`` None when the probe has no rule or the numbers are
        missing.

        >>> get_probe("gradnet").judge({"base_test_accuracy": 0.5, "gradnet_test_accuracy": 0.6}).outcome
        'inconclusive'
        """
        if self.evidence is not None:
            return self.decide([summary])
        rule = self.hook("verdict")
        if rule is None:
            return Verdict(self.name, None, "no verdict rule for this probe")
        holds, sentence = rule(summary, self.thresholds)
        return Verdict(self.name, holds, sentence)

    def decide(self, summaries: Sequence[dict[str, Any]]) -> Verdict:
        """The verdict over the runs of one setting that differ only in seed (``summaries``: one per seed).

        With an ``evidence`` rule: its :class:`~nnprobe.stats.Decision` (``holds`` True only for "holds",
        False for "does not hold", None for "inconclusive" and "not testable"). Without one, one summary is
        judged by ``verdict``; several get no verdict (the old rules judge one run).
        """
        summaries = list(summaries)
        if not summaries:
            raise NNProbeError(f"no runs to judge for probe '{self.name}'", "pass one summary per seed")
        rule = self.hook("evidence")
        if rule is None:
            if len(summaries) == 1:
                return self.judge(summaries[0])
            return Verdict(self.name, None, "no verdict rule over seeds for this probe")
        decision = rule(summaries, self.thresholds)
        holds = {"holds": True, "does not hold": False}.get(decision.outcome)
        return Verdict(
            self.name,
            holds,
            f"{decision.outcome}: {decision.sentence}",
            decision.outcome,
            {"kind": decision.kind, **decision.details},
        )

    def criteria_text(self) -> str:
        """The thresholds of the verdict, in words."""
        words = self.hook("criteria")
        if words is None:
            return ""
        return words(self.thresholds) if callable(words) else str(words)


class LiveMapping(Mapping[str, Any]):
    """A read-only mapping rebuilt from the registered entries on every read (``build() -> dict``), so that
    tables derived from the entries (thresholds, captions, the probes by name) see a probe registered later.

    >>> captions = LiveMapping(lambda: {n: c for e in entries() for n, c in e.figures.items()})
    >>> "retrain" in captions
    True
    """

    def __init__(self, build: Callable[[], dict[str, Any]]) -> None:
        self._build = build

    def __getitem__(self, key: str) -> Any:
        return self._build()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._build())

    def __len__(self) -> int:
        return len(self._build())


_PROBES: dict[str, ProbeEntry] = {}
_LOADED = False


def caller_origin(depth: int = 1) -> tuple[str, str]:
    """``(module name, file)`` of the module ``depth`` calls above the caller (where a probe is registered)."""
    frame = sys._getframe(depth + 1)
    return frame.f_globals.get("__name__", ""), frame.f_globals.get("__file__") or ""


def register(entry: ProbeEntry, *, origin: tuple[str, ...] = ()) -> ProbeEntry:
    """Make ``entry`` a probe for runs, the command line, sweeps, results and reports (replacing one of the
    same name). The one call a new probe makes. ``origin``: the module that registers it (default: the caller),
    which sweep worker processes import to know the probe.

    >>> register(ProbeEntry("double", None, lambda model, ds, cfg, **kw: None)).name   # doctest: +SKIP
    'double'
    """
    if not entry.origin:
        entry.origin = origin or caller_origin()
    _PROBES[entry.name] = entry
    return entry


def _load_builtins() -> None:
    global _LOADED
    if _LOADED:
        return
    _LOADED = True
    for module in BUILTIN:
        importlib.import_module(module)
    try:
        from importlib.metadata import entry_points  # lazy: slow import, needed on first registry use

        for ep in entry_points(group=ENTRY_POINT_GROUP):
            loaded = ep.load()
            if isinstance(loaded, ProbeEntry) and loaded.name not in _PROBES:
                register(loaded)
    except Exception as exc:  # noqa: BLE001 -- a broken third-party plugin must not break nnprobe
        print(f"nnprobe: a probe plugin failed to load ({exc})", file=sys.stderr)


def entries() -> list[ProbeEntry]:
    """Every registered probe, in the order they were registered (the built-ins load on first use)."""
    _load_builtins()
    return list(_PROBES.values())


def probe_names() -> list[str]:
    """The names of every registered probe."""
    return [e.name for e in entries()]


def get_probe(name: str) -> ProbeEntry:
    """The entry of probe ``name``; an unknown name is an error listing the known ones."""
    _load_builtins()
    if name not in _PROBES:
        raise NNProbeError(f"unknown probe '{name}'", f"use one of: {', '.join(_PROBES)}")
    return _PROBES[name]


def plugin_origins() -> list[tuple[str, ...]]:
    """``(module, file)`` of every entry registered outside the built-ins (for worker processes to load)."""
    builtin = set(BUILTIN)
    return [e.origin for e in entries() if e.origin and e.origin[0] not in builtin]


def load_plugins(origins: Sequence[tuple[str, ...]]) -> None:
    """Import the modules that registered probes in another process (a sweep's parent), by name or by file."""
    for module, path in origins:
        if module in sys.modules:
            continue
        try:
            importlib.import_module(module)
            continue
        except ImportError:
            if not path:
                raise
        spec = importlib.util.spec_from_file_location(module, path)
        assert spec is not None and spec.loader is not None  # path is the .py file that registered the probe
        mod = importlib.util.module_from_spec(spec)
        sys.modules[module] = mod
        spec.loader.exec_module(mod)


__all__ = [
    "BUILTIN",
    "LiveMapping",
    "ProbeEntry",
    "Verdict",
    "caller_origin",
    "entries",
    "get_probe",
    "load_plugins",
    "number",
    "plugin_origins",
    "probe_names",
    "register",
    "resolve",
]
