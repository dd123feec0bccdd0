"""``nnprobe reproduce gradnet``: both protocols, both controls and the verdict table, on tiny stand-in plans."""

import json

from click.testing import CliRunner

from nnprobe.cli import main


def _tiny(protocol_params):
    def plan(quick):
        common = dict(data="digits", samples_per_class=30, test_samples_per_class=10, epochs=2, snapshot_epochs="1,2",
                      batch_size=32, lr=0.05, schedule="constant", gradnet_epochs=2, **protocol_params)
        return [{"key": f"digits-{protocol_params['model']}", "title": "digits", "probe": "gradnet", "params": common}]
    return plan


def test_reproduce_gradnet_both_protocols_opens_with_the_verdict_table(tmp_path, monkeypatch):
    import nnprobe.reproduce.gradnet as reproduce_gradnet
    import nnprobe.reproduce.plans as plans

    monkeypatch.setattr(plans, "gradnet_plan", _tiny(dict(model="mlp", width=12, depth=1, percent=20.0,
                                                          fit_samples=50, structure="4+4")))
    monkeypatch.setattr(plans, "gradnet_reference_plan", _tiny(dict(
        model="refcnn", channels=3, weights_only=True, selection="per_example_topk", percent=15.0,
        grad_normalize="minmax_sqrt", structure="5+10+5", gradnet_optimizer="sgd", gradnet_lr=0.05,
        gradnet_batch_size=25, gradnet_weight_decay=0.0, gradnet_dropout=0.0)))
    monkeypatch.setattr(reproduce_gradnet, "OPTION_VARIANTS", {"reference": {}, "5% kept": {"percent": 5.0}})
    res = CliRunner().invoke(main, ["reproduce", "gradnet", "--quick", "--out", str(tmp_path), "--no-progress"])
    assert res.exit_code == 0, res.output
    report = (tmp_path / "report.md").read_text()
    first_table = report[report.index("| finding |"):]
    assert report.index("| finding | reference setting | reference value | nnprobe value (same setting) | verdict |") \
        < report.index("## digits")
    for protocol in ("nnprobe", "reference"):
        for control in ("its base snapshot", "control (a)", "control (b)"):
            assert any(f"digits, {protocol} protocol" in line and control in line
                       for line in first_table.splitlines()), (protocol, control)
    cifar_rows = [line for line in first_table.splitlines() if "CIFAR-10" in line][:2]
    assert len(cifar_rows) == 2 and all("not run (" in line for line in cifar_rows)   # not in the quick plan
    # the table's numbers are the result files' numbers
    for key in ("digits-mlp", "digits-refcnn"):
        snaps = json.loads((tmp_path / key / "result.json").read_text())["result"]["snapshots"]
        for s in snaps:
            assert s["control_both_halves_test_accuracy"] is not None and s["control_finetune_epochs"] == 2
            assert f"ep {s['epoch']}: {s['gradnet_test_accuracy']:.4f} vs {s['base_test_accuracy']:.4f}" in report
            assert f"vs {s['control_finetune_test_accuracy']:.4f}" in report
    options = json.loads((tmp_path / "digits-mlp" / "options.json").read_text())["rows"]
    assert sum(r["chosen"] for r in options) == 1
    # --resume rewrites the report from the result files; the finished option comparison is kept, not rerun
    stamp = (tmp_path / "digits-mlp" / "options.json").stat().st_mtime_ns
    res = CliRunner().invoke(main, ["reproduce", "gradnet", "--quick", "--out", str(tmp_path), "--no-progress",
                                    "--resume"])
    assert res.exit_code == 0, res.output
    assert (tmp_path / "digits-mlp" / "options.json").stat().st_mtime_ns == stamp
    assert "option variants" not in res.output
    again = (tmp_path / "report.md").read_text()
    # the verdict table lists the reference's own setting first, nnprobe's protocol (an extension) after
    assert again.index("digits, reference protocol") < again.index("digits, nnprobe protocol")
