import pytest
import torch

from nnprobe.data import add_label_noise, load_dataset
from nnprobe.errors import NNProbeError


def test_digits_is_offline_default():
    ds = load_dataset("digits")
    assert ds.input_shape == (1, 8, 8)
    assert ds.num_classes == 10
    assert ds.n_train + ds.n_test == 1797
    # standardised with training statistics
    assert abs(float(ds.x_train.mean())) < 1e-4
    assert abs(float(ds.x_train.std()) - 1) < 1e-2


def test_class_selection_remaps_labels():
    ds = load_dataset("digits:3,7")
    assert ds.classes == [3, 7]
    assert set(ds.y_train.tolist()) == {0, 1}
    full = load_dataset("digits", normalize="none")
    assert ds.n_train == int(((full.y_train == 3) | (full.y_train == 7)).sum())


def test_split_is_fixed_and_samples_per_class_is_seeded():
    a = load_dataset("digits", samples_per_class=5, seed=1)
    b = load_dataset("digits", samples_per_class=5, seed=1)
    c = load_dataset("digits", samples_per_class=5, seed=2)
    assert torch.equal(a.x_train, b.x_train)
    assert not torch.equal(a.x_train, c.x_train)
    assert torch.equal(a.x_test, c.x_test) or a.n_test == c.n_test
    assert torch.bincount(a.y_train).tolist() == [5] * 10


def test_label_noise_records_clean_labels():
    ds = load_dataset("digits", label_noise=0.2, seed=3)
    changed = ds.y_train != ds.y_train_clean
    assert torch.equal(changed, ds.noisy_mask)
    assert abs(changed.float().mean().item() - 0.2) < 0.01


def test_label_noise_counts_exactly():
    y = torch.arange(100) % 4
    noisy, mask = add_label_noise(y, 4, 0.25, seed=0)
    assert int(mask.sum()) == 25 and bool((noisy[mask] != y[mask]).all()) and torch.equal(noisy[~mask], y[~mask])
    with pytest.raises(NNProbeError):
        add_label_noise(y, 4, 1.5)


def test_unknown_class_and_normalisation():
    with pytest.raises(NNProbeError, match="no class 12"):
        load_dataset("digits:1,12")
    with pytest.raises(NNProbeError, match="normalisation"):
        load_dataset("digits", normalize="zscore")


@pytest.mark.parametrize("kind", ["blobs", "plate", "circle", "sectors", "moons", "blobs3"])
def test_synthetic_shapes(kind):
    ds = load_dataset(f"synthetic:{kind},n=400", normalize="none")
    assert ds.input_shape == (2,)
    assert ds.n_train + ds.n_test == 400
    assert ds.num_classes == (3 if kind == "blobs3" else 2)


def test_synthetic_plate_respects_margin():
    ds = load_dataset("synthetic:plate,n=2000", normalize="none")
    s = ds.x_train.sum(1) - 1
    assert float(s.abs().min()) >= 0.1
    assert bool(((s > 0).long() == ds.y_train).all())


def test_synthetic_gauss_separability_knob():
    from sklearn.linear_model import LogisticRegression

    accs = []
    for sep in (0.5, 8):
        ds = load_dataset(f"synthetic:gauss,k=3,d=5,sep={sep},n=1500", normalize="none")
        clf = LogisticRegression(max_iter=500).fit(ds.x_train.numpy(), ds.y_train.numpy())
        accs.append(clf.score(ds.x_test.numpy(), ds.y_test.numpy()))
    assert accs[0] < 0.8 < 0.99 < accs[1]


def test_real_mnist(mnist_dir):
    ds = load_dataset("mnist:0,1", data_dir=mnist_dir)
    assert ds.n_train == 5923 + 6742 and ds.n_test == 980 + 1135
    assert ds.input_shape == (1, 28, 28)


def test_real_fashion_found_automatically(fashion_available):
    ds = load_dataset("fashion-mnist", samples_per_class=10, normalize="unit")
    assert ds.n_test == 10000 and ds.class_names[9] == "Ankle boot"
    assert float(ds.x_train.min()) >= 0.0 and float(ds.x_train.max()) <= 1.0


def test_mnist_dir_is_not_taken_for_fashion(mnist_dir, tmp_path, monkeypatch):
    import nnprobe.data.paths as paths

    monkeypatch.setattr(paths, "SYSTEM_DIRS", {})
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.delenv("NNPROBE_DATA", raising=False)
    with pytest.raises(NNProbeError, match="fashion-mnist files not found"):
        load_dataset("fashion-mnist", data_dir=mnist_dir)
