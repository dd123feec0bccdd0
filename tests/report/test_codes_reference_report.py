"""The reference-protocol report: verdicts against He et al.'s values, from result rows only."""

import pytest

from nnprobe.report import codes_reference as ref


def _width_rows(shift=0.0, seeds=(0, 1)):
    rows = []
    for width, values in ref.REFERENCE_WIDTH.items():
        for s in seeds:
            rows.append({"width": width, "seed": s, **{k: v + shift + 0.01 * s for k, v in zip(ref.WIDTH_KEYS, values)}})
    return rows


def test_width_table_and_verdicts_follow_the_tolerance(tmp_path):
    close = ref.aggregate(_width_rows(0.02), ("width",), ref.WIDTH_KEYS)
    far = ref.aggregate(_width_rows(0.10), ("width",), ref.WIDTH_KEYS)
    assert close[0]["seeds"] == 2 and close[0]["redundancy_ratio_test"] == pytest.approx(1.0 + 0.025)
    assert all(r["verdict"] == "all within 0.05" for r in ref.width_table(close))
    assert "9-NN differs (+0.1" in ref.width_table(far)[0]["verdict"]
    epochs = [{"width": w, "epochs": e, "redundancy_ratio_test": rr}
              for w in (40, 50, 60) for e, rr in ((0, 0.01), (1, 0.4), (10, 0.1))]
    rows = ref.verdict_rows(close, epochs, [], "quick")
    assert [r["verdict"] for r in rows[:9]] == ["reproduces"] * 9
    time_rows = [r for r in rows if "peak" in r["reference setting"]]
    assert [r["nnprobe value (same setting)"] for r in time_rows] == [0.4, 0.4, 0.4]
    assert time_rows[0]["verdict"].startswith("differs (-0.17); shape rise-then-decay")
    assert all(r["verdict"] == "not run" for r in rows if "n = 10" in r["reference setting"])
    assert "quick run" in ref.difference_notes(rows, quick=True)
    assert ref.difference_notes(rows[:9], quick=False) == ""
    for path in (ref.plot_width(close, tmp_path / "w.png", own=far), ref.plot_time(epochs, tmp_path / "t.png"),
                 ref.plot_samples([{"width": 40, "train_first": 10, "redundancy_ratio_test": 0.7,
                                    "knn_test_accuracy": 0.1}], tmp_path / "s.png")):
        assert path.stat().st_size > 1000


def test_width_offsets_find_where_the_reference_sits_on_our_curve():
    # nnprobe's curves: the reference's values, reached at 1.25x the reference's widths (linear in between)
    ours = []
    for width, values in ref.REFERENCE_WIDTH.items():
        ours.append({"width": width * 1.25, **dict(zip(ref.WIDTH_KEYS, values))})
    offsets = ref.width_offset_rows(ours)
    assert offsets and all(r["ratio"] == pytest.approx(1.25) for r in offsets)
    assert {r["column"] for r in offsets} == {"RR train", "RR test", "9-NN", "log. reg."}   # no K-Means
    assert all(0.02 < r["reference value"] < 0.98 for r in offsets if r["column"].startswith("RR"))
    assert ref.matching_width(ours, "knn_test_accuracy", 0.99) is None   # never reached
