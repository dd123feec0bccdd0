"""The command line is lazy: ``nnprobe --help`` lists every command without importing the command modules, a
command's ``--help`` imports its own module only, and neither imports torch; a probe's command is built from its
entry by ``nnprobe.cli.probes``, also without torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import click
import pytest

import nnprobe
from nnprobe.cli import COMMANDS, load_command, main, short_help
from nnprobe.entries import probe_names

ROOT = Path(nnprobe.__file__).resolve().parents[1]
BUILT = ("nnprobe.cli.common", "nnprobe.cli.probes")  # imported by the group itself (torch-free)
PROBE = """
import json, sys
from nnprobe.cli import main
try:
    main(sys.argv[1:], prog_name="nnprobe")
except SystemExit:
    pass
cli = sorted(m for m in sys.modules if m.startswith("nnprobe.cli."))
print(json.dumps({"torch": "torch" in sys.modules, "cli": cli}))
"""


def _imports_on_help(*args: str) -> dict:
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-c", PROBE, *args, "--help"], capture_output=True, text=True, env=env, check=True, cwd=ROOT
    ).stdout
    return json.loads(out.strip().splitlines()[-1])


def test_help_imports_no_command_module_and_no_torch():
    seen = _imports_on_help()
    assert seen == {"torch": False, "cli": list(BUILT)}


@pytest.mark.parametrize("command", sorted(COMMANDS) + ["margin", "codes", "gradnet", "train"])
def test_a_command_help_imports_its_module_only_and_no_torch(command):
    seen = _imports_on_help(command)
    assert not seen["torch"], command
    own = {COMMANDS[command][0].partition(":")[0]} if command in COMMANDS else set()
    assert set(seen["cli"]) == {*BUILT, *own}


@pytest.mark.parametrize(
    "args",
    [("data", "info"), ("reproduce", "margin"), ("reproduce", "codes"), ("reproduce", "gradnet"), ("sweep", "run")],
)
def test_subcommand_help_imports_no_torch(args):
    assert not _imports_on_help(*args)["torch"]


def test_the_listed_help_is_each_command_s_own():
    """The first sentences listed shorten exactly as the commands' own help would, at any width."""
    for name in [*COMMANDS, *probe_names()]:
        sentence = short_help(name)
        command = load_command(name)
        assert command.name == name
        for limit in range(20, 200, 7):
            assert click.Command(name, help=sentence).get_short_help_str(limit) == command.get_short_help_str(limit)


def test_every_command_is_listed_and_loads():
    ctx = click.Context(main)
    assert main.list_commands(ctx) == sorted({*COMMANDS, *probe_names()})
    assert all(isinstance(main.get_command(ctx, name), click.Command) for name in main.list_commands(ctx))


def test_model_choices_are_the_zoo():
    from nnprobe.experiments.specs import MODEL_NAMES
    from nnprobe.models import MODELS

    assert tuple(MODELS) == MODEL_NAMES


def test_python_dash_m_nnprobe():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run(
        [sys.executable, "-m", "nnprobe", "--version"], capture_output=True, text=True, env=env, check=True, cwd=ROOT
    ).stdout
    assert out.strip() == f"nnprobe, version {nnprobe.__version__}"


def test_the_old_plans_path_is_the_new_module():
    import nnprobe.reproduce.plans as plans

    sys.modules.pop("nnprobe.experiments.plans", None)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        from nnprobe.experiments.plans import margin_plan
    assert margin_plan is plans.margin_plan
    assert sys.modules["nnprobe.experiments.plans"] is plans
    assert any(issubclass(w.category, DeprecationWarning) for w in caught)
