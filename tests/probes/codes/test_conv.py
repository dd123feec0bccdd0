"""Codes of conv nets: units per site, the default layer rule, memory-mapped codes, exact hashing, per-layer figures."""

from __future__ import annotations

import importlib

import numpy as np
import pytest
import torch

from nnprobe.data.base import Dataset
from nnprobe.errors import NNProbeError
from nnprobe.models import build_model
from nnprobe.probes.codes import (
    Codes,
    CodesConfig,
    CodesResult,
    LayerSlice,
    allocate_packed,
    code_ids,
    extract_bits,
    layer_determinism,
    measure,
    pack_bits,
    record_codes,
    relu_sites,
    select_layers,
    unpack_bits,
)
from nnprobe.training import evaluate

det_module = importlib.import_module("nnprobe.probes.codes.redundancy")


def _resnet(seed=0):
    torch.manual_seed(seed)
    return build_model("resnet18", (3, 8, 8), 4, width=2)


def _dataset(n_train=40, n_test=20, seed=0):
    g = torch.Generator().manual_seed(seed)
    x_train = torch.randn(n_train, 3, 8, 8, generator=g)
    x_train[30:36] = x_train[:6]  # planted duplicates: same input, same code at every site
    x_test = torch.randn(n_test, 3, 8, 8, generator=g)
    x_test[:4] = x_train[10:14]  # test codes seen in training
    y_train = torch.randint(0, 4, (n_train,), generator=g)
    y_test = torch.randint(0, 4, (n_test,), generator=g)
    return Dataset("toy", x_train, y_train, x_test, y_test, [0, 1, 2, 3], ["a", "b", "c", "d"])


# width-2 ResNet-18 on 8x8: 5 sites of 2x8x8, 4 of 4x4x4, 4 of 8x2x2, 4 of 16x1x1
UNITS = [128] * 5 + [64] * 4 + [32] * 4 + [16] * 4


def _distinct(bits):
    return np.unique(bits, axis=0).shape[0]


def test_sites_report_units_and_the_default_rule_keeps_the_last_sites_that_fit():
    sites = relu_sites(_resnet(), torch.randn(2, 3, 8, 8))
    assert [s.size for s in sites] == UNITS and sites[0].name == "stem.2" and sites[-1].name == "stages.7.act2"
    assert [s.start for s in sites] == list(np.cumsum([0] + UNITS[:-1]))
    sel = select_layers(sites, None, max_units=100)  # 16 * 4 + 32 = 96 <= 100 < 128
    assert sel.names == ["stages.5.act2", "stages.6.act1", "stages.6.act2", "stages.7.act1", "stages.7.act2"]
    assert (sel.rule, sel.units_total, sel.units_selected) == ("max_units", 1088, 96)
    assert "exceed max_units=100" in sel.reason
    assert select_layers(sites, None, max_units=1088).rule == "all"
    assert select_layers(sites, None, max_units=10).names == ["stages.7.act2"]  # at least the last site
    assert select_layers(sites, "all", max_units=10).units_selected == 1088
    assert select_layers(sites, ["stages.7.act1", "stem.2"]).names == ["stem.2", "stages.7.act1"]  # forward order
    with pytest.raises(NNProbeError, match="no ReLU-like site named 'nope'"):
        select_layers(sites, ["nope"])


def test_measure_with_the_default_rule_matches_codes_counted_by_hand():
    model, ds = _resnet(1), _dataset()
    res = measure(model, ds, CodesConfig(max_units=100, methods=["knn"], k=3, kmeans_seeds=1), seed=0)
    names = res.selection["names"]
    assert res.n_units == 96 and res.units_total == 1088 and res.summary()["units_total"] == 1088
    assert [ly["units"] for ly in res.layers] == UNITS and sum(ly["selected"] for ly in res.layers) == 5
    tr = record_codes(model, ds.x_train, layers=names).bits()
    te = record_codes(model, ds.x_test, layers=names).bits()
    assert res.determinism.distinct_train == _distinct(tr) <= 34
    assert res.determinism.redundancy_ratio_test == pytest.approx((20 - _distinct(te)) / 20)
    seen = np.mean([(tr == row).all(axis=1).any() for row in te])
    assert res.determinism.test_codes_seen_in_train == pytest.approx(seen) and seen >= 0.2
    for row in res.per_layer:  # each selected layer alone, against np.unique on its columns
        layer = next(ly for ly in res.layers if ly["name"] == row["layer"])
        cols = slice(layer["start"], layer["start"] + layer["units"])
        assert row["distinct_train"] == _distinct(tr[:, cols]) and row["distinct_test"] == _distinct(te[:, cols])
    assert res.model_train_accuracy == pytest.approx(evaluate(model, ds.x_train, ds.y_train)["accuracy"])
    assert res.model_test_accuracy == pytest.approx(evaluate(model, ds.x_test, ds.y_test)["accuracy"])
    assert np.isnan(res.categorisation.kmeans_test_accuracy) and not np.isnan(res.categorisation.knn_test_accuracy)
    text = repr(res)
    assert "code of 96 of 1088" in text and "stem.2" in text and "2x8x8" in text and "exceed max_units=100" in text
    back = CodesResult.from_dict(res.to_dict())
    assert back.selection == res.selection and back.memory == res.memory and back.layers == res.layers
    legacy = {k: v for k, v in res.to_dict().items() if k not in ("selection", "memory")}
    assert CodesResult.from_dict(legacy).n_units == 96  # result files written before these fields still load


def test_all_layers_memory_mapped_give_the_same_figures_as_in_memory(tmp_path):
    model, ds = _resnet(2), _dataset(seed=3)
    cfg = dict(layers="all", categorisation=False, max_units=100)
    small = measure(model, ds, CodesConfig(max_memory=2**13, scratch_dir=str(tmp_path), **cfg))
    big = measure(model, ds, CodesConfig(max_memory=None, **cfg))
    assert small.memory["codes_on_disk"] and not big.memory["codes_on_disk"]
    assert small.memory["codes_bytes"] == 60 * 17 * 8  # 1088 bits = 17 words per code
    assert list(tmp_path.iterdir()) == []  # the scratch file is unlinked at once
    assert small.determinism == big.determinism and small.per_layer == big.per_layer
    assert small.n_units == 1088 and len(small.per_layer) == 17
    full = record_codes(model, ds.x_train).bits()
    for row, start, units in zip(small.per_layer, np.cumsum([0] + UNITS[:-1]), UNITS, strict=True):
        assert row["units"] == units and row["distinct_train"] == _distinct(full[:, start : start + units])
    assert small.determinism.distinct_train == _distinct(full)


def test_fit_rows_are_capped_by_the_memory_budget():
    model, ds = _resnet(3), _dataset()
    res = measure(model, ds, CodesConfig(layers="all", max_memory=2**18, methods=["knn"], k=3, max_units=100))
    assert res.memory["fit_samples"] == (2**18 // 4) // (4 * 1088) == 15  # float32 rows in a quarter of the budget
    assert res.memory["record_batch_bytes"] == 512 * (1088 + 1088)


def test_record_codes_to_a_memory_map_equals_in_memory():
    model, x = _resnet(4), torch.randn(25, 3, 8, 8)
    mem = record_codes(model, x, batch_size=7)
    disk = record_codes(model, x, batch_size=7, max_memory=0)
    assert disk.on_disk and not mem.on_disk
    np.testing.assert_array_equal(np.asarray(disk.packed), mem.packed)
    assert type(allocate_packed(2, 10, max_memory=10**6)) is np.ndarray


def test_hash_collisions_are_split_exactly_also_per_layer_and_on_disk(monkeypatch):
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, size=(60, 70), dtype=np.uint8)
    bits[40:50] = bits[:10]
    bits[50:, :30] = 0  # the first layer of the last 10 rows collapses to one code
    layers = [LayerSlice("a", "relu", (30,), 0), LayerSlice("b", "relu", (40,), 30)]
    packed = allocate_packed(60, 70, max_memory=0)
    packed[:] = pack_bits(bits)
    codes = Codes(packed, 70, layers)
    assert codes.on_disk
    honest = layer_determinism(codes.rows(slice(0, 45)), codes.rows(slice(45, 60)))
    monkeypatch.setattr(det_module, "row_hash", lambda words, chunk_rows=None: np.zeros(words.shape[0], np.uint64))
    ids, n = code_ids(codes)
    assert n == _distinct(bits) == 50
    _, ref = np.unique(bits, axis=0, return_inverse=True)
    assert np.array_equal(ids[:, None] == ids[None, :], ref.reshape(-1)[:, None] == ref.reshape(-1)[None, :])
    forced = det_module.layer_determinism(codes.rows(slice(0, 45)), codes.rows(slice(45, 60)))
    assert forced == honest
    assert [r["distinct_test"] for r in forced] == [_distinct(bits[45:, :30]), _distinct(bits[45:, 30:])] == [6, 15]
    with pytest.raises(NNProbeError, match="hashes"):
        code_ids(codes, hashes=np.zeros(3, np.uint64))


def test_select_and_extract_by_word_shifts_equal_column_slicing():
    rng = np.random.default_rng(5)
    bits = rng.integers(0, 2, size=(9, 300), dtype=np.uint8)
    sizes = [3, 61, 64, 1, 100, 71]
    layers, start = [], 0
    for i, size in enumerate(sizes):
        layers.append(LayerSlice(f"l{i}", "relu", (size,), start))
        start += size
    codes = Codes.from_bits(bits, layers)
    for layer in layers:
        got = extract_bits(codes.words, layer.start, layer.stop)
        np.testing.assert_array_equal(unpack_bits(got.view(np.uint8), layer.size), bits[:, layer.start : layer.stop])
    order = [4, 0, 5, 2]
    picked = codes.select(order)
    ref = np.concatenate([bits[:, layers[i].start : layers[i].stop] for i in order], 1)
    np.testing.assert_array_equal(picked.packed, pack_bits(ref))


def test_config_layers_all_and_methods_are_validated():
    assert CodesConfig(layers="all").layers == "all" and CodesConfig(layers="a,b").layers == ["a", "b"]
    assert CodesConfig(methods="knn,kmeans").methods == ["knn", "kmeans"]
    with pytest.raises(NNProbeError, match="methods"):
        CodesConfig(methods=["svm"])
    with pytest.raises(NNProbeError, match="kmeans_seeds"):
        CodesConfig(kmeans_seeds=0)


def test_kmeans_seeds_reach_categorise():
    res = measure(_resnet(6), _dataset(), CodesConfig(methods=["kmeans"], kmeans_seeds=2, per_layer=False))
    assert res.categorisation.kmeans_seeds == 2 and np.isnan(res.categorisation.knn_test_accuracy)
