"""The bad inputs of issue 19, re-run: each ends in a non-zero exit with one ``Error:`` message and its fix, no
traceback, and no run directory left -- or, where the issue found a wrong refusal or a silent start, in the right
outcome (a resume that resumes, a count that is recorded)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from nnprobe.cli import main

USER_MODULE = textwrap.dedent("""
    from torch import nn

    class TupleNet(nn.Module):
        def __init__(self, classes=10):
            super().__init__()
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU())
            self.out = nn.Linear(16, classes)

        def forward(self, x):
            f = self.body(x)
            return self.out(f), f

    class Rgb32(nn.Module):   # takes 3x32x32 images, as CIFAR / torchvision models do
        def __init__(self):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, stride=2)
            self.fc = nn.Linear(4 * 15 * 15, 10)

        def forward(self, x):
            return self.fc(self.conv(x).relu().flatten(1))
""")


def invoke(*args, env=None):
    return CliRunner().invoke(main, [*args, "--no-progress"], env=env)


def refused(result, out: Path, *words):
    """A non-zero exit, one ``Error:`` line and its ``fix:`` line, all ``words``, no traceback, nothing on disk."""
    text = result.output
    assert result.exit_code != 0, text
    lines = text.strip().splitlines()
    assert text.startswith("Error: ") and "Traceback" not in text, text
    assert len(lines) == 2 and lines[1].startswith("  fix: "), text
    for word in words:
        assert word in text, (word, text)
    assert not out.exists(), sorted(p.name for p in out.iterdir())


@pytest.fixture
def saved(tmp_path, monkeypatch):
    """``name -> path`` of whole models saved with torch.save (module ``issue19nets`` importable)."""
    folder = tmp_path / "mods"
    folder.mkdir()
    (folder / "issue19nets.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "issue19nets", raising=False)
    import issue19nets

    torch.manual_seed(0)
    paths = {
        "tuple10": issue19nets.TupleNet(10),
        "tuple2": issue19nets.TupleNet(2),
        "rgb32": issue19nets.Rgb32(),
        "plain2": torch.nn.Sequential(
            torch.nn.Flatten(), torch.nn.Linear(64, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2)
        ),
    }
    for name, model in paths.items():
        torch.save(model, tmp_path / f"{name}.pt")
        paths[name] = tmp_path / f"{name}.pt"
    yield paths
    sys.modules.pop("issue19nets", None)


@pytest.mark.parametrize("probe, flags", [("codes", ["--no-nulls"]), ("gradnet", ["--gradnet-epochs", "1"])])
def test_a_model_returning_logits_and_features_is_probed(tmp_path, saved, probe, flags):
    out = tmp_path / "run"
    result = invoke(
        probe,
        "--checkpoint",
        str(saved["tuple10"]),
        "--data",
        "digits",
        "--samples-per-class",
        "20",
        *flags,
        "--out",
        str(out),
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    assert json.loads((out / "config.json").read_text())["record"]["model"]["output"] == 0


@pytest.mark.parametrize("probe", ["margin", "codes", "gradnet"])
def test_a_two_class_model_on_ten_class_data_is_refused_by_every_probe(tmp_path, saved, probe):
    out = tmp_path / "run"
    refused(
        invoke(probe, "--checkpoint", str(saved["plain2"]), "--data", "digits", "--out", str(out)),
        out,
        "2 outputs but the dataset has 10 classes",
        "--data mnist:0,1 for 2",
    )
    # returning (logits, features): the message shows the tuple and says what [0] would mean
    refused(
        invoke(probe, "--checkpoint", str(saved["tuple2"]), "--data", "digits", "--out", str(out)),
        out,
        "a tuple of 2: [0] tensor (2, 2), [1] tensor (2, 16)",
        "none of its elements has 10 columns",
        "if [0] holds the logits, the model has 2 outputs but the dataset has 10 classes",
        "--output INDEX",
    )
    refused(
        invoke(probe, "--checkpoint", str(saved["tuple2"]), "--data", "digits", "--output", "0", "--out", str(out)),
        out,
        "2 outputs but the dataset has 10 classes",
    )


def test_a_model_for_3x32x32_images_on_grey_8x8_digits_names_the_adaptation(tmp_path, saved):
    out = tmp_path / "run"
    refused(
        invoke("codes", "--checkpoint", str(saved["rgb32"]), "--data", "digits:0,1,2,3,4,5,6,7,8,9", "--out", str(out)),
        out,
        "fails on the inputs",
        "--data digits:0,1,2,3,4,5,6,7,8,9@3x32x32",
    )
    result = invoke(
        "codes",
        "--checkpoint",
        str(saved["rgb32"]),
        "--data",
        "digits@3x32x32",
        "--no-nulls",
        "--out",
        str(out),
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output


@pytest.mark.parametrize(
    "name, value, words",
    [
        ("tuple_output", "2", ["output 2 does not exist", "a tuple of 2"]),
        ("tensor_output", "logits", ["output 'logits' was given but the model returns a tensor"]),
    ],
)
def test_a_wrong_output_is_refused(tmp_path, saved, name, value, words):
    out = tmp_path / "run"
    model = saved["tuple10"] if name == "tuple_output" else None
    args = ["--checkpoint", str(model)] if model else []
    refused(invoke("margin", *args, "--data", "digits", "--output", value, "--out", str(out)), out, *words)


def test_a_different_data_directory_holding_the_same_files_resumes(tmp_path):
    out = tmp_path / "run"
    first, second = tmp_path / "data-a", tmp_path / "data-b"
    first.mkdir()
    second.mkdir()
    args = ["codes", "--data", "digits", "--samples-per-class", "10", "--epochs", "1", "--no-nulls", "--out", str(out)]
    assert invoke(*args, env={"NNPROBE_DATA": str(first)}).exit_code == 0
    written = (out / "result.json").read_text()
    result = invoke(*args, "--resume", env={"NNPROBE_DATA": str(second)})
    assert result.exit_code == 0, result.output
    assert (out / "result.json").read_text() == written  # the finished run is read back, not recomputed
    changed = invoke(*args[:-2], "--epochs", "2", "--out", str(out), "--resume", env={"NNPROBE_DATA": str(second)})
    assert changed.exit_code == 1 and "train.epochs: 1 -> 2" in changed.output


def test_a_data_file_with_other_contents_is_another_run(tmp_path, mnist_dir, monkeypatch):
    """The same name read from a directory whose files differ (MD5) is refused on resume."""
    from nnprobe.experiments import specs

    monkeypatch.setattr(specs, "_LOADED", {})
    out, copy = tmp_path / "run", tmp_path / "copy" / "mnist"
    copy.mkdir(parents=True)
    for f in Path(mnist_dir, "mnist").iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    args = ["train", "--data", "mnist:0,1", "--samples-per-class", "10", "--epochs", "1", "--out", str(out)]
    assert invoke(*args, "--data-dir", str(copy.parent)).exit_code == 0
    assert invoke(*args, "--data-dir", str(mnist_dir), "--resume").exit_code == 0  # same files elsewhere
    labels = next(p for p in copy.iterdir() if p.name.startswith("t10k-labels"))
    data = bytearray(labels.read_bytes())
    data[-1] = (data[-1] + 1) % 10  # one test label changed
    labels.write_bytes(bytes(data))
    specs._LOADED.clear()  # each command is a process of its own; this one keeps loaded datasets in memory
    result = invoke(*args, "--data-dir", str(copy.parent), "--resume")
    assert result.exit_code == 1 and "data_files" in result.output, result.output


def test_resume_of_a_mistyped_directory_is_refused(tmp_path):
    out = tmp_path / "runs" / "cdoes"
    refused(
        invoke("codes", "--data", "digits", "--out", str(out), "--resume"), out, "does not exist", "leave out --resume"
    )
    refused(invoke("demo", "--out", str(out), "--resume"), out, "does not exist")


@pytest.mark.parametrize(
    "args, words",
    [
        (["codes", "--data", "digits", "--momentum", "-1"], ["momentum must lie in [0, 1)", "-1"]),
        (["codes", "--data", "digits", "--weight-decay", "-1"], ["weight decay must be a number >= 0", "-1"]),
        (["margin", "--data", "digits", "--momentum", "1.5"], ["momentum"]),
        (["codes", "--data", "digits", "--k", "100000"], ["k=100000 neighbours", "1438 examples", "--k 9"]),
    ],
)
def test_bad_settings_are_refused_before_anything_is_written(tmp_path, args, words):
    out = tmp_path / "run"
    refused(invoke(*args, "--out", str(out)), out, *words)


def test_k_is_refused_before_training(tmp_path):
    """The K-NN check runs in the preflight: a run that would train 1000 epochs first fails at once."""
    out = tmp_path / "run"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "nnprobe",
            "codes",
            "--data",
            "digits",
            "--epochs",
            "1000",
            "--k",
            "100000",
            "--out",
            str(out),
            "--no-progress",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])},
    )
    assert result.returncode != 0 and "k=100000" in result.stderr and not out.exists(), result.stderr


@pytest.fixture
def read_only_dir(tmp_path):
    """A directory nobody may write into: a read-only tmpfs when mounting works (root), else mode 0555."""
    where = tmp_path / "ro"
    where.mkdir()
    mounted = False
    if os.geteuid() == 0:
        mounted = (
            subprocess.run(
                ["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(where)], capture_output=True
            ).returncode
            == 0
        )
        if not mounted:
            pytest.skip("running as root without permission to mount a read-only file system")
    else:
        where.chmod(0o555)
    yield where
    if mounted:
        subprocess.run(["umount", str(where)], check=True)
    else:
        where.chmod(0o755)


def test_an_unwritable_out_is_refused_before_anything_runs(read_only_dir):
    out = read_only_dir / "run"
    refused(
        invoke("codes", "--data", "digits", "--out", str(out)),
        out,
        "cannot write --out",
        "is not writable",
        "choose a --out",
    )


def test_samples_per_class_above_what_exists_is_said_and_recorded(tmp_path):
    out = tmp_path / "run"
    result = invoke(
        "codes",
        "--data",
        "digits:0,1",
        "--samples-per-class",
        "1000",
        "--epochs",
        "1",
        "--no-nulls",
        "--out",
        str(out),
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    assert "warning: train split: fewer than 1000 examples per class in class(es) 0: 150, 1: 144" in result.stderr
    record = json.loads((out / "config.json").read_text())["record"]["data"]
    assert record["counts"]["train"] == {"0": 150, "1": 144} and record["n_train"] == 294
    assert record["counts"]["short"]["train"] == {"asked": 1000, "available": {"0": 150, "1": 144}}
