"""What every plan shares: the run of a plan entry, seeds of an entry, and the names of protocols and sweeps."""

from __future__ import annotations

from typing import Any

from nnprobe import experiments
from nnprobe.errors import NNProbeError
from nnprobe.experiments.seeds import seed_values

SCALE = "scale"  # the real-scale margin settings (margin_scale_plan): run only when selected with --only
MIDPOINT = "midpoint"  # the key of the margin midpoint study (margin_midpoint_plan) among the experiments
GRADNET_PROTOCOLS = ("nnprobe", "reference")  # gradnet_plan, gradnet_reference_plan
CODES_PROTOCOLS = ("nnprobe", "reference")  # the sweeps and phase chart; He et al.'s own (codes_reference_plan)
CODES_REFERENCE_SWEEPS = ("width", "epochs", "samples", "nnprobe_width")  # codes_reference_plan + nnprobe's widths


def plan_run(entry: dict[str, Any], **overrides: Any) -> experiments.Run:
    """The :class:`~nnprobe.experiments.Run` of a plan entry (``overrides``: flat settings such as ``data_dir``)."""
    return experiments.Run.from_flat(
        entry["probe"], {**entry["params"], **{k: v for k, v in overrides.items() if v is not None}}
    )


def seed_runs(entry: dict[str, Any], seeds: int) -> list[dict[str, Any]]:
    """The plan entries of ``seeds`` training seeds of ``entry``: the entry itself (its own seed, default 0), then
    copies keyed ``<key>-seed<S>`` with seed ``S`` = seed + 100, + 200, ... (``entry["seeded"]`` false: the entry
    alone, one seed). The copies skip the re-initialised head's retraining (``retrain_epochs=0``): it comes after
    training, so the jointly trained head that the verdict reads is the same, and the first seed keeps the figure.

    >>> [(e["key"], e["params"]["seed"]) for e in seed_runs({"key": "a", "seeded": True, "params": {}}, 3)]
    [('a', 0), ('a-seed100', 100), ('a-seed200', 200)]
    """
    first = dict(entry, params={"seed": 0, **entry["params"]})
    if not entry.get("seeded") or seeds <= 1:
        return [first]
    return [first] + [
        dict(entry, key=f"{entry['key']}-seed{s}", params=dict(entry["params"], seed=s, retrain_epochs=0))
        for s in seed_values(first["params"]["seed"], seeds)[1:]
    ]


def per_seed(plan: list[dict[str, Any]], seeds: int) -> list[dict[str, Any]]:
    """Each entry of ``plan`` once per seed: seed ``s`` adds ``s`` to the entry's seed, is keyed
    ``<key>/seed<s>`` and carries ``group`` (the entry's key: the runs of one setting) and ``seed_index``.

    >>> from nnprobe.reproduce.plans import gradnet_plan
    >>> [(e["key"], e["group"], e["params"]["seed"]) for e in per_seed(gradnet_plan(quick=True), 2)][:2]
    [('mnist/seed0', 'mnist', 0), ('mnist/seed1', 'mnist', 1)]
    """
    if isinstance(seeds, bool) or int(seeds) < 1:
        raise NNProbeError(f"seeds is {seeds}; it must be at least 1", "pass 1 or more seeds per setting")
    return [
        {
            **e,
            "key": f"{e['key']}/seed{s}",
            "group": e["key"],
            "seed_index": s,
            "params": {**e["params"], "seed": int(e["params"].get("seed", 0)) + s},
        }
        for e in plan
        for s in range(int(seeds))
    ]
