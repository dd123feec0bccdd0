"""``nnprobe codes`` and ``nnprobe reproduce codes`` end to end on the embedded digits."""

from __future__ import annotations

import json

from click.testing import CliRunner

from nnprobe.cli import main


def test_codes_trains_measures_and_writes(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["codes", "--epochs", "3", "--width", "32", "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "redundancy ratio" in res.output and "per layer" in res.output
    payload = json.loads((out / "codes.json").read_text())
    assert payload["n_units"] == 64 and [l["name"] for l in payload["layers"]] == ["features.2", "features.4"]
    assert 0.0 <= payload["redundancy_ratio_train"] <= 1.0 and payload["knn_test_accuracy"] > 0.5
    assert (out / "categorisation.png").stat().st_size > 1000
    assert (out / "train" / "checkpoints" / "final.pt").is_file()

    # the checkpoint measured again, restricted to one layer
    out2 = tmp_path / "ckpt"
    res = CliRunner().invoke(main, ["codes", "--checkpoint", str(out / "train" / "checkpoints" / "final.pt"),
                                    "--layers", "features.4", "--out", str(out2)])
    assert res.exit_code == 0, res.output
    again = json.loads((out2 / "codes.json").read_text())
    assert again["n_units"] == 32 and again["model_test_accuracy"] == payload["model_test_accuracy"]


def test_codes_refuses_gelu_without_traceback(tmp_path):
    res = CliRunner().invoke(main, ["codes", "--epochs", "1", "--activation", "gelu", "--out", str(tmp_path),
                                    "--no-progress"])
    assert res.exit_code != 0
    assert "not a ReLU-like" in res.output and "Traceback" not in res.output


def test_reproduce_codes_writes_report(tmp_path, monkeypatch):
    import nnprobe.probes.codes.sweep as sweep

    def tiny_plan(data="digits", **_):
        base = {"data": data, "samples_per_class": 30, "test_samples_per_class": 20}
        return {"phase": sweep.phase_grid([2, 16], [2], [30], data=data, test_samples_per_class=20),
                "width": sweep.factor_line("width", [2, 16], epochs=2, **base)}

    monkeypatch.setattr(sweep, "quick_plan", tiny_plan)
    out = tmp_path / "rep"
    res = CliRunner().invoke(main, ["reproduce", "codes", "--quick", "--data", "digits", "--out", str(out),
                                    "--no-progress"])
    assert res.exit_code == 0, res.output
    md = (out / "report.md").read_text()
    assert "Activation hash phase chart" in md and "MLP 3x100" in md
    assert (out / "report.html").stat().st_size > 10000 and (out / "phase_chart.png").is_file()
    assert (out / "factor_width.png").is_file()
