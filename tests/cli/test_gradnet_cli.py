"""``nnprobe gradnet``: runs end to end on tiny data, writes the table, figures and report; clean errors."""

import json

from click.testing import CliRunner

from nnprobe.cli import main


def test_gradnet_command_writes_report(tmp_path):
    out = tmp_path / "run"
    args = ["gradnet", "--data", "digits", "--samples-per-class", "50", "--test-samples-per-class", "20", "--model", "mlp",
            "--width", "16", "--depth", "2", "--epochs", "2",
            "--snapshot-epochs", "1,2", "--percent", "20", "--fit-samples", "100", "--gradnet-epochs", "3",
            "--structure", "4+4+4", "--no-progress", "--out", str(out)]
    res = CliRunner().invoke(main, args)
    assert res.exit_code == 0, res.output
    payload = json.loads((out / "gradnet.json").read_text())
    assert [r["epoch"] for r in payload["table"]] == [1, 2]
    assert all(0 <= r["gradnet_test_accuracy"] <= 1 for r in payload["table"])
    assert payload["gradnet_config"]["structure"] == "4+4+4"
    for name in ["snapshots.png", "curves.png", "report.md", "report.html"]:
        assert (out / name).is_file()
    assert "gradnet_test_accuracy" in (out / "report.md").read_text()


def test_gradnet_command_errors_are_readable(tmp_path):
    base = ["gradnet", "--data", "digits", "--model", "mlp", "--width", "8", "--epochs", "1", "--no-progress",
            "--out", str(tmp_path)]
    res = CliRunner().invoke(main, base + ["--structure", "5+x"])
    assert res.exit_code != 0 and "structure" in res.output and "Traceback" not in res.output
    res = CliRunner().invoke(main, base + ["--params", "nonexistent"])
    assert res.exit_code != 0 and "no trainable parameter or layer named 'nonexistent'" in res.output
    res = CliRunner().invoke(main, base + ["--structure", "5+5"])
    assert res.exit_code != 0 and "block" in res.output


def test_reproduce_gradnet_is_registered():
    res = CliRunner().invoke(main, ["reproduce", "gradnet", "--help"])
    assert res.exit_code == 0 and "--quick" in res.output
