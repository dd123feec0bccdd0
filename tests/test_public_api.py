"""One public API: ``import nnprobe`` gives each probe's config, measure function and result, ``Run``, the data,
``split_head`` and the verdict statistics, lazily: importing nnprobe loads no torch (nor lightning or
transformers, which a user's environment may hold), and each name is the very object of its home package."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import types
from pathlib import Path

import pytest
import torch
from torch import nn

import nnprobe
from nnprobe.lazy import export_lazily

ROOT = Path(nnprobe.__file__).resolve().parents[1]
HEAVY = ("torch", "lightning", "pytorch_lightning", "transformers", "numpy", "scipy", "sklearn", "matplotlib")


def _loaded_after(code: str) -> list[str]:
    """The heavy packages in ``sys.modules`` after running ``code`` in a fresh interpreter."""
    probe = f"import sys, json\n{code}\nprint(json.dumps([m for m in {HEAVY!r} if m in sys.modules]))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=env, check=True, cwd=ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_import_nnprobe_loads_no_torch_lightning_or_transformers():
    assert _loaded_after("import nnprobe") == []


def test_the_probe_configs_load_without_torch():
    assert "torch" not in _loaded_after(
        "import nnprobe\nnnprobe.MarginConfig, nnprobe.CodesConfig, nnprobe.GradSpaceConfig, nnprobe.NNProbeError"
    )


def test_each_public_name_is_its_home_object():
    import nnprobe.data
    import nnprobe.experiments
    import nnprobe.models
    import nnprobe.probes.codes as codes
    import nnprobe.probes.collapse as collapse
    import nnprobe.probes.gradnet as gradnet
    import nnprobe.probes.margin as margin
    import nnprobe.stats
    import nnprobe.tracking
    from nnprobe.errors import NNProbeError

    assert (nnprobe.margin_probe, nnprobe.codes_probe, nnprobe.gradnet_probe) == (
        margin.measure,
        codes.measure,
        gradnet.measure,
    )
    assert (nnprobe.MarginConfig, nnprobe.MarginProbeResult) == (margin.MarginConfig, margin.MarginProbeResult)
    assert (nnprobe.CodesConfig, nnprobe.CodesResult) == (codes.CodesConfig, codes.CodesResult)
    assert (nnprobe.GradSpaceConfig, nnprobe.GradSpaceResult) == (gradnet.GradSpaceConfig, gradnet.GradSpaceResult)
    assert (nnprobe.CollapseConfig, nnprobe.CollapseResult, nnprobe.collapse_probe) == (
        collapse.CollapseConfig,
        collapse.CollapseResult,
        collapse.measure,
    )
    assert nnprobe.ProbeSetConfig is nnprobe.tracking.ProbeSetConfig
    assert (nnprobe.Run, nnprobe.load_result) == (nnprobe.experiments.Run, nnprobe.experiments.load_result)
    assert (nnprobe.Dataset, nnprobe.load_dataset) == (nnprobe.data.Dataset, nnprobe.data.load_dataset)
    assert nnprobe.split_head is nnprobe.models.split_head
    assert nnprobe.NNProbeError is NNProbeError
    stats = [n for n in nnprobe.__all__ if hasattr(nnprobe.stats, n)]
    assert {"Decision", "threshold_claim", "comparison_claim", "agreement_claim", "t_interval"} <= set(stats)
    assert all(getattr(nnprobe, n) is getattr(nnprobe.stats, n) for n in stats)


def test_every_name_of_all_resolves_and_dir_lists_it():
    assert len(set(nnprobe.__all__)) == len(nnprobe.__all__)
    for name in nnprobe.__all__:
        assert getattr(nnprobe, name) is not None, name
    assert set(nnprobe.__all__) <= set(dir(nnprobe))


def test_each_probe_s_measure_and_config_are_its_entry_s():
    from nnprobe.entries import get_probe, resolve

    for name in ("margin", "codes", "gradnet"):
        entry = get_probe(name)
        assert getattr(nnprobe, f"{name}_probe") is resolve(entry.measure), name
        assert getattr(nnprobe, entry.config_cls.__name__) is entry.config_cls, name


def test_the_public_api_runs_a_probe():
    """The README's own-model path through the top-level names only: codes on a tiny MLP of digits, whose 64
    hidden ReLU units give each of the 1438 training images a code (redundancy ratio below 0.05)."""
    torch.manual_seed(0)
    ds = nnprobe.load_dataset("digits")
    model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 10))
    assert nnprobe.split_head(model).head_name == "3"
    result = nnprobe.codes_probe(model, ds, nnprobe.CodesConfig(categorisation=False, nulls=False))
    assert isinstance(result, nnprobe.CodesResult)
    assert result.summary()["redundancy_ratio_train"] < 0.05


def test_an_alias_exports_an_attribute_under_another_name_on_first_use(monkeypatch):
    module = types.ModuleType("nnprobe_alias_demo")
    monkeypatch.setitem(sys.modules, module.__name__, module)
    export_lazily(module.__name__, {"json": ("dumps",)}, aliases={"encode": "json:dumps", "sep": "os:sep"})
    assert "encode" not in module.__dict__ and "encode" in dir(module)
    assert module.encode is json.dumps and module.dumps is json.dumps and module.sep == os.sep
    assert "encode" in module.__dict__  # kept as a plain attribute after the first use
    with pytest.raises(ValueError, match="both as names and as aliases"):
        export_lazily(module.__name__, {"json": ("dumps",)}, aliases={"dumps": "json:loads"})
