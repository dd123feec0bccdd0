"""``nnprobe reproduce gradnet``: both protocols, over seeds, with the controls, the null baselines, the converged
base and the verdict table, on tiny stand-in plans."""

import json

import pytest
from click.testing import CliRunner

from nnprobe.cli import main


def _tiny(protocol_params):
    def plan(quick):
        common = dict(
            data="digits",
            samples_per_class=30,
            test_samples_per_class=10,
            epochs=2,
            snapshot_epochs="1,2",
            batch_size=32,
            lr=0.05,
            schedule="constant",
            gradnet_epochs=2,
            **protocol_params,
        )
        return [{"key": f"digits-{protocol_params['model']}", "title": "digits", "probe": "gradnet", "params": common}]

    return plan


def test_reproduce_gradnet_both_protocols_opens_with_the_verdict_table(tmp_path, monkeypatch):
    import nnprobe.reproduce.gradnet as reproduce_gradnet
    import nnprobe.reproduce.plans as plans

    monkeypatch.setattr(
        plans,
        "gradnet_plan",
        _tiny(dict(model="mlp", width=12, depth=1, percent=20.0, fit_samples=50, structure="4+4")),
    )
    monkeypatch.setattr(
        plans,
        "gradnet_reference_plan",
        _tiny(
            dict(
                model="refcnn",
                channels=3,
                weights_only=True,
                selection="per_example_topk",
                percent=15.0,
                grad_normalize="minmax_sqrt",
                structure="5+10+5",
                gradnet_optimizer="sgd",
                gradnet_lr=0.05,
                gradnet_batch_size=25,
                gradnet_weight_decay=0.0,
                gradnet_dropout=0.0,
            )
        ),
    )
    monkeypatch.setattr(reproduce_gradnet, "OPTION_VARIANTS", {"reference": {}, "5% kept": {"percent": 5.0}})
    res = CliRunner().invoke(
        main, ["reproduce", "gradnet", "--quick", "--seeds", "2", "--out", str(tmp_path), "--no-progress"]
    )
    assert res.exit_code == 0, res.output
    report = (tmp_path / "report.md").read_text()
    first_table = report[report.index("| finding |") :]
    assert report.index(
        "| finding | reference setting | reference value | nnprobe value (same setting) | verdict |"
    ) < report.index("## digits")
    for protocol in ("nnprobe", "reference"):  # one finding per setting: every comparison, over both seeds
        line = next(x for x in first_table.splitlines() if f"digits, {protocol} protocol" in x)
        for name in ("base snapshot", "control (a)", "control (b)", "linear probe", "small MLP", "converged base"):
            assert f"{name} " in line, (protocol, name)
        assert "(n=2)" in line and "(lower " in line  # intervals over seeds; paired lower bounds decide
    cifar_rows = [line for line in first_table.splitlines() if "CIFAR-10" in line][:2]
    assert len(cifar_rows) == 2 and all("not run (" in line for line in cifar_rows)  # not in the quick plan
    # the tables' numbers are the result files' numbers: the mean over the two seeds, and each seed's McNemar
    for key in ("digits-mlp", "digits-refcnn"):
        seeds = [json.loads((tmp_path / key / f"seed{s}" / "result.json").read_text()) for s in (0, 1)]
        assert [r["run"]["train"]["seed"] for r in seeds] == [0, 1]
        snaps = [r["result"]["snapshots"] for r in seeds]
        for s0, s1 in zip(*snaps, strict=True):
            for s in (s0, s1):
                assert s["control_finetune_steps"] >= s["gradnet_steps"] and s["linear_probe_test_accuracy"] is not None
                t = s["mcnemar"]["finetune"]
                assert (
                    f"| {s['epoch']} | control (b) | {t['gradnet_only']} | {t['other_only']} | {t['p_value']:.3g} |"
                ) in report
            mean = (s0["gradnet_test_accuracy"] + s1["gradnet_test_accuracy"]) / 2
            assert f"{mean:.4f} [" in report
    options = json.loads((tmp_path / "digits-mlp" / "seed0" / "options.json").read_text())["rows"]
    assert sum(r["chosen"] for r in options) == 1
    # --resume rewrites the report from the result files; the finished option comparison is kept, not rerun
    stamp = (tmp_path / "digits-mlp" / "seed0" / "options.json").stat().st_mtime_ns
    res = CliRunner().invoke(
        main, ["reproduce", "gradnet", "--quick", "--seeds", "2", "--out", str(tmp_path), "--no-progress", "--resume"]
    )
    assert res.exit_code == 0, res.output
    assert (tmp_path / "digits-mlp" / "seed0" / "options.json").stat().st_mtime_ns == stamp
    assert "option variants" not in res.output
    again = (tmp_path / "report.md").read_text()
    # the verdict table lists the reference's own setting first, nnprobe's protocol (an extension) after
    assert again.index("digits, reference protocol") < again.index("digits, nnprobe protocol")


def _timeless_report(text: str) -> str:
    """The report without what depends on the clock: table columns headed '... (s)', and 'N s' in sentences."""
    import re

    out, blank = [], None
    for line in text.splitlines():
        cells = line.split("|")
        if line.startswith("|") and any("(s)" in c for c in cells):
            blank = [i for i, c in enumerate(cells) if "(s)" in c]
        elif not line.startswith("|"):
            blank = None
        if blank and line.startswith("|") and not set(line) <= set("|- "):
            cells = [("" if i in blank else c) for i, c in enumerate(cells)]
        out.append(re.sub(r"\b\d+ s\b", "N s", "|".join(cells) if line.startswith("|") else line))
    return "\n".join(out)


def _numbers(out):
    timing = (
        "seconds",
        "study_seconds",
        "gradient_seconds",
        "gradnet_seconds",
        "control_seconds",
        "probe_seconds",
        "provenance",
    )

    def clean(x):
        if isinstance(x, dict):
            return {k: clean(v) for k, v in x.items() if k not in timing}
        return [clean(v) for v in x] if isinstance(x, list) else x

    return {str(f.relative_to(out)): clean(json.loads(f.read_text())) for f in sorted(out.rglob("result.json"))}


def test_reproduce_gradnet_in_two_workers_is_the_serial_run(tmp_path, monkeypatch):
    import nnprobe.reproduce.gradnet as reproduce_gradnet
    import nnprobe.reproduce.plans as plans
    from nnprobe.errors import NNProbeError

    monkeypatch.setattr(
        plans,
        "gradnet_plan",
        _tiny(dict(model="mlp", width=12, depth=1, percent=20.0, fit_samples=50, structure="4+4")),
    )
    monkeypatch.setattr(
        plans,
        "gradnet_reference_plan",
        _tiny(
            dict(
                model="refcnn",
                channels=3,
                weights_only=True,
                selection="per_example_topk",
                percent=15.0,
                grad_normalize="minmax_sqrt",
                label_draw="per_epoch",
                structure="5+10+5",
                gradnet_optimizer="sgd",
                gradnet_lr=0.05,
                gradnet_batch_size=25,
                gradnet_weight_decay=0.0,
                gradnet_dropout=0.0,
            )
        ),
    )
    monkeypatch.setattr(reproduce_gradnet, "OPTION_VARIANTS", {"reference": {}, "5% kept": {"percent": 5.0}})
    lines = {1: [], 2: []}
    for workers in (1, 2):
        reproduce_gradnet.reproduce_gradnet(
            True, tmp_path / f"w{workers}", None, "cpu", False, seeds=2, workers=workers, echo=lines[workers].append
        )
    assert _numbers(tmp_path / "w2") == _numbers(tmp_path / "w1") and len(_numbers(tmp_path / "w1")) == 4
    assert _timeless_report((tmp_path / "w2" / "report.md").read_text()) == _timeless_report(
        (tmp_path / "w1" / "report.md").read_text()
    )
    # every study is announced and reported in both modes; the pool says how it runs
    for key in ("digits-mlp/seed0", "digits-mlp/seed1", "digits-refcnn/seed0", "digits-refcnn/seed1"):
        for workers in (1, 2):
            assert any(line.startswith(f"[gradnet] {key}: ") for line in lines[workers]), (key, workers)
    assert any("2 at a time in worker processes" in line for line in lines[2])
    # resuming in workers recomputes nothing: every result file is kept as it was
    stamps = {f: f.stat().st_mtime_ns for f in (tmp_path / "w2").rglob("result.json")}
    reproduce_gradnet.reproduce_gradnet(
        True, tmp_path / "w2", None, "cpu", False, mode="resume", seeds=2, workers=2, echo=lambda line: None
    )
    assert {f: f.stat().st_mtime_ns for f in stamps} == stamps
    # a study that fails in a worker is named, with what went wrong
    monkeypatch.setattr(plans, "gradnet_plan", _tiny(dict(model="mlp", width=12, depth=1, structure="4+4+4")))
    with pytest.raises(NNProbeError, match=r"digits-mlp/seed\d failed in a worker process: .*3 block"):
        reproduce_gradnet.reproduce_gradnet(
            True, tmp_path / "bad", None, "cpu", False, protocol="nnprobe", seeds=2, workers=2, echo=lambda line: None
        )
