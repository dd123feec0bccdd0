"""CodesConfig owns its settings: one config passed down to the probe, and options derived from its fields."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields
from pathlib import Path

import pytest

import nnprobe
from nnprobe.errors import NNProbeError
from nnprobe.probes.codes.config import LABEL_MODES, LOGISTIC_MODES, METHODS, CodesConfig

ADDED_IN_0_3 = ("nulls", "region_slice")  # flags 0.2 did not have: --nulls/--no-nulls, --region-slice
ADDED_OPTIONS = ("region_segments", "region_distance_points")  # integer options 0.2 did not have (linear regions)


def test_every_field_declares_its_option_with_the_flags_of_today(flags_of_0_2):
    today = flags_of_0_2("codes")
    cli = []
    for f in fields(CodesConfig):
        meta = f.metadata
        assert meta.get("help"), f"{f.name} has no help text"
        flag = meta["flag"] or "--" + f.name.replace("_", "-")
        if not meta["cli"]:
            assert flag not in today, f.name
            continue
        cli.append(f.name)
        if f.name in ADDED_IN_0_3:
            assert flag not in today and meta["kind"] == "flag", f.name
            continue
        if f.name in ADDED_OPTIONS:
            assert flag not in today and isinstance(f.default, int), f.name
            continue
        param = today[flag]
        assert param.name == f.name and param.help.startswith(meta["help"]), f.name
        if getattr(param.type, "choices", None) is not None:
            assert tuple(param.type.choices) == meta["choices"], f.name
    assert cli == ["layers", "k", "max_fit_samples", "labels", "nulls", *ADDED_OPTIONS, "region_slice"]
    by_name = {f.name: f.metadata for f in fields(CodesConfig)}
    assert by_name["labels"]["choices"] == LABEL_MODES and by_name["logistic"]["choices"] == LOGISTIC_MODES
    assert by_name["methods"]["choices"] == METHODS and by_name["layers"]["kind"] is None


def test_config_module_imports_no_torch_apart_from_the_training_package():
    code = (
        "import sys, types; pkg = types.ModuleType('nnprobe.training'); pkg.__path__ = ['nnprobe/training']; "
        "sys.modules['nnprobe.training'] = pkg; import nnprobe.probes.codes.config, nnprobe.probes.codes; "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        capture_output=True,
        text=True,
        check=True,
        cwd=str(Path(nnprobe.__file__).parents[1]),
    )
    assert out.stdout.strip() == "False"


def test_the_config_reaches_the_probe_and_keywords_are_its_fields():
    """``measure_codes(model, ds, **settings)`` is ``measure(model, ds, CodesConfig(**settings))``; every setting
    arrives under its config name (``record_batch_size`` sets the recording batch)."""
    from nnprobe.data import load_dataset
    from nnprobe.models import build_model
    from nnprobe.probes.codes import measure, measure_codes
    from nnprobe.training import seed_everything

    ds = load_dataset("digits")
    seed_everything(0)
    net = build_model("mlp", ds.input_shape, ds.num_classes, width=16)
    by_keywords = measure_codes(net, ds, k=3, methods=["knn"], record_batch_size=100, max_knn_train_queries=50)
    by_config = measure(net, ds, CodesConfig(k=3, methods=["knn"], record_batch_size=100, max_knn_train_queries=50))
    drop = ("seconds", "record_seconds", "categorisation_seconds", "nulls_seconds")
    assert {k: v for k, v in by_keywords.summary().items() if k not in drop} == {
        k: v for k, v in by_config.summary().items() if k not in drop
    }
    assert by_config.categorisation.k == 3
    assert by_config.memory["record_batch_bytes"] == 100 * (by_config.units_total + by_config.n_units)
    over = measure_codes(net, ds, CodesConfig(k=3, categorisation=False), k=5)
    assert over.categorisation is None
    with pytest.raises(NNProbeError, match="unknown CodesConfig setting"):
        measure_codes(net, ds, batch_size=100)
    with pytest.raises(NNProbeError, match="unknown labels 'wrong'"):
        measure_codes(net, ds, labels="wrong")
