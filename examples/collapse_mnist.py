"""Neural collapse and the max-margin SVM over training: an MLP on 5,000 MNIST images trained well past zero training
error, with ``nnprobe.Tracker`` measuring the collapse and margin probes (one shared forward pass) at log-spaced steps.

    python examples/collapse_mnist.py --out runs/collapse-mnist   # 350 epochs, about 10 min on one core
    python examples/collapse_mnist.py --tiny                      # digits, 30 epochs, a few seconds

Then ``nnprobe report OUT`` draws NC1-NC4 beside the cosine to the SVM (OUT/overview_figures/tracked/).
"""

import argparse
import os
import tempfile

import numpy as np
import torch
from torch import nn

import nnprobe

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--tiny", action="store_true", default=os.environ.get("NNPROBE_EXAMPLE_TINY") == "1")
parser.add_argument("--out", default=None, help="the tracker's run directory (default: in a temporary directory)")
parser.add_argument("--epochs", type=int, default=None, help="training epochs (default: 350; --tiny: 30)")
args = parser.parse_args()
out = args.out or os.path.join(tempfile.mkdtemp(prefix="nnprobe-collapse-"), "run")
torch.manual_seed(0)
ds = nnprobe.load_dataset("digits") if args.tiny else nnprobe.load_dataset("mnist", samples_per_class=500)
epochs = args.epochs or (30 if args.tiny else 350)
width, batch = (64, 64) if args.tiny else (512, 128)
layers = [nn.Linear(ds.x_train[0].numel(), width), nn.ReLU(), nn.Linear(width, width), nn.ReLU()]
model = nn.Sequential(nn.Flatten(), *layers, nn.Linear(width, ds.num_classes))
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
decay = torch.optim.lr_scheduler.MultiStepLR(optimizer, [epochs // 3, 2 * epochs // 3], 0.1)  # Papyan et al.'s
steps = epochs * -(-ds.n_train // batch)
tracked = {int(s) for s in np.geomspace(5, steps, 16 if not args.tiny else 6)} | {steps}  # log-spaced steps

step, zero = 0, None  # zero: the first tracked step with no training error
with nnprobe.Tracker(["margin", "collapse"], ds, out=out, train=2000, test=1000) as tracker:
    for epoch in range(1, epochs + 1):
        model.train()
        for idx in torch.randperm(ds.n_train).split(batch):  # a plain loop: the tracker does not change it
            loss = nn.functional.cross_entropy(model(ds.x_train[idx]), ds.y_train[idx])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            step += 1
            if step in tracked:
                s = tracker.step(model, epoch=epoch, step=step)["summaries"]
                zero = zero or (step if s["collapse"]["head_accuracy"] == 1.0 else None)
                print(f"step {step:6d}  NC1 {s['collapse']['nc1']:.4g}  cosine {s['margin']['cosine_to_svm']:.4f}")
        decay.step()

c = tracker.curves()
first, last = (f"{k}: {c[k][0]:.4g} -> {c[k][-1]:.4g}" for k in ("collapse/nc1", "margin/cosine_to_svm"))
print(f"{first}; {last}; probe rows first classified without error at step {zero}")
print(f"run directory: {out} (nnprobe report {out})")
