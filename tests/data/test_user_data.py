"""Input adaptation named in the dataset (``@CxHxW``) and the user's own data (``npz:PATH``, ``as_dataset``)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from nnprobe.data import as_dataset, load_dataset, parse_spec
from nnprobe.data.adapt import adapt_inputs
from nnprobe.data.user import held_out_split
from nnprobe.errors import NNProbeError


@pytest.mark.parametrize(
    "text, name, classes, shape",
    [
        ("mnist@3x32x32", "mnist", None, (3, 32, 32)),
        ("mnist:0,1@3x32x32", "mnist", (0, 1), (3, 32, 32)),
        ("fashion@1x30x30", "fashion-mnist", None, (1, 30, 30)),
        ("digits", "digits", None, None),
    ],
)
def test_the_shape_suffix_is_parsed_and_written_back(text, name, classes, shape):
    spec = parse_spec(text)
    assert (spec.name, spec.classes, spec.shape) == (name, classes, shape)
    assert parse_spec(str(spec)) == spec


def test_npz_names_keep_their_path(tmp_path):
    spec = parse_spec(f"npz:{tmp_path}/a b,c.npz@1x8x8")
    assert spec.params == {"path": f"{tmp_path}/a b,c.npz"} and spec.shape == (1, 8, 8)
    assert str(spec) == f"npz:{tmp_path}/a b,c.npz@1x8x8"


@pytest.mark.parametrize(
    "text, words",
    [
        ("mnist@32x32", "bad input shape"),
        ("mnist@0x32x32", "zero size"),
        ("synthetic:blobs@1x2x2", "vectors, not images"),
        ("npz:", "needs the path"),
    ],
)
def test_bad_names_explain_themselves(text, words):
    with pytest.raises(NNProbeError, match=words) as info:
        parse_spec(text)
    assert "fix:" in str(info.value)


def test_padding_and_channel_repeat_against_a_hand_made_image():
    x = torch.arange(2 * 1 * 3 * 4, dtype=torch.float32).reshape(2, 1, 3, 4) + 1
    y, how = adapt_inputs(x, (3, 6, 7))
    assert y.shape == (2, 3, 6, 7)
    assert how["pad"] == [1, 2, 1, 2]  # left, right, top, bottom: the odd extra goes right and below
    for c in range(3):
        assert torch.equal(y[:, c, 1:4, 1:5], x[:, 0])
    assert float(y.sum()) == 3 * float(x.sum())  # only zeros added


@pytest.mark.parametrize(
    "source, target, words", [((1, 8, 8), (3, 6, 6), "crop"), ((3, 8, 8), (2, 10, 10), "only one channel")]
)
def test_what_cannot_be_done_by_padding_is_refused(source, target, words):
    with pytest.raises(NNProbeError, match=words):
        adapt_inputs(torch.zeros(1, *source), target)


def test_digits_at_3x32x32_is_padded_before_normalising():
    plain, wide = load_dataset("digits", normalize="none"), load_dataset("digits@3x32x32", normalize="none")
    assert wide.input_shape == (3, 32, 32) and wide.name == "digits@3x32x32"
    assert torch.equal(wide.x_train[:, 1, 12:20, 12:20], plain.x_train[:, 0])
    assert float(wide.x_train[:, :, :12].abs().sum()) == 0.0
    assert wide.meta["input_adaptation"]["how"] == "zero-padded 8x8 to 32x32, channel repeated 3 times"


def test_held_out_sixth_is_seeded_and_disjoint():
    train, test = held_out_split(600)
    again = held_out_split(600)
    assert len(test) == 100 and not set(train) & set(test)
    assert np.array_equal(test, again[1])


def test_as_dataset_from_a_torch_dataset_and_from_arrays():
    x, y = torch.randn(30, 2, 4, 4), torch.tensor([4, 9] * 15)
    from_tensors = as_dataset(x, y)
    from_torch = as_dataset(torch.utils.data.TensorDataset(x, y))
    assert from_tensors.classes == [4, 9] and from_tensors.n_test == 5
    assert torch.equal(from_tensors.x_test, from_torch.x_test) and torch.equal(from_tensors.y_train, from_torch.y_train)
    given = as_dataset(x, y, x_test=x[:4], y_test=y[:4])
    assert given.n_train == 30 and given.n_test == 4 and "held_out" not in given.meta
    assert torch.equal(given.x_train, x)  # taken as it is: no normalisation unless asked


def test_as_dataset_reads_an_iterable_dataset_by_iterating_it():
    x, y = torch.randn(30, 2, 4, 4), torch.tensor([4, 9] * 15)

    class Stream(torch.utils.data.IterableDataset):  # no len(), no x[i]: only iteration
        def __iter__(self):
            return iter(zip(x, y, strict=True))

    streamed, mapped = as_dataset(Stream()), as_dataset(x, y)
    assert torch.equal(streamed.x_train, mapped.x_train) and torch.equal(streamed.y_test, mapped.y_test)


def test_npz_arrays_load_with_their_own_test_split(tmp_path):
    rng = np.random.default_rng(0)
    path = tmp_path / "d.npz"
    np.savez(
        path,
        x=rng.normal(size=(40, 5, 5)),
        y=np.arange(40) % 4,
        x_test=rng.normal(size=(8, 5, 5)),
        y_test=np.arange(8) % 4,
    )
    ds = load_dataset(f"npz:{path}", samples_per_class=3)
    assert ds.input_shape == (1, 5, 5) and ds.n_train == 12 and ds.n_test == 8
    assert ds.meta["counts"]["train"] == {"0": 3, "1": 3, "2": 3, "3": 3}
    assert ds.meta["files"][0]["bytes"] == path.stat().st_size


@pytest.mark.parametrize(
    "arrays, words",
    [
        ({"x": np.zeros((4, 3))}, "holds no array y"),
        ({"x": np.zeros((4, 3)), "y": np.zeros((4, 2))}, "one integer label per input"),
        ({"x": np.zeros((4, 3)), "y": np.array([0.5, 1, 0, 1])}, "non-integer labels"),
        ({"x": np.zeros((4, 3)), "y": np.array([0, 1, 0, 1]), "x_test": np.zeros((2, 3))}, "x_test but no y_test"),
        (
            {
                "x": np.zeros((4, 3)),
                "y": np.array([0, 1, 0, 1]),
                "x_test": np.zeros((2, 3)),
                "y_test": np.array([0, 2]),
            },
            "y_test holds class",
        ),
        ({"x": np.zeros((4, 3, 2, 2, 2)), "y": np.array([0, 1, 0, 1])}, "has shape"),
    ],
)
def test_bad_npz_files_are_refused_with_the_fix(tmp_path, arrays, words):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    with pytest.raises(NNProbeError, match=words) as info:
        load_dataset(f"npz:{path}")
    assert "fix:" in str(info.value)


def test_sample_counts_say_which_classes_are_short():
    ds = load_dataset("digits:0,1", samples_per_class=145)
    assert ds.meta["counts"]["train"] == {"0": 145, "1": 144}
    assert ds.meta["counts"]["short"] == {"train": {"asked": 145, "available": {"1": 144}}}
