"""``nnprobe codes`` and ``nnprobe reproduce codes`` end to end on the embedded digits."""

from __future__ import annotations

import json

import numpy as np
import torch
from click.testing import CliRunner

from nnprobe.cli import main


def _codes_by_hand(checkpoint):
    """Bits of every nn.ReLU of the zoo MLP on the digits training set, by forward hooks: (n, units) array."""
    from nnprobe.data import load_dataset
    from nnprobe.training import load_checkpoint

    model, _ = load_checkpoint(checkpoint)
    model.eval()
    ds = load_dataset("digits")
    bits = []
    hooks = [
        m.register_forward_hook(lambda mod, inp, out: bits.append((out > 0).reshape(len(out), -1)))
        for m in model.modules()
        if isinstance(m, torch.nn.ReLU)
    ]
    with torch.no_grad():
        model(ds.x_train)
    for h in hooks:
        h.remove()
    return torch.cat(bits, 1).numpy()


def test_codes_trains_measures_and_writes(tmp_path):
    out = tmp_path / "run"
    res = CliRunner().invoke(main, ["codes", "--epochs", "3", "--width", "32", "--out", str(out), "--no-progress"])
    assert res.exit_code == 0, res.output
    assert "redundancy ratio" in res.output and "per layer" in res.output
    payload = json.loads((out / "result.json").read_text())
    summary = payload["summary"]
    assert summary["n_units"] == 64
    assert [ly["name"] for ly in payload["result"]["layers"]] == ["features.2", "features.4"]
    codes = _codes_by_hand(out / "train" / "checkpoints" / "final.pt")
    distinct = len(np.unique(codes, axis=0))
    assert codes.shape == (1438, 64)
    assert summary["distinct_train"] == distinct
    assert summary["redundancy_ratio_train"] == (len(codes) - distinct) / len(codes)
    assert summary["knn_test_accuracy"] > 0.5
    assert (out / "categorisation.png").stat().st_size > 1000

    # the checkpoint measured again, restricted to one layer
    out2 = tmp_path / "ckpt"
    res = CliRunner().invoke(
        main,
        [
            "codes",
            "--checkpoint",
            str(out / "train" / "checkpoints" / "final.pt"),
            "--layers",
            "features.4",
            "--out",
            str(out2),
            "--format",
            "json",
        ],
    )
    assert res.exit_code == 0, res.output
    again = json.loads(res.output)
    assert again["n_units"] == 32 and again["model_test_accuracy"] == summary["model_test_accuracy"]
    assert again["distinct_train"] == len(np.unique(codes[:, 32:], axis=0))


def test_codes_refuses_gelu_without_traceback(tmp_path):
    res = CliRunner().invoke(
        main, ["codes", "--epochs", "1", "--activation", "gelu", "--out", str(tmp_path), "--no-progress"]
    )
    assert res.exit_code != 0
    assert "needs ReLU units" in res.output and "Traceback" not in res.output
    assert not any(tmp_path.iterdir())  # refused before anything was written


def test_reproduce_codes_writes_report(tmp_path, monkeypatch):
    import nnprobe.reproduce.plans as plans

    def tiny_plan(data="digits", **_):
        base = {"data": data, "samples_per_class": 30, "test_samples_per_class": 20}
        return {
            "phase": plans.phase_grid([2, 16], [2], [30], data=data, test_samples_per_class=20),
            "width": plans.factor_line("width", [2, 16], epochs=2, **base),
        }

    monkeypatch.setattr(plans, "codes_quick_plan", tiny_plan)
    out = tmp_path / "rep"
    res = CliRunner().invoke(
        main, ["reproduce", "codes", "--quick", "--data", "digits", "--out", str(out), "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    md = (out / "report.md").read_text()
    assert "Activation hash phase chart" in md and "MLP 3x100" in md
    assert (out / "report.html").stat().st_size > 10000 and (out / "phase_chart.png").is_file()
    assert (out / "factor_width.png").is_file()
    # three seeds by default with --quick: each headline model judged over them, nulls on its row
    assert "3 training seed(s) per setting" in md and "(95% t, n=3)" in md and "MLP 1x100, 3 seed(s)" in md
    assert "untrained network: train redundancy ratio" in md and "raw inputs 9-NN" in md
    # width 2 cannot give 300 examples their own codes; width 16 nearly does
    from nnprobe.sweeps import ResultsTable

    table = {(r["width"], r["epochs"], r["seed"]): r for r in ResultsTable(out / "results.sqlite").rows()}
    assert {s for (_, _, s) in table} == {0, 1, 2}
    assert all(
        table[(2, 2, s)]["redundancy_ratio_train"] > table[(16, 2, s)]["redundancy_ratio_train"] for s in range(3)
    )


def test_reproduce_codes_reference_only_width_runs_that_sweep_alone(tmp_path, monkeypatch):
    import nnprobe.reproduce.plans as plans

    base = {
        **plans.CODES_REFERENCE_BASE,
        "data": "digits",
        "train_fraction": None,
        "epochs": 2,
        "samples_per_class": 30,
        "test_samples_per_class": 10,
    }

    def tiny_plan(quick, seeds=None, data="digits"):
        return {
            "width": [{**base, "width": w, "seed": 0} for w in (3, 100)],
            "epochs": [{**base, "width": 20, "epochs": 1, "seed": 0}],
            "samples": [{**base, "width": 20, "train_first": 10, "seed": 0}],
        }

    monkeypatch.setattr(plans, "codes_reference_plan", tiny_plan)
    out = tmp_path / "ref"
    res = CliRunner().invoke(
        main,
        [
            "reproduce",
            "codes",
            "--protocol",
            "reference",
            "--only",
            "width",
            "--data",
            "digits",
            "--out",
            str(out),
            "--no-progress",
        ],
    )
    assert res.exit_code == 0, res.output
    assert (out / "width").is_dir() and not (out / "epochs").exists() and not (out / "samples").exists()
    md = (out / "report.md").read_text()
    assert md.count("Not run (not selected with `--only`).") == 3  # own protocol, training time, sample size
    from nnprobe.sweeps import ResultsTable

    rows = {r["width"]: r for r in ResultsTable(out / "width" / "results.sqlite").rows()}
    assert set(rows) == {3, 100}
    # 3 units give at most 8 codes for 300 training examples; 100 units separate far more of them
    assert rows[3]["redundancy_ratio_train"] >= 1 - 8 / 300 > rows[100]["redundancy_ratio_train"]
    bad = CliRunner().invoke(main, ["reproduce", "codes", "--only", "width", "--out", str(tmp_path / "x")])
    assert bad.exit_code != 0 and "--protocol reference" in bad.output
