"""One point of a tracked curve: every tracked probe on the model as it is now, on the fixed probe set.

The tracker (during training) and ``nnprobe track`` (on saved checkpoints) both call :func:`measure_point`, so a
point measured in a training loop and the one recomputed from that step's checkpoint are the same computation
on the same weights and rows. Each probe measures through its entry's ``track`` hook (a curve point), else its
``measure``, with its config; the random generators are seeded with the tracker's seed before each probe, so a
probe's numbers do not depend on which other probes are tracked.

>>> configs = probe_configs("margin,codes")
>>> sorted(configs), configs["codes"].nulls      # a tracked codes point leaves out the nulls
(['codes', 'margin'], False)
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from torch import nn

from nnprobe.config import Config
from nnprobe.entries import get_probe, number
from nnprobe.errors import NNProbeError
from nnprobe.models.adapter import adapted
from nnprobe.models.shared import shared_features
from nnprobe.results import is_scalar, plain
from nnprobe.tracking.guard import seed_measurement, undisturbed, unwrap

if TYPE_CHECKING:
    from nnprobe.tracking.probe_set import ProbeSet

# the probes to track: names (a list, or "margin,codes"), or {name: config, dict of its settings, or None}
Probes = str | Sequence[str] | dict[str, Config | dict[str, Any] | None]
Settings = dict[str, dict[str, Any]]  # {probe: {field: value}}


def probe_configs(probes: Probes, settings: Settings | None = None) -> dict[str, Config]:
    """``{probe: config}`` from ``probes``: names (a list, or ``"margin,codes"``) or ``{name: config or dict of
    settings or None}``. A probe named without a config gets its config's defaults with the entry's
    ``track_settings`` (what a curve point measures); ``settings`` (``{probe: {field: value}}``) change them.

    >>> probe_configs(["margin"], {"margin": {"C": 1.0}})["margin"].C
    1.0
    """
    if isinstance(probes, str):
        probes = [p.strip() for p in probes.split(",") if p.strip()]
    given = dict(probes) if isinstance(probes, dict) else {name: None for name in probes}
    if not given:
        raise NNProbeError("no probe to track", "name at least one probe, e.g. probes=['margin'] (--probe margin)")
    configs: dict[str, Config] = {}
    for name, config in given.items():
        entry = get_probe(name)
        if entry.config_cls is None or (entry.hook("track") or entry.hook("measure")) is None:
            raise NNProbeError(
                f"'{name}' cannot be tracked: it is not a probe with a measurement",
                "track one of the probes, e.g. margin or codes",
            )
        if config is None or isinstance(config, dict):
            config = entry.config_cls.from_dict({**entry.track_settings, **(config or {})})
        elif not isinstance(config, entry.config_cls):
            raise NNProbeError(
                f"the config of '{name}' is a {type(config).__name__}, not a {entry.config_cls.__name__}",
                f"pass {entry.config_cls.__name__}(...), a dict of its settings, or None",
            )
        configs[name] = config
    for name, changes in (settings or {}).items():
        if name not in configs:
            raise NNProbeError(f"a setting for '{name}', which is not tracked", "track it too, or drop the setting")
        configs[name] = configs[name].replace(**changes)
    return configs


def measure_point(
    model: nn.Module,
    probe_set: ProbeSet,
    configs: dict[str, Config],
    *,
    seed: int = 0,
    output: int | str | None = None,
) -> tuple[dict[str, dict[str, Any]], dict[str, float]]:
    """Every probe of ``configs`` on ``model`` and the rows of ``probe_set`` (a :class:`~nnprobe.tracking.ProbeSet`),
    inside :func:`~nnprobe.tracking.guard.undisturbed`: ``({probe: summary}, {probe: seconds})``, each summary the
    flat scalars of the probe's result. The model is read as every probe reads it
    (:func:`~nnprobe.models.adapter.adapted`): ``output`` names the logits when its forward returns more (a tuple
    index or a key; None: the tensor itself, ``.logits`` / ``["logits"]``, or the one tuple element with a column
    per class), and the logits must have one column per class of the probe set. The probes share their forward
    passes (:func:`~nnprobe.models.shared.shared_features`): the penultimate features of the probe set's rows are
    computed once per point, however many probes read them (margin and collapse do).

    >>> summaries, seconds = measure_point(model, ProbeSet.of("digits"), probe_configs("margin"))   # doctest: +SKIP
    >>> summaries["margin"]["cosine_to_svm"]                                                         # doctest: +SKIP
    """
    model = unwrap(model)
    dataset = probe_set.dataset
    summaries: dict[str, dict[str, Any]] = {}
    seconds: dict[str, float] = {}
    with undisturbed(model, seed), adapted(model, dataset, output), shared_features():
        for name, config in configs.items():
            entry = get_probe(name)
            start = time.perf_counter()
            seed_measurement(seed)
            track = entry.hook("track")
            if track is not None:
                result = track(model, dataset, config, seed=seed)
            else:
                measure = entry.hook("measure")
                assert measure is not None  # probe_configs keeps the probes with a measurement
                result = measure(model, dataset, config, seed=seed, progress=False)
            seconds[name] = time.perf_counter() - start
            summaries[name] = plain({k: v for k, v in result.summary().items() if is_scalar(v)})
    return summaries, seconds


def headline(point: dict[str, Any]) -> dict[str, float]:
    """The numbers of a point that curves are drawn from and loggers get: ``epoch`` and ``step`` (when known) and
    each probe's summary columns (its entry's ``summary_columns``) as ``<probe>/<column>``, numbers only.

    >>> headline({"epoch": 2, "step": 40, "summaries": {"margin": {"cosine_to_svm": 0.9, "mode": "ovr"}}})
    {'epoch': 2, 'step': 40, 'margin/cosine_to_svm': 0.9}
    """
    out = {k: point[k] for k in ("epoch", "step") if point.get(k) is not None}
    for name, summary in point.get("summaries", {}).items():
        columns = get_probe(name).summary_columns or tuple(summary)
        for column in columns:
            value = number(summary, column)
            if value is not None:
                out[f"{name}/{column}"] = value
    return out


__all__ = ["headline", "measure_point", "probe_configs"]
