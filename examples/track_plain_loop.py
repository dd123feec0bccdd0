"""Track a plain PyTorch training loop: ``nnprobe.Tracker`` measures the margin and codes probes on fixed probe sets
after each epoch, without disturbing training (the weights come out as they would without it).

    python examples/track_plain_loop.py            # 20 epochs, about a minute on one core
    python examples/track_plain_loop.py --tiny     # 2 epochs, a few seconds (also NNPROBE_EXAMPLE_TINY=1)

Then ``nnprobe report OUT`` draws the curves.
"""

import argparse
import os
import tempfile

import torch
from torch import nn

import nnprobe

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--tiny", action="store_true", default=os.environ.get("NNPROBE_EXAMPLE_TINY") == "1")
parser.add_argument("--out", default=None, help="the tracker's run directory (default: in a temporary directory)")
args = parser.parse_args()
out = args.out or os.path.join(tempfile.mkdtemp(prefix="nnprobe-track-"), "run")
torch.manual_seed(0)
epochs, every = (2, 1) if args.tiny else (20, 4)

ds = nnprobe.load_dataset("digits")
model = nn.Sequential(nn.Flatten(), nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)

# data: a dataset name, an nnprobe Dataset, ((x, y), (x_test, y_test)) or (train_dataset, test_dataset)
with nnprobe.Tracker(["margin", "codes"], ds, out=out, train=500, test=300) as tracker:
    for epoch in range(1, epochs + 1):
        model.train()
        for idx in torch.randperm(ds.n_train).split(64):  # the loop is yours, unchanged
            loss = nn.functional.cross_entropy(model(ds.x_train[idx]), ds.y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
        if epoch % every == 0 or epoch == 1:
            point = tracker.step(model, epoch)  # every probe's summary at this epoch
            print(f"epoch {epoch:3d}: loss {loss.item():.3f}, measured in {sum(point['seconds'].values()):.1f} s")

curves = tracker.curves()  # per-point lists of the headline numbers; codes redundancy 0: every code is unique
columns = ["epoch", "margin/cosine_to_svm", "codes/redundancy_ratio_train", "codes/knn_test_accuracy"]
print("\n" + "  ".join(columns))
for row in zip(*(curves[c] for c in columns), strict=True):
    print("  ".join(f"{v:>{len(c)}.4g}" for c, v in zip(columns, row, strict=True)))
print(f"\nrun directory: {out} (nnprobe report {out})")
