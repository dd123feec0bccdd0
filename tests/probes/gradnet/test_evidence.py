"""The GradNet verdict (evidence.md): a comparison claim per snapshot, an intersection-union test against the base,
both controls, the null baselines and the converged base; McNemar with one seed, paired t-bounds over seeds."""

import pytest

from nnprobe.entries import get_probe
from nnprobe.probes.gradnet.evidence import COMPARISONS, evidence, mcnemar_keys
from nnprobe.stats import mcnemar_exact

N = 2000


def _one(gradnet=0.93, counts=None, epoch=4, prefix=False, skip=()):
    """A one-seed summary: every comparison's accuracy and McNemar counts (GradNet only, other only)."""
    counts = counts or {}
    s = {"epoch": epoch, "gradnet_test_accuracy": gradnet, "test_items": N}
    for name, key, _ in COMPARISONS:
        if name in skip:
            continue
        a, b = counts.get(name, (30, 5))
        s[key] = gradnet - (a - b) / N
        m = mcnemar_exact([True] * a + [False] * b + [True] * 10, [False] * a + [True] * b + [True] * 10)
        for k, v in zip(mcnemar_keys(name), (a, b, m.p_value), strict=True):
            s[k] = v
    if prefix:  # a study's summary: the same keys repeated as e<epoch>_<key>
        s.update({f"e{epoch}_{k}": v for k, v in s.items() if k not in ("epoch", "test_items")})
    return s


def test_holds_only_when_gradnet_beats_every_comparison():
    d = evidence([_one()], {})
    assert d.outcome == "holds"
    for _, _, label in COMPARISONS:  # the sentence names each comparison and its p-value
        assert f"vs {label} " in d.sentence
    assert d.sentence.count("one-sided p = ") == len(COMPARISONS)
    assert d.sentence.startswith("epoch-4 snapshot, one seed: GradNet 0.9300")


def test_a_control_that_beats_gradnet_means_the_claim_cannot_hold():
    # GradNet beats the base by 25 images net (p ~ 1e-6), but control (a) beats GradNet: 5 vs 40 discordant
    s = _one(counts={"both_halves": (5, 40)})
    v = get_probe("gradnet").judge(s)
    assert v.outcome == "does not hold" and v.holds is False
    assert "beaten at one-sided 0.05 by control (a)" in v.sentence
    # a control that is merely as good (not shown worse) also keeps it from holding
    tie = evidence([_one(counts={"finetune": (20, 20)})], {})
    assert tie.outcome == "inconclusive" and "not shown better than control (b)" in tie.sentence


def test_without_controls_the_claim_is_tested_without_them_and_cannot_hold():
    d = evidence([_one(skip=("both_halves", "finetune"))], {})
    assert d.outcome == "inconclusive"
    assert "not run: control (a), control (b) (settings controls off" in d.sentence
    assert "every comparison that was run passes, but the claim was tested without all of them" in d.sentence
    # one that was run and lost still decides "does not hold"
    lost = evidence([_one(counts={"linear_probe": (2, 30)}, skip=("both_halves", "finetune"))], {})
    assert lost.outcome == "does not hold"


def test_each_snapshot_is_judged_and_the_headline_is_the_last():
    early = _one(counts={"base": (5, 40)}, epoch=1, prefix=True)
    late = _one(epoch=4, prefix=True)
    study = {**early, **late, "epoch": 4}
    d = evidence([study], {})
    assert d.outcome == "holds" and d.details["headline_snapshot"] == 4
    assert d.details["snapshots"]["1"]["outcome"] == "does not hold"
    assert "other snapshots: epoch 1 does not hold" in d.sentence


def test_several_seeds_use_the_paired_differences_not_summed_counts():
    seeds = [_one(gradnet=g) for g in (0.930, 0.932, 0.931)]
    for s, gap in zip(seeds, (0.010, 0.012, 0.011), strict=True):
        s["control_finetune_test_accuracy"] = s["gradnet_test_accuracy"] - gap
    d = evidence(seeds, {})
    rows = {r["name"].rsplit(" ", 1)[0]: r for r in d.details["comparisons"]}
    assert rows["control (b)"]["test"] == "paired t" and rows["control (b)"]["n"] == 3
    assert rows["control (b)"]["mean_difference"] == pytest.approx(0.011)
    assert d.sentence.startswith("epoch-4 snapshot, n=3 seeds: GradNet 0.9310")
    # a control that is better on average over seeds: does not hold
    for s in seeds:
        s["control_both_halves_test_accuracy"] = s["gradnet_test_accuracy"] + 0.02
    assert evidence(seeds, {}).outcome == "does not hold"


def test_a_result_without_paired_counts_is_not_decided():
    old = {"epoch": 4, "base_test_accuracy": 0.4875, "gradnet_test_accuracy": 0.8802}  # written before 0.3
    v = get_probe("gradnet").judge(old)
    assert v.outcome == "inconclusive" and v.holds is None
    assert "no paired test stored for base snapshot" in v.sentence
