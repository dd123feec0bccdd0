"""Option comparisons train each variant once on cached gradient sets, and every number is the one an
independent, uncached measurement gives."""

from dataclasses import replace

import pytest

from nnprobe.data import load_dataset
from nnprobe.models import build_model
from nnprobe.probes.gradnet import GradSpaceConfig, compare_options, holdout, measure, split_halves
from nnprobe.training import seed_everything

VARIANTS = {
    "reference": {},
    "momentum": {"gradnet_optimizer": "momentum", "gradnet_lr": 0.01},
    "5%": {"percent": 5.0},
    "sum": {"target": "sum"},
    "no normalisation": {"grad_normalize": "none"},
    "3 labels": {"labels_per_sample": 3},
}


@pytest.mark.parametrize("max_memory", [2**31, 2**20])  # validation and test gradients held, or streamed
def test_cached_variants_are_fresh_measurements(monkeypatch, max_memory):
    import nnprobe.probes.gradnet.pipeline as pipeline

    calls = {"collect": 0, "stats": 0, "gradnet": 0, "streamed": 0}

    def counting(name, fn):
        return lambda *a, **k: calls.__setitem__(name, calls[name] + 1) or fn(*a, **k)

    monkeypatch.setattr(pipeline, "collect_gradients", counting("collect", pipeline.collect_gradients))
    monkeypatch.setattr(pipeline, "gradient_stats", counting("stats", pipeline.gradient_stats))
    monkeypatch.setattr(pipeline, "train_gradnet", counting("gradnet", pipeline.train_gradnet))
    monkeypatch.setattr(pipeline, "_test_chunks", counting("streamed", pipeline._test_chunks))
    ds = load_dataset("digits", samples_per_class=40, test_samples_per_class=15)
    seed_everything(0)
    model = build_model("mlp", ds.input_shape, ds.num_classes, width=64, depth=1)
    config = GradSpaceConfig(percent=20.0, fit_samples=50, structure="4+4", gradnet_epochs=3, max_memory=max_memory)
    rows = compare_options(model, ds, VARIANTS, config, seed=1)
    assert calls["gradnet"] == len(VARIANTS)  # each variant trained once: the chosen one is not trained again
    assert calls["stats"] == 1  # the coordinate statistics are shared by the kept percentages
    if max_memory == 2**31:
        # the 20% layout's sets with 1, all and 3 labels, the 5% layout's, each layout's validation set, the test set
        assert calls["collect"] == 7 and calls["streamed"] == 0
    else:  # 20% of ~4.8k weights: a training set of 160 points already fills half of 1 MiB
        assert calls["streamed"] == len(VARIANTS) + 1
    monkeypatch.undo()
    carved = holdout(split_halves(ds)[1], 0.2, 1)
    for row in rows:  # each row is an uncached measurement of its variant on the carved split
        variant = config.replace(baselines=False, **VARIANTS[row["variant"]])
        fresh = measure(model, carved, variant, seed=1)
        assert row["gradnet_validation_accuracy"] == fresh.gradnet_test_accuracy, row["variant"]
        assert row["gradient_dim"] == fresh.gradient_dim
    (chosen,) = [r for r in rows if r["chosen"]]
    variant = config.replace(baselines=False, **VARIANTS[chosen["variant"]])
    on_test = replace(carved, x_test=ds.x_test, y_test=ds.y_test)  # GradNet trained again, scored on the test set
    assert chosen["gradnet_test_accuracy"] == measure(model, on_test, variant, seed=1).gradnet_test_accuracy
