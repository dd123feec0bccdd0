"""Bad inputs from the command line: one readable error naming the problem and the fix, before anything is written.

Also: the data files a run read are recorded (paths, sizes, MD5) in ``result.json`` and the training ``config.json``.
"""

from __future__ import annotations

import hashlib
import json
import sys
import textwrap
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from nnprobe.cli import main

USER_MODULE = textwrap.dedent("""
    from torch import nn

    class SoftmaxNet(nn.Module):
        def __init__(self):
            super().__init__()
            self.body = nn.Sequential(nn.Flatten(), nn.Linear(64, 16), nn.ReLU(), nn.Linear(16, 10), nn.Softmax(dim=1))

        def forward(self, x):
            return self.body(x)

    class LogSoftmaxNet(SoftmaxNet):
        def forward(self, x):
            return self.body[:-1](x).log_softmax(1)

    class LogitsNet(SoftmaxNet):
        def forward(self, x):
            return self.body[:-1](x)
""")


def invoke(*args):
    return CliRunner().invoke(main, [*args, "--no-progress"])


def refused(result, out: Path, *words):
    """Exit status 1, a one-line ``Error:`` + ``fix:`` message with all ``words``, no traceback, nothing written."""
    text = result.output
    assert result.exit_code == 1, text
    assert "Traceback" not in text and text.startswith("Error: ") and "fix:" in text, text
    for word in words:
        assert word in text, (word, text)
    assert not out.exists(), sorted(p.name for p in out.iterdir())


@pytest.mark.parametrize(
    "args, words",
    [
        (["train", "--data", "digits", "--width", "0"], ["width", ">= 1", "got 0"]),
        (["train", "--data", "digits", "--feature-dim", "0"], ["feature_dim", "got 0"]),
        (["margin", "--data", "digits", "--feature-dim", "0"], ["feature_dim", "got 0"]),
        (["codes", "--data", "digits", "--width", "0"], ["width", "got 0"]),
        (["train", "--data", "digits", "--dropout", "1.5"], ["dropout", "[0.0, 1.0)", "1.5"]),
        (["train", "--data", "synthetic:gauss,k=1"], ["1 class", "at least two"]),
        (
            ["train", "--data", "digits", "--snapshot-epochs", "5", "--epochs", "2"],
            ["snapshot epoch(s) [5]", "--epochs"],
        ),
        (["gradnet", "--data", "digits", "--snapshot-epochs", "5", "--epochs", "2"], ["snapshot epoch(s) [5]"]),
        (["codes", "--data", "digits", "--layers", "nosuch"], ["'nosuch'", "choose among"]),
        (["train", "--data", "digits", "--data-dir", "/no/such/dir"], ["'/no/such/dir' does not exist"]),
    ],
)
def test_bad_option_is_refused_before_anything_is_written(tmp_path, args, words):
    out = tmp_path / "run"
    refused(invoke(*args, "--out", str(out)), out, *words)


@pytest.fixture
def user_models(tmp_path, monkeypatch):
    """``name -> path`` of whole user models saved with torch.save; their module ``usernets`` is importable."""
    folder = tmp_path / "mods"
    folder.mkdir()
    (folder / "usernets.py").write_text(USER_MODULE)
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.delitem(sys.modules, "usernets", raising=False)
    import usernets

    paths = {}
    for name in ("SoftmaxNet", "LogSoftmaxNet", "LogitsNet"):
        torch.manual_seed(0)
        paths[name] = tmp_path / f"{name}.pt"
        torch.save(getattr(usernets, name)(), paths[name])
    yield paths
    sys.modules.pop("usernets", None)


@pytest.mark.parametrize(
    "probe, name, words",
    [
        ("margin", "SoftmaxNet", ["probabilities", "Softmax"]),
        ("codes", "SoftmaxNet", ["probabilities", "Softmax"]),
        ("gradnet", "LogSoftmaxNet", ["log-probabilities", "LogSoftmax"]),
    ],
)
def test_model_ending_in_softmax_is_refused(tmp_path, user_models, probe, name, words):
    out = tmp_path / "run"
    result = invoke(probe, "--checkpoint", str(user_models[name]), "--data", "digits", "--out", str(out))
    refused(result, out, *words, "remove the final softmax")


def test_the_same_model_returning_logits_passes_the_check(user_models):
    from nnprobe.models.checks import check_logits, output_kind
    from nnprobe.training import load_checkpoint

    x = torch.randn(8, 1, 8, 8)
    model, _ = load_checkpoint(user_models["LogitsNet"])
    check_logits(model, x)  # no error
    z = model(x)
    # the rule against an independent computation: softmax rows sum to 1, log_softmax rows have logsumexp 0
    assert output_kind(z) == "logits"
    assert output_kind(torch.exp(z) / torch.exp(z).sum(1, keepdim=True)) == "probabilities"
    assert output_kind(z - torch.log(torch.exp(z).sum(1, keepdim=True))) == "log_probabilities"
    assert output_kind(torch.full((4, 3), 1 / 3) + torch.tensor([0.0, 0.0, 0.01])) == "logits"  # sums to 1.01


def test_checkpoint_of_a_class_that_cannot_be_imported_names_module_and_fix(tmp_path, user_models, monkeypatch):
    monkeypatch.setattr(sys, "path", [p for p in sys.path if not p.endswith("mods")])
    sys.modules.pop("usernets", None)
    out = tmp_path / "run"
    result = invoke("margin", "--checkpoint", str(user_models["LogitsNet"]), "--data", "digits", "--out", str(out))
    refused(result, out, "usernets.LogitsNet", "no module named 'usernets'", "PYTHONPATH", "pip install")
    assert "damaged" not in result.output


def test_checkpoint_of_a_class_defined_in_a_script(tmp_path):
    import subprocess

    path = tmp_path / "main.pt"
    subprocess.run(
        [
            sys.executable,
            "-c",
            "import torch\nfrom torch import nn\nclass Net(nn.Sequential): pass\n"
            f"torch.save(Net(nn.Flatten(), nn.Linear(64, 10)), {str(path)!r})",
        ],
        check=True,
    )
    out = tmp_path / "run"
    result = invoke("codes", "--checkpoint", str(path), "--data", "digits", "--out", str(out))
    refused(result, out, "__main__.Net", "defined in the script that saved", "state_dict")


def test_text_file_as_checkpoint_is_not_a_pytorch_file(tmp_path):
    path = tmp_path / "notes.txt"
    path.write_text("my notes, not a model\n")
    out = tmp_path / "run"
    result = invoke("codes", "--checkpoint", str(path), "--data", "digits", "--out", str(out))
    refused(result, out, "is not a PyTorch file", "my notes")
    assert "MARK" not in result.output and "pickle" not in result.output.lower().split("fix:")[0].split("nor a")[0]


def _md5(path) -> str:
    return hashlib.md5(Path(path).read_bytes()).hexdigest()


def test_run_records_the_data_files_it_read(tmp_path):
    import sklearn.datasets

    out = tmp_path / "run"
    result = invoke("codes", "--data", "digits", "--width", "8", "--epochs", "1", "--out", str(out))
    assert result.exit_code == 0, result.output
    digits = Path(sklearn.datasets.__file__).parent / "data" / "digits.csv.gz"
    expected = [{"path": str(digits.resolve()), "bytes": digits.stat().st_size, "md5": _md5(digits)}]
    assert json.loads((out / "result.json").read_text())["data_files"] == expected
    assert json.loads((out / "train" / "config.json").read_text())["dataset"]["files"] == expected


def test_mnist_run_records_the_four_idx_files(tmp_path, mnist_dir):
    out = tmp_path / "run"
    result = invoke(
        "train",
        "--data",
        "mnist:0,1",
        "--data-dir",
        mnist_dir,
        "--samples-per-class",
        "5",
        "--test-samples-per-class",
        "5",
        "--width",
        "4",
        "--epochs",
        "1",
        "--out",
        str(out),
    )
    assert result.exit_code == 0, result.output
    files = json.loads((out / "result.json").read_text())["data_files"]
    names = sorted(Path(f["path"]).name.split(".")[0].replace("-idx", ".idx").split(".")[0] for f in files)
    assert names == ["t10k-images", "t10k-labels", "train-images", "train-labels"]
    for f in files:
        assert Path(f["path"]).resolve().parent == Path(files[0]["path"]).parent
        assert f["bytes"] == Path(f["path"]).stat().st_size and f["md5"] == _md5(f["path"])
