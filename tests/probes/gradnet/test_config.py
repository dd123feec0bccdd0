"""GradSpaceConfig owns every setting: its command-line option (equal to today's ``nnprobe gradnet`` flags), the
constants it validates against, and it imports no torch (the CLI builds ``--help`` from it)."""

import subprocess
import sys
import textwrap
from dataclasses import fields

import pytest

from nnprobe.probes.gradnet import config as gc
from nnprobe.probes.gradnet.config import GradSpaceConfig

NO_FLAG = {
    "gradnet_momentum",
    "control_rate",
    "baselines",
    "converged_base",
    "converged_max_epochs",
    "converged_patience",
    "converged_validation_fraction",
}  # settings of Python calls and sweeps only


def test_every_field_declares_its_option():
    choices = {
        "criterion": gc.CRITERIA,
        "selection": gc.SELECTIONS,
        "grad_normalize": gc.NORMALIZATIONS,
        "label_draw": gc.LABEL_DRAWS,
        "gradnet_optimizer": gc.OPTIMIZERS,
        "target": gc.TARGETS,
        "control_rate": gc.CONTROL_RATES,
    }
    for f in fields(GradSpaceConfig):
        meta = f.metadata
        assert meta.get("help"), f.name
        assert meta["cli"] == (f.name not in NO_FLAG), f.name
        assert meta["choices"] == choices.get(f.name), f.name
    kinds = {
        f.name: (f.metadata["kind"], f.metadata["negative"]) for f in fields(GradSpaceConfig) if f.metadata["kind"]
    }
    assert kinds == {
        "params": ("list", None),
        "weights_only": ("flag", "--with-biases"),
        "controls": ("flag", None),
        "max_memory": ("bytes", None),
    }
    assert GradSpaceConfig().max_memory == gc.DEFAULT_MAX_MEMORY == 2**31


def test_options_equal_the_gradnet_command_flags():
    import click

    from nnprobe.cli import main

    flags = {p.name: p for p in main.get_command(click.Context(main), "gradnet").params}
    for f in fields(GradSpaceConfig):
        meta = f.metadata
        if not meta["cli"]:
            assert f.name not in flags, f.name
            continue
        param = flags[f.name]
        assert param.opts == [meta["flag"] or "--" + f.name.replace("_", "-")], f.name
        if meta["kind"] == "flag":
            assert param.secondary_opts == [meta["negative"] or "--no-" + f.name.replace("_", "-")], f.name
        assert param.help == meta["help"] or param.help.startswith(meta["help"] + "  [default: "), f.name
        assert tuple(getattr(param.type, "choices", None) or ()) == (meta["choices"] or ()), f.name


def _python(code: str) -> str:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, check=True
    ).stdout.strip()


def test_config_and_package_import_no_torch():
    # nnprobe.training's package __init__ imports torch today (it is being made lazy elsewhere): with it set aside,
    # nothing on the config's path may pull torch in
    stubbed = _python("""
        import pathlib, sys, types
        import nnprobe
        pkg = types.ModuleType("nnprobe.training")
        pkg.__path__ = [str(pathlib.Path(nnprobe.__file__).parent / "training")]
        sys.modules["nnprobe.training"] = pkg
        import nnprobe.probes.gradnet as g
        from nnprobe.probes.gradnet.config import GradSpaceConfig
        GradSpaceConfig(structure="5+25+10", params="a,b")
        print("torch" in sys.modules, g.GradSpaceConfig is GradSpaceConfig)
    """)
    assert stubbed == "False True"
    plain = _python("import sys, nnprobe.probes.gradnet.config; print('torch' in sys.modules)")
    training = _python("import sys, nnprobe.training.rundir; print('torch' in sys.modules)")
    assert plain == "False" or training == "True"


def test_the_package_exports_every_name_from_its_module():
    import nnprobe.probes.gradnet as g

    homes = {
        "parse_structure": "config",
        "per_sample_grads_loop": "oracles",
        "measure": "study",
        "GradientExtractor": "extract",
        "MemoryBudget": "memory",
        "train_gradnet": "network",
    }
    for name in g.__all__:
        assert getattr(g, name) is not None, name
    for name, module in homes.items():
        assert getattr(g, name).__module__ == f"nnprobe.probes.gradnet.{module}"
    from nnprobe.probes.gradnet.network import OPTIMIZERS, parse_structure  # the old homes still import

    assert OPTIMIZERS is gc.OPTIMIZERS and parse_structure is gc.parse_structure
    with pytest.raises(AttributeError):
        _ = g.no_such_name


def test_gradient_config_is_a_deprecated_spelling_of_gradspace_config():
    from nnprobe.errors import NNProbeError
    from nnprobe.probes.gradnet import GradientConfig

    with pytest.warns(DeprecationWarning, match="GradSpaceConfig"):
        cfg = GradientConfig(percent=5.0, normalize="minmax_sqrt", weight_decay=5e-4)
    assert cfg == GradSpaceConfig(percent=5.0, grad_normalize="minmax_sqrt", grad_weight_decay=5e-4)
    with pytest.warns(DeprecationWarning), pytest.raises(NNProbeError, match="seed"):
        GradientConfig(seed=3)
