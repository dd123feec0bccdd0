"""A run's flat settings split into its four parts, and back, without torch.

Every setting name belongs to exactly one part: the data (:class:`~nnprobe.experiments.specs.DataConfig`), the
model (``model``, ``checkpoint``, ``output`` and the zoo's architecture options), the training
(:class:`~nnprobe.training.config.TrainConfig`) or the probe's own config (its entry's ``config_cls``). Settings
not given take the probe's run-level defaults (``ProbeEntry.defaults``), then each config's own.
:class:`~nnprobe.experiments.Run` is built from these parts; the command line reads its ``--help`` defaults
from :func:`probe_defaults` without loading a probe, a dataset or torch.

>>> probe_defaults("codes")["k"], probe_defaults("margin")["data"]
(9, 'mnist:0,1')
"""

from __future__ import annotations

from dataclasses import fields
from typing import Any

from nnprobe.config import Config, check_known
from nnprobe.entries import ProbeEntry, get_probe
from nnprobe.errors import NNProbeError
from nnprobe.experiments.specs import DataConfig, ModelConfig
from nnprobe.models.names import MODEL_NAMES, model_options
from nnprobe.training.config import TrainConfig

RUNTIME_TRAIN_FIELDS = ("progress",)  # how a run is shown, not what it computes
MODEL_FIELDS = ("model", "checkpoint", "output")  # the model part's own settings, besides the zoo's options


def model_option_names() -> set[str]:
    """Every architecture option of the zoo (``width``, ``depth``, ``feature_dim``, ...)."""
    return {o for name in MODEL_NAMES for o in model_options(name)}


def train_fields() -> list[str]:
    """The training settings of a run (``progress`` is how it is shown, not a setting)."""
    return [f.name for f in fields(TrainConfig) if f.name not in RUNTIME_TRAIN_FIELDS]


def check_settings(entry: ProbeEntry) -> None:
    """Refuse a probe whose config's setting names clash with the data, model or training settings, so that a
    flat settings dict (CLI flags, a sweep point) is unambiguous."""
    if entry.config_cls is None:
        return
    taken = (
        {f.name for f in fields(TrainConfig)} | set(DataConfig.field_names()) | set(MODEL_FIELDS) | model_option_names()
    )
    clash = sorted(taken & set(entry.config_cls.field_names()))
    if clash:
        raise NNProbeError(
            f"probe '{entry.name}' settings {clash} clash with data/model/training settings",
            "rename them in the probe's config (e.g. with the probe's name as prefix)",
        )


def parse_epochs(text: str) -> tuple[int, ...]:
    """``"1,2,5"`` -> ``(1, 2, 5)``.

    >>> parse_epochs("1, 3")
    (1, 3)
    """
    try:
        return tuple(int(e) for e in str(text).split(",") if e.strip())
    except ValueError:
        raise NNProbeError(f"bad snapshot epochs '{text}'", "give epochs separated by commas, e.g. 1,2,5") from None


def split_settings(
    probe: str, params: dict[str, Any] | None = None
) -> tuple[DataConfig, ModelConfig, TrainConfig, Config | None]:
    """``(data, model, train, config)`` of a run of ``probe`` from flat ``params`` (probe defaults, then each
    config's); an unknown setting is an error listing the accepted ones."""
    entry = get_probe(probe)
    check_settings(entry)
    params = dict(params or {})
    merged = {**entry.defaults, **params}
    data_keys, train_keys, option_names = DataConfig.field_names(), train_fields(), model_option_names()
    config_keys = entry.config_cls.field_names() if entry.config_cls else []
    check_known(
        f"'{probe}' setting",
        merged,
        set(data_keys) | set(train_keys) | set(config_keys) | set(MODEL_FIELDS) | option_names,
    )
    data = DataConfig(**{k: merged[k] for k in data_keys if k in merged})
    model = ModelConfig(
        model=merged.get("model", "mlp"),
        checkpoint=merged.get("checkpoint"),
        options={k: merged[k] for k in option_names if k in merged},
        output=merged.get("output"),
    )
    train_kw = {k: merged[k] for k in train_keys if k in merged}
    if isinstance(train_kw.get("snapshot_epochs"), str):
        train_kw["snapshot_epochs"] = parse_epochs(train_kw["snapshot_epochs"])
    train = TrainConfig(**train_kw, progress=bool(params.get("progress", False)))
    config = entry.config_cls(**{k: merged[k] for k in config_keys if k in merged}) if entry.config_cls else None
    return data, model, train, config


def flat_settings(data: DataConfig, model: ModelConfig, train: TrainConfig, config: Config | None) -> dict[str, Any]:
    """Every setting of a run by name (a complete sweep point, what a command line's flags say)."""
    train_dict = {
        k: list(v) if isinstance(v, tuple) else v for k, v in train.to_dict().items() if k not in RUNTIME_TRAIN_FIELDS
    }
    return {
        **data.to_dict(),
        "model": model.model,
        "checkpoint": model.checkpoint,
        "output": model.output,
        **model.options,
        **train_dict,
        **({} if config is None else config.to_dict()),
    }


def probe_defaults(probe: str) -> dict[str, Any]:
    """Every flat setting of ``probe`` with its default: what an empty command line runs."""
    return flat_settings(*split_settings(probe, {}))


__all__ = [
    "MODEL_FIELDS",
    "RUNTIME_TRAIN_FIELDS",
    "check_settings",
    "flat_settings",
    "model_option_names",
    "parse_epochs",
    "probe_defaults",
    "split_settings",
    "train_fields",
]
