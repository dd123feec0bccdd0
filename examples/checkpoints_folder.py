"""Probe a folder of checkpoints after the fact: train, save a state dict every few epochs, then
``nnprobe.track_checkpoints`` measures the margin and codes probes at each one, in training order (from the epoch
in the file name). The same from the command line:
``nnprobe track --checkpoints 'CKPTS/epoch_*.pt' --probe margin,codes --data digits --model-factory mod:make_model``.

    python examples/checkpoints_folder.py            # 20 epochs, 5 checkpoints, about a minute on one core
    python examples/checkpoints_folder.py --tiny     # 2 checkpoints, a few seconds (also NNPROBE_EXAMPLE_TINY=1)
"""

import argparse
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

import nnprobe

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--tiny", action="store_true", default=os.environ.get("NNPROBE_EXAMPLE_TINY") == "1")
parser.add_argument("--out", default=None, help="where the checkpoints and the curves go (default: a temporary dir)")
args = parser.parse_args()
out = Path(args.out or tempfile.mkdtemp(prefix="nnprobe-checkpoints-"))
(out / "ckpts").mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)
epochs, every = (2, 1) if args.tiny else (20, 4)


def make_model() -> nn.Module:  # builds the model each state dict is loaded into
    return nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))


ds = nnprobe.load_dataset("digits")
model = make_model()
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for epoch in range(1, epochs + 1):
    for idx in torch.randperm(ds.n_train).split(64):
        loss = nn.functional.cross_entropy(model(ds.x_train[idx]), ds.y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    if epoch % every == 0:
        torch.save(model.state_dict(), out / "ckpts" / f"epoch_{epoch}.pt")

result = nnprobe.track_checkpoints(
    out / "ckpts", ["margin", "codes"], "digits", out / "track", factory=make_model, train=500, test=300
)
curves = result.curves()
print(f"measured {result.measured} checkpoints\n{'epoch':>5}  {'cosine to SVM':>13}  {'codes K-NN test acc':>19}")
for row in zip(curves["epoch"], curves["margin/cosine_to_svm"], curves["codes/knn_test_accuracy"], strict=True):
    print("{:>5}  {:>13.3f}  {:>19.3f}".format(*row))
print(f"\ncurves: {result.out} (nnprobe report {result.out})")
