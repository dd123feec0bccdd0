"""``nnprobe reproduce margin``: the verdict table first, and the midpoint study over seeds, on tiny stand-in plans."""

import json
import re

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from nnprobe.cli import main
from nnprobe.reproduce.margin_verdicts import distribution, midpoint_row

TINY = dict(
    normalize="none",
    model="mlp",
    width=16,
    depth=1,
    feature_dim=2,
    epochs=8,
    batch_size=100,
    lr=0.05,
    schedule="constant",
    log_spaced=0,
    retrain_epochs=20,
    live_seed=False,
)


def _plan(quick):
    return [
        {
            "key": "mnist01",
            "title": "blobs standing in for MNIST 0 vs 1",
            "probe": "margin",
            "seeded": True,
            "params": dict(TINY, data="synthetic:blobs,n=200"),
        },
        {
            "key": "cifar02",
            "title": "CIFAR-10 0/2",
            "probe": "margin",
            "needs": "cifar10:0,2",
            "params": dict(TINY, data="cifar10:0,2"),
        },
        {
            "key": "mnist012",
            "title": "3-class blobs standing in for MNIST 0/1/2",
            "probe": "margin",
            "params": dict(
                TINY,
                data="synthetic:blobs3,n=200",
                normalize="standard",
                multi_class="both",
                retrain_epochs=0,
                bias_penalised=True,
            ),
        },
    ]


def _midpoint_plan(quick, seeds=3):
    return [
        {
            "key": f"{arch}-seed{seed}",
            "group": arch,
            "title": f"{arch} {seed}",
            "probe": "margin",
            "params": dict(TINY, data="synthetic:blobs,n=200", width=width, seed=seed),
        }
        for arch, width in (("narrow", 8), ("wide", 16))
        for seed in range(seeds)
    ]


def test_midpoint_row_against_a_hand_computed_geometry():
    from nnprobe.probes.margin import MarginProbeResult
    from nnprobe.probes.margin.probe import measure_margin

    # class 0 at x = 0, 1; class 1 at x = 3, 4: SVM boundary x = 2, margin 1; class means (0.5, 0) and (3.5, 0.5)
    x = torch.tensor([[0.0, 0.0], [1.0, 0.0], [3.0, 0.0], [4.0, 1.0]])
    y = torch.tensor([0, 0, 1, 1])
    # NN boundary x = 2.5 (w_1 - w_0 = (2, 0), b_1 - b_0 = -5)
    r = measure_margin(x, y, torch.tensor([[-1.0, 0.0], [1.0, 0.0]]), torch.tensor([2.5, -2.5]))
    row = midpoint_row({"group": "hand"}, MarginProbeResult(results={"ovr": r}, seed=7))
    assert row["svm_margin"] == pytest.approx(1.0, abs=1e-4)
    assert row["half_gap"] == pytest.approx(1.5, abs=1e-4)  # (3.5 - 0.5) / 2 margins along the normal
    assert row["svm_offset_from_midpoint"] == pytest.approx(0.0, abs=1e-4)  # midpoint (2, 0.25) is on x = 2
    assert row["nn_offset_from_midpoint"] == pytest.approx(0.5, abs=1e-4)  # toward class 1
    assert row["relative_offset"] == pytest.approx(0.5 / 1.5, abs=1e-4)
    assert row["seed"] == 7 and row["retrained/nn_offset_from_midpoint"] is None


def test_verdict_row_of_the_three_class_run_quotes_the_bias_penalised_cosines():
    from nnprobe.probes.margin import MarginProbeResult
    from nnprobe.probes.margin.probe import measure_margin
    from nnprobe.reproduce.margin_verdicts import verdict_rows

    rng = np.random.default_rng(0)
    x = torch.tensor(np.concatenate([c + rng.normal(size=(40, 2)) * 0.5 for c in ([8.0, 1.0], [1.0, 8.0], [10, 10])]))
    y = torch.arange(3).repeat_interleave(40)
    r = measure_margin(
        x,
        y,
        torch.tensor([[1.0, -1.0], [-1.0, 1.0], [0.5, 0.5]]),
        torch.tensor([0.0, 0.0, -4.0]),
        x,
        y,
        multi_class="crammer_singer",
        bias_penalised=True,
    )
    done = {"mnist012": ({"title": "stand-in"}, MarginProbeResult(results={"crammer_singer": r}, seed=0))}
    row = next(v for v in verdict_rows(done, [], quick=True) if v["finding"].endswith("MNIST 0/1/2 (ReLU)"))
    quoted = ", ".join(f"{c.cosine_to_penalised_svm:.4f}" for c in r.rows)
    assert "against the bias-penalised SVM crammer_singer: " + quoted in row["nnprobe value (same setting)"]


def test_reproduce_margin_opens_with_verdicts_and_reports_the_midpoint_distribution(tmp_path, monkeypatch):
    import nnprobe.reproduce.plans as plans

    monkeypatch.setattr(plans, "margin_plan", _plan)
    monkeypatch.setattr(plans, "margin_midpoint_plan", _midpoint_plan)
    out = tmp_path / "rep"
    res = CliRunner().invoke(
        main, ["reproduce", "margin", "--quick", "--seeds", "2", "--data-dir", str(tmp_path), "--out", str(out)]
    )
    assert res.exit_code == 0, res.output
    md = (out / "report.md").read_text()
    header = "| finding | reference setting | reference value | nnprobe value (same setting) | verdict |"
    assert md.index(header) < md.index("## blobs standing in for MNIST 0 vs 1")
    table = md[md.index(header) :].split("\n\n")[0].splitlines()
    # the direction verdict over the seeds of a seeded run: interval, null on the same row, the rule's outcome
    direction = next(line for line in table if line.startswith("| NN direction = SVM direction, MNIST 0 vs 1"))
    assert "(over seeds)" in direction and "perceptron null" in direction or "not testable" in direction
    assert (out / "mnist01-seed100" / "result.json").exists() and "| seed used |" in md
    from nnprobe.entries import get_probe

    summaries = [json.loads((out / d / "result.json").read_text())["summary"] for d in ("mnist01", "mnist01-seed100")]
    assert direction.split(" | ")[-1].rstrip(" |") == get_probe("margin").decide(summaries).sentence
    cifar = [line for line in table if "CIFAR-10 airplane vs bird" in line]
    assert cifar and "not run (CIFAR-10 files are not available here)" in cifar[0] and cifar[0].endswith("| not run |")

    # the per-class cosines of the 3-class row are the result file's numbers
    saved = json.loads((out / "mnist012" / "result.json").read_text())["result"]["results"]
    row012 = next(line for line in table if line.startswith("| NN direction = SVM direction per class"))
    for mode in ("ovr", "crammer_singer"):
        assert ", ".join(f"{c['cosine_to_svm']:.4f}" for c in saved[mode]["rows"]) in row012
    if any(c["cosine_to_penalised_svm"] is None for c in saved["crammer_singer"]["rows"]):  # not separable
        assert "bias-penalised" not in row012

    # midpoint: per-seed offsets from the result files, and their median / quartiles in the distribution table
    # (runs whose features collapsed to one point, half-gap 0, have no boundary to place and are left out)
    from nnprobe.experiments import load_result
    from nnprobe.reproduce.margin_verdicts import NEAR_MIDPOINT

    offsets, rows = {}, []
    for entry in _midpoint_plan(True, 2):
        summary = json.loads((out / "midpoint" / entry["key"] / "result.json").read_text())["summary"]
        assert f"{summary['nn_offset_from_midpoint']:.4f}" in md
        row = midpoint_row(entry, load_result(out / "midpoint" / entry["key"])[1])
        assert row["nn_offset_from_midpoint"] == summary["nn_offset_from_midpoint"]
        if row["half_gap"]:
            rows.append(row)
            offsets.setdefault(entry["group"], []).append(summary["nn_offset_from_midpoint"])
    assert rows
    for arch, values in offsets.items():
        line = next(r for r in md.splitlines() if r.startswith(f"| {arch} | joint head: offset from midpoint"))
        numbers = [float(v) for v in re.findall(r"-?\d+\.\d{4}", line)]
        assert line.split(" | ")[2] == str(len(values))
        assert numbers == pytest.approx(
            [np.median(values), *np.percentile(values, [25, 75]), min(values), max(values)], abs=1e-4
        )
    # the verdict follows the stated criterion (median abs(offset) / half-distance <= NEAR_MIDPOINT) on the same runs
    rel = distribution(r["relative_offset"] for r in rows)
    joint = next(line for line in table if line.startswith("| jointly trained boundary near the midpoint"))
    assert f"n = {len(rows)}" in joint and f"median {rel['median']:.3f}" in joint
    assert joint.split(" | ")[-1].startswith("holds" if rel["median"] <= NEAR_MIDPOINT else "does not hold")
