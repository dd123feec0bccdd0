"""Progress bars: on stderr only when asked (off in library calls by default), never changing a number.

And the streamed GradNet test set: the same per-epoch test accuracies as the stored one, one chunk at a time.
"""

from __future__ import annotations

import torch

from nnprobe.data import load_dataset
from nnprobe.models import build_model
from nnprobe.probes.gradnet.network import GradNetConfig, accuracy_of_sum, train_gradnet
from nnprobe.probes.margin import MarginConfig
from nnprobe.probes.margin import measure as measure_margin


def _blobs_model():
    ds = load_dataset("synthetic:blobs")
    torch.manual_seed(0)
    return ds, build_model("mlp", ds.input_shape, ds.num_classes, width=8, feature_dim=2)


def test_margin_progress_goes_to_stderr_only_when_asked_and_changes_nothing(capsys):
    ds, net = _blobs_model()
    cfg = MarginConfig(retrain_epochs=30)
    quiet = measure_margin(net, ds, cfg, seed=1)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    loud = measure_margin(net, ds, cfg, seed=1, progress=True)
    out = capsys.readouterr()
    assert out.out == "" and "retrain head" in out.err and "SVM" in out.err
    assert loud.retrain_history == quiet.retrain_history
    assert loud.summary()["cosine_to_svm"] == quiet.summary()["cosine_to_svm"]


def test_margin_feature_batches_follow_max_memory():
    from nnprobe.models.checks import batch_for_memory, forward_bytes_per_example

    ds, net = _blobs_model()
    per = forward_bytes_per_example(net, ds.x_train)
    # by hand: input (2) + Linear(2, 8) + ReLU + Linear(8, 2) + ReLU + Linear(2, 2) outputs, float32
    layers = [m for m in net.modules() if not list(m.children())]
    with torch.no_grad():
        h, sizes = ds.x_train[:1], [ds.x_train[:1].numel()]
        for m in layers:
            h = m(h)
            sizes.append(h.numel())
    assert per == 4 * sum(sizes)
    assert batch_for_memory(net, ds.x_train, 3 * per) == 3
    small = measure_margin(net, ds, MarginConfig(retrain_epochs=0, max_memory=2**20), seed=0)
    big = measure_margin(net, ds, MarginConfig(retrain_epochs=0), seed=0)
    assert small.summary()["cosine_to_svm"] == big.summary()["cosine_to_svm"]


def test_streamed_gradnet_test_set_gives_the_same_per_epoch_accuracies(capsys):
    gen = torch.Generator().manual_seed(0)
    train_g = torch.randn(120, 1, 12, generator=gen)
    y = (train_g[:, 0, :3].sum(1) > 0).long() + (train_g[:, 0, 3] > 1).long()
    test_g = torch.randn(50, 3, 12, generator=gen)
    y_test = torch.randint(3, (50,), generator=gen)
    groups = [("a", 0, 5), ("b", 5, 12)]
    cfg = GradNetConfig(structure="4+4", epochs=6, lr=0.05, dropout=0.2, seed=3)
    stored = train_gradnet(train_g, y, groups, 3, cfg, test_grads=test_g, y_test=y_test)
    chunks = []

    def stream():
        for i in range(0, 50, 16):
            chunks.append(i)
            yield test_g[i : i + 16], y_test[i : i + 16]

    streamed = train_gradnet(train_g, y, groups, 3, cfg, test_grads=stream, progress=True)
    assert "GradNet" in capsys.readouterr().err
    assert chunks == [0, 16, 32, 48]  # one pass over the stream for all six epochs
    assert [h["test_accuracy"] for h in streamed.history] == [h["test_accuracy"] for h in stored.history]
    assert [h["train_loss"] for h in streamed.history] == [h["train_loss"] for h in stored.history]
    # the last epoch's accuracy is the final model's, by the test rule computed directly
    assert streamed.test_accuracy == accuracy_of_sum(streamed.model, test_g, y_test)


def test_codes_progress_names_the_phases_and_changes_nothing(capsys):
    from nnprobe.probes.codes import CodesConfig
    from nnprobe.probes.codes import measure as measure_codes

    ds = load_dataset("digits")
    torch.manual_seed(0)
    net = build_model("mlp", ds.input_shape, ds.num_classes, width=16)
    cfg = CodesConfig(methods=["knn"], record_batch_size=100)
    quiet = measure_codes(net, ds, cfg)
    out = capsys.readouterr()
    assert out.out == "" and out.err == ""
    loud = measure_codes(net, ds, cfg, progress=True)
    err = capsys.readouterr().err
    assert "codes: record train" in err and "codes: categorise" in err
    assert loud.summary()["knn_test_accuracy"] == quiet.summary()["knn_test_accuracy"]
    assert loud.determinism == quiet.determinism


def test_gradspace_max_memory_streams_the_test_set_with_the_same_numbers(capsys, monkeypatch):
    import nnprobe.probes.gradnet.pipeline as pipeline
    from nnprobe.probes.gradnet import GradSpaceConfig
    from nnprobe.probes.gradnet import measure as measure_gradspace

    streams = []
    original = pipeline._test_chunks
    monkeypatch.setattr(pipeline, "_test_chunks", lambda *a, **k: streams.append(1) or original(*a, **k))

    ds = load_dataset("digits", samples_per_class=60, test_samples_per_class=20)
    torch.manual_seed(0)
    net = build_model("mlp", ds.input_shape, ds.num_classes, width=16, depth=1)
    cfg = GradSpaceConfig(percent=50.0, fit_samples=100, gradnet_epochs=3, controls=False)
    # 50% of ~1.2k weights: train (600 x 1 x D) + test (200 x 10 x D) floats are ~5 MB, over half of 1 MiB
    stored = measure_gradspace(net, ds, cfg)
    assert capsys.readouterr().err == "" and streams == []
    streamed = measure_gradspace(net, ds, cfg.replace(max_memory=2**20), progress=True)
    assert streams == [1]
    err = capsys.readouterr().err
    assert "test gradients" in err and "GradNet" in err
    assert [h["test_accuracy"] for h in streamed.gradnet_history] == [
        h["test_accuracy"] for h in stored.gradnet_history
    ]
    assert streamed.gradnet_test_accuracy == stored.gradnet_test_accuracy


def test_check_finite_counts_every_bad_value_across_its_slices():
    import pytest

    from nnprobe.errors import NNProbeError, check_finite

    x = torch.zeros(3000, 2, 300)  # checked in slices of ~870 rows
    x[0, 0, 0], x[872, 1, 5], x[2999, 1, 299] = float("nan"), float("inf"), -float("inf")
    with pytest.raises(NNProbeError, match="holds 3 non-finite value"):
        check_finite("g", x)
    with pytest.raises(NNProbeError, match="holds 2 non-finite value"):
        check_finite("g", x[:, 1])  # a non-contiguous view
    check_finite("g", torch.zeros(0, 4))
    check_finite("g", torch.tensor(1.0))
