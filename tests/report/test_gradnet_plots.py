"""GradNet figures: written atomically as real PNGs from a study payload (plain dicts, as in gradnet.json)."""

import json

from nnprobe.report.gradnet_plots import plot_learning_curves, plot_snapshot_table

PAYLOAD = {
    "dataset": "mnist",
    "table": [
        {"epoch": 1, "base_test_accuracy": 0.61, "gradnet_test_accuracy": 0.72},
        {"epoch": 3, "base_test_accuracy": 0.85, "gradnet_test_accuracy": 0.83},
    ],
    "base_history": [
        {"epoch": e, "test_accuracy": a, "train_accuracy": a - 0.02} for e, a in [(1, 0.61), (2, 0.8), (3, 0.85)]
    ],
    "gradnet_histories": {
        "1": [{"epoch": 1, "test_accuracy": 0.6}, {"epoch": 2, "test_accuracy": 0.72}],
        "3": [{"epoch": 1, "test_accuracy": 0.7}, {"epoch": 2, "test_accuracy": 0.83}],
    },
}


def test_plots_write_pngs(tmp_path):
    payload = json.loads(json.dumps(PAYLOAD))  # keys as they come back from JSON
    for fn, name in [(plot_snapshot_table, "snap.png"), (plot_learning_curves, "curves.png")]:
        path = fn(payload, tmp_path / name, title="test")
        data = path.read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000
    assert sorted(p.name for p in tmp_path.iterdir()) == ["curves.png", "snap.png"]  # no temp files left
