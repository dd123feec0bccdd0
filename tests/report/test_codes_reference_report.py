"""The reference-protocol report: verdicts against He et al.'s values, from result rows only."""

import pytest

from nnprobe.report import codes_reference as ref


def _width_rows(shift=0.0, seeds=(0, 1, 2, 3, 4), spread=0.002):
    rows = []
    for width, values in ref.REFERENCE_WIDTH.items():
        for s in seeds:
            rows.append(
                {
                    "width": width,
                    "seed": s,
                    "pixels_knn_test_accuracy": 0.97,
                    **{k: v + shift + spread * s for k, v in zip(ref.WIDTH_KEYS, values, strict=True)},
                }
            )
    return rows


def test_width_table_and_verdicts_follow_the_tolerance_over_the_interval(tmp_path):
    keys = ref.WIDTH_KEYS + ref.NULL_KEYS
    close = ref.aggregate(_width_rows(0.02), ("width",), keys)
    far = ref.aggregate(_width_rows(0.10), ("width",), keys)
    edge = ref.aggregate(_width_rows(0.04, spread=0.01), ("width",), keys)  # 0.06 +- 0.02: across the edge
    one = ref.aggregate(_width_rows(0.02, seeds=(0,)), ("width",), keys)
    assert close[0]["seeds"] == 5 and close[0]["redundancy_ratio_test"] == pytest.approx(1.0 + 0.024)
    assert close[0]["redundancy_ratio_test_low"] < 1.024 < close[0]["redundancy_ratio_test_high"]
    table = ref.width_table(close)
    assert all(r["verdict"] == "all within 0.05" for r in table)
    assert table[0]["raw inputs 9-NN"] == "0.970 [0.970, 0.970]" and "[" in table[0]["9-NN nnprobe"]
    assert "9-NN differs (+0.1" in ref.width_table(far)[0]["verdict"]
    assert "9-NN inconclusive (+0.06" in ref.width_table(edge)[0]["verdict"]
    assert "one seed: within 0.05 (+0.02), no interval" in ref.width_table(one)[0]["verdict"]
    epochs = [
        {"width": w, "epochs": e, "redundancy_ratio_test": rr}
        for w in (40, 50, 60)
        for e, rr in ((0, 0.01), (1, 0.6), (10, 0.1))
    ]
    rows = ref.verdict_rows(close, ref.aggregate(epochs, ("width", "epochs"), ["redundancy_ratio_test"]), [], "quick")
    assert [r["verdict"] for r in rows[:9]] == ["reproduces"] * 9
    assert rows[0]["nulls (same setting)"] == "raw inputs 9-NN 0.970"
    time_rows = [r for r in rows if "peak" in r["reference setting"]]
    assert [r["nnprobe value (same setting)"] for r in time_rows] == ["0.600 (one seed)"] * 3
    assert time_rows[0]["verdict"].startswith("one seed: outside 0.05 (+0.25), no interval; shape rise-then-decay")
    assert time_rows[0]["nulls (same setting)"] == "epoch 0 (the untrained network): test RR 0.010"
    assert all(r["verdict"] == "not run" for r in rows if "n = 10" in r["reference setting"])
    far_rows = ref.verdict_rows(far, [], [], "quick")
    assert "quick run" in ref.difference_notes(far_rows, quick=True)
    assert ref.difference_notes(rows[:9], quick=False) == ""
    for path in (
        ref.plot_width(close, tmp_path / "w.png", own=far),
        ref.plot_time(epochs, tmp_path / "t.png"),
        ref.plot_samples(
            [{"width": 40, "train_first": 10, "redundancy_ratio_test": 0.7, "knn_test_accuracy": 0.1}],
            tmp_path / "s.png",
        ),
    ):
        assert path.stat().st_size > 1000


def test_width_offsets_find_where_the_reference_sits_on_our_curve():
    # nnprobe's curves: the reference's values, reached at 1.25x the reference's widths (linear in between)
    ours = []
    for width, values in ref.REFERENCE_WIDTH.items():
        ours.append({"width": width * 1.25, **dict(zip(ref.WIDTH_KEYS, values, strict=True))})
    offsets = ref.width_offset_rows(ours)
    assert offsets and all(r["ratio"] == pytest.approx(1.25) for r in offsets)
    assert {r["column"] for r in offsets} == {"RR train", "RR test", "9-NN", "log. reg."}  # no K-Means
    assert all(0.02 < r["reference value"] < 0.98 for r in offsets if r["column"].startswith("RR"))
    assert ref.matching_width(ours, "knn_test_accuracy", 0.99) is None  # never reached
