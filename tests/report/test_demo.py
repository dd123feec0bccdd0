"""The main job end to end on the embedded digits (short training, so the numbers are loose but real)."""

import json

from nnprobe.cli.demo import run_demo
from nnprobe.report.verdicts import verdict


def test_demo_runs_all_three_probes_and_writes_one_report(tmp_path):
    lines = []
    summary = run_demo(tmp_path, epochs=8, progress=False, echo=lines.append)
    assert (tmp_path / "report.html").is_file() and (tmp_path / "report.md").is_file()
    saved = json.loads((tmp_path / "demo.json").read_text())
    assert saved["margin"]["nn_test_accuracy"] == summary["margin"]["nn_test_accuracy"] > 0.9
    # the science, loosely: direction already well aligned, codes unique, GradNet table per snapshot
    assert summary["margin"]["svm_train_error"] == 0.0
    assert summary["margin"]["cosine_to_svm"] > 0.5
    assert summary["margin_2d"]["test_agreement"] > 0.95
    assert summary["codes"]["redundancy_ratio_train"] < 0.05
    # the codes run repeats the margin run's training (same settings and seed): the same network
    assert summary["codes"]["model_test_accuracy"] == summary["margin"]["nn_test_accuracy"]
    study = json.loads((tmp_path / "gradnet" / "result.json").read_text())["result"]
    assert [s["epoch"] for s in study["snapshots"]] == [1, 3, 4]
    html = (tmp_path / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 5
    assert any(line.startswith("report:") for line in lines)
    # every probe section opens with its verdict, computed from that run's numbers
    md = (tmp_path / "report.md").read_text().splitlines()
    headings = [i for i, line in enumerate(md) if line.startswith("## ") or line.startswith("### ")]
    assert len(headings) == 4
    for i, (key, probe) in zip(
        headings,
        [("margin", "margin"), ("margin_2d", "margin"), ("codes", "codes"), ("gradnet", "gradnet")],
        strict=True,
    ):
        assert md[i + 2] == f"**Finding** — {verdict(probe, summary[key]).sentence}."
