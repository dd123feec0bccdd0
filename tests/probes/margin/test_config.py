"""MarginConfig owns its settings: constants, validation and the command-line options derived from its fields."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import fields

import pytest

from nnprobe.errors import NNProbeError
from nnprobe.probes.margin.config import MULTI_CLASS_MODES, SOLVERS, MarginConfig


def _flag(f) -> str:
    return f.metadata["flag"] or "--" + f.name.replace("_", "-")


# settings whose flag changed on purpose after 0.2: the bias-penalised SVM became the default yardstick (help
# text), and the null baseline, the margin distribution and the soft margin's C are new (issues 18, 20)
CHANGED_SINCE_0_2 = {"bias_penalised", "null_starts", "margin_layers", "soft_C"}


def test_every_field_declares_its_option_with_the_flags_of_today(flags_of_0_2):
    """The derived flags equal today's ``nnprobe margin`` flags: names, help texts, on/off forms, choices."""
    today = flags_of_0_2("margin")
    for f in fields(MarginConfig):
        meta = f.metadata
        assert meta.get("help"), f"{f.name} has no help text"
        if f.name in CHANGED_SINCE_0_2:
            continue
        if not meta["cli"]:
            assert _flag(f) not in today, f.name
            continue
        param = today[_flag(f)]
        assert param.name == f.name
        assert param.help.startswith(meta["help"]), f.name  # today's help adds '  [default: ...]'
        if meta["kind"] == "flag":
            assert param.secondary_opts == ["--no-" + f.name.replace("_", "-")]
        if getattr(param.type, "choices", None) is not None:
            assert tuple(param.type.choices) == meta["choices"], f.name
    assert fields(MarginConfig)[0].metadata["flag"] == "--C"
    by_name = {f.name: f.metadata for f in fields(MarginConfig)}
    assert by_name["max_memory"]["kind"] == "bytes"
    assert by_name["solver"]["choices"] == SOLVERS and by_name["multi_class"]["choices"] == MULTI_CLASS_MODES
    assert {n for n, m in by_name.items() if not m["cli"]} == {
        "retrain_lr",
        "grid_resolution",
        "plot_points",
        "perceptron_epochs",
    }


def test_config_module_imports_no_torch_apart_from_the_training_package():
    code = (
        "import sys, types; pkg = types.ModuleType('nnprobe.training'); pkg.__path__ = ['nnprobe/training']; "
        "sys.modules['nnprobe.training'] = pkg; import nnprobe.probes.margin.config, nnprobe.probes.margin; "
        "print('torch' in sys.modules)"
    )
    import nnprobe

    root = str(__import__("pathlib").Path(nnprobe.__file__).parents[1])
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root)
    assert out.stdout.strip() == "False"


def test_solver_constants_are_the_ones_the_fit_checks():
    import torch

    from nnprobe.probes.margin import fit_svm

    x, y = torch.tensor([[0.0], [1.0], [3.0], [4.0]]), torch.tensor([0, 0, 1, 1])
    for solver in SOLVERS:
        assert fit_svm(x, y, solver=solver).separable
    with pytest.raises(NNProbeError, match="use one of: ipm, smo"):
        fit_svm(x, y, solver="newton")
    with pytest.raises(NNProbeError, match="unknown solver 'newton'"):
        MarginConfig(solver="newton")
