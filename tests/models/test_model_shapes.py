"""Eight model shapes written outside nnprobe x the three probes x (Python, command line): each works -- the head
found is the right one and the numbers are the model's own -- or is refused cleanly (a non-zero exit, one
``Error:`` message with its fix, no traceback, nothing left on disk). Issue 19.

The models are :mod:`user_models` (beside this file), trained here with a plain loop as their user would; each
probe's accuracy of the network must equal the accuracy computed here through the model's own output, which it
would not if the adapter took the wrong output, the wrong head or the wrong class count.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from nnprobe.cli import main
from nnprobe.data import load_dataset
from nnprobe.errors import NNProbeError
from nnprobe.models import dataset_head

HERE = Path(__file__).resolve().parent
SAMPLES = 30  # training examples per class of digits: every model trains in about a second
TEST_SAMPLES = 15  # test examples per class
EPOCHS = 20
# (shape, probe) pairs that must be refused, with a word the message must hold: codes needs ReLU-like units
REFUSED = {("GELU only", "codes"): "gelu", ("LeakyReLU/Hardtanh/ReLU6 mix", "codes"): "hardtanh"}
# per probe: the Python call (config kept small), the CLI flags doing the same, the summary key of the network's
# test accuracy, and the other numbers that must be in range
PROBES = {
    "margin": (
        ["--retrain-epochs", "0", "--null-starts", "0"],
        "nn_test_accuracy",
        {"cosine_to_svm": (-1, 1), "test_agreement": (0, 1)},
    ),
    "codes": (["--no-nulls"], "model_test_accuracy", {"redundancy_ratio_train": (0, 1), "knn_test_accuracy": (0, 1)}),
    "gradnet": (["--gradnet-epochs", "2"], "base_test_accuracy", {"gradnet_test_accuracy": (0, 1)}),
}


@pytest.fixture(scope="module")
def user_models():
    sys.path.insert(0, str(HERE))
    try:
        import user_models

        yield user_models
    finally:
        sys.path.remove(str(HERE))


@pytest.fixture(scope="module")
def trained(user_models, tmp_path_factory):
    """``shape -> (model, dataset, test accuracy computed here, saved path)``, trained once per module."""
    cache: dict = {}

    def get(shape: str):
        if shape not in cache:
            build, data, _, output = user_models.SHAPES[shape]
            ds = load_dataset(data, samples_per_class=SAMPLES, test_samples_per_class=TEST_SAMPLES)
            torch.manual_seed(0)
            model = build(ds.num_classes)
            acc = user_models.train_plainly(model, ds, output, epochs=EPOCHS)
            path = tmp_path_factory.mktemp("models") / "model.pt"
            torch.save(model, path)
            cache[shape] = (model, ds, acc, path)
        return cache[shape]

    return get


def python_call(probe: str, model, ds, output):
    from nnprobe.probes import codes, gradnet, margin

    if probe == "margin":
        return margin.measure(model, ds, margin.MarginConfig(retrain_epochs=0, null_starts=0), output=output)
    if probe == "codes":
        return codes.measure(model, ds, codes.CodesConfig(nulls=False), output=output)
    return gradnet.measure(model, ds, gradnet.GradSpaceConfig(gradnet_epochs=2), output=output)


def check_numbers(probe: str, summary: dict, acc: float):
    _, key, ranges = PROBES[probe]
    assert summary[key] == pytest.approx(acc, abs=1e-6), (key, summary[key], acc)  # the same correct count
    for name, (low, high) in ranges.items():
        assert low - 1e-6 <= summary[name] <= high + 1e-6, (name, summary[name])


def shape_names():
    sys.path.insert(0, str(HERE))
    try:
        import user_models

        return list(user_models.SHAPES)
    finally:
        sys.path.remove(str(HERE))


SHAPES = shape_names()


@pytest.mark.parametrize("shape", SHAPES)
def test_the_head_found_is_the_models_head(user_models, trained, shape):
    model, ds, acc, _ = trained(shape)
    _, _, head, output = user_models.SHAPES[shape]
    from nnprobe.models.adapter import selected_output

    with selected_output(model, output):
        assert dataset_head(model, ds).head_name == head
    assert acc > 0.3, f"{shape} did not train ({acc:.3f}): the numbers below would say nothing"


@pytest.mark.parametrize("probe", sorted(PROBES))
@pytest.mark.parametrize("shape", SHAPES)
def test_python_works_or_refuses_cleanly(user_models, trained, shape, probe):
    model, ds, acc, _ = trained(shape)
    output = user_models.SHAPES[shape][3]
    if (shape, probe) in REFUSED:
        with pytest.raises(NNProbeError, match="(?i)" + REFUSED[(shape, probe)]) as info:
            python_call(probe, model, ds, output)
        assert "fix:" in str(info.value)
        return
    check_numbers(probe, python_call(probe, model, ds, output).summary(), acc)


@pytest.mark.parametrize("probe", sorted(PROBES))
@pytest.mark.parametrize("shape", SHAPES)
def test_cli_works_or_refuses_cleanly(user_models, trained, tmp_path, shape, probe):
    _, ds, acc, path = trained(shape)
    _, data, _, output = user_models.SHAPES[shape]
    out = tmp_path / "run"
    args = [
        probe,
        "--checkpoint",
        str(path),
        "--data",
        data,
        "--samples-per-class",
        str(SAMPLES),
        "--test-samples-per-class",
        str(TEST_SAMPLES),
        "--out",
        str(out),
        "--format",
        "json",
        "--no-progress",
        *PROBES[probe][0],
    ]
    if output is not None:
        args += ["--output", str(output)]
    result = CliRunner().invoke(main, args)
    if (shape, probe) in REFUSED:
        assert_refused(result, out, REFUSED[(shape, probe)])
        return
    assert result.exit_code == 0, result.output
    check_numbers(probe, json.loads(result.stdout.strip().splitlines()[-1]), acc)
    record = json.loads((out / "config.json").read_text())["record"]
    assert record["model"]["output"] == output and record["model"]["num_classes"] == ds.num_classes


def assert_refused(result, out: Path, word: str):
    """A non-zero exit, one ``Error:`` message with a fix, no traceback, and no run directory."""
    text = result.output
    assert result.exit_code != 0, text
    assert "Traceback" not in text and text.startswith("Error: ") and text.count("Error:") == 1, text
    assert "fix:" in text and word in text.lower(), text
    assert not out.exists()
