"""``nnprobe gradnet``: runs end to end on tiny data, writes the table, figures and report; clean errors."""

import json

import pytest
import torch
from click.testing import CliRunner

from nnprobe.cli import main


def test_gradnet_command_writes_results_and_figures(tmp_path):
    from nnprobe.data import load_dataset
    from nnprobe.training import evaluate, load_checkpoint

    out = tmp_path / "run"
    args = [
        "gradnet",
        "--data",
        "digits",
        "--samples-per-class",
        "50",
        "--test-samples-per-class",
        "20",
        "--model",
        "mlp",
        "--width",
        "16",
        "--depth",
        "2",
        "--epochs",
        "2",
        "--snapshot-epochs",
        "1,2",
        "--percent",
        "20",
        "--fit-samples",
        "100",
        "--gradnet-epochs",
        "3",
        "--structure",
        "4+4+4",
        "--no-progress",
        "--out",
        str(out),
    ]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    payload = json.loads((out / "result.json").read_text())
    snaps = payload["result"]["snapshots"]
    assert [s["epoch"] for s in snaps] == [1, 2] and all(s["structure"] == "4+4+4" for s in snaps)
    ds = load_dataset("digits", samples_per_class=50, test_samples_per_class=20)
    for s in snaps:  # the base accuracy is the saved snapshot's own test accuracy
        model, _ = load_checkpoint(out / "snapshots" / f"epoch_{s['epoch']}.pt")
        assert s["base_test_accuracy"] == evaluate(model, ds.x_test, ds.y_test)["accuracy"]
        assert (
            len(s["gradnet_history"]) == 3 and s["gradnet_test_accuracy"] == s["gradnet_history"][-1]["test_accuracy"]
        )
    for name in ["snapshots.png", "curves.png"]:
        assert (out / name).stat().st_size > 5000
    # the command prints the finding: every comparison named with its McNemar p-value (issue 18)
    line = next(x for x in res.output.splitlines() if x.startswith("finding: "))
    for name in ("base snapshot", "control (a)", "control (b)", "linear probe", "small MLP", "converged base"):
        assert f"vs {name} " in line, name
    assert line.count("one-sided p = ") == 6 and "epoch-2 snapshot, one seed" in line
    last = snaps[-1]
    # 3 GradNet epochs of ceil(250 / 64) batches; the controls take at least as many steps, the probes exactly as many
    assert last["gradnet_steps"] == 3 * 4 and last["control_finetune_steps"] >= last["gradnet_steps"]
    assert last["control_both_halves_steps"] >= last["gradnet_steps"] and last["probe_steps"] == last["gradnet_steps"]


class UserNet(torch.nn.Module):
    """A classifier written without nnprobe: functional ReLU, head named ``out``."""

    def __init__(self):
        super().__init__()
        self.body = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(64, 24))
        self.out = torch.nn.Linear(24, 10)

    def forward(self, x):
        return self.out(torch.relu(self.body(x)))


def test_gradnet_on_a_user_model_written_outside_nnprobe(tmp_path):
    """`nnprobe gradnet --checkpoint` on a plain nn.Module saved with torch.save (no zoo spec)."""
    from nnprobe.data import load_dataset

    ds = load_dataset("digits")
    torch.manual_seed(0)
    net = UserNet()
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9)
    for _ in range(30):
        opt.zero_grad()
        torch.nn.functional.cross_entropy(net(ds.x_train), ds.y_train).backward()
        opt.step()
    with torch.no_grad():
        own_accuracy = (net(ds.x_test).argmax(1) == ds.y_test).float().mean().item()
    torch.save(net, tmp_path / "user.pt")
    res = CliRunner().invoke(
        main,
        [
            "gradnet",
            "--checkpoint",
            str(tmp_path / "user.pt"),
            "--data",
            "digits",
            "--percent",
            "20",
            "--gradnet-epochs",
            "5",
            "--out",
            str(tmp_path / "g"),
            "--format",
            "json",
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.output)
    assert summary["base_test_accuracy"] == pytest.approx(own_accuracy, abs=1e-6)
    assert summary["structure"] == "10+10"  # 10 hidden units per differentiated layer: body.1 and out
    assert summary["gradnet_test_accuracy"] > 0.5  # ten classes: chance is 0.1


def test_gradnet_command_errors_are_readable(tmp_path):
    base = [
        "gradnet",
        "--data",
        "digits",
        "--model",
        "mlp",
        "--width",
        "8",
        "--epochs",
        "1",
        "--no-progress",
        "--out",
        str(tmp_path),
    ]
    res = CliRunner().invoke(main, base + ["--structure", "5+x"])
    assert res.exit_code != 0 and "structure" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(main, base + ["--params", "nonexistent"])
    assert res.exit_code != 0 and "no trainable parameter or layer named 'nonexistent'" in res.output
    res = CliRunner().invoke(main, base + ["--structure", "5+5"])
    assert res.exit_code != 0 and "block" in res.output
