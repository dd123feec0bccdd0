"""Probe your own model: a small torch CNN of our own, trained briefly on the embedded digits, then the margin probe
(is the last layer the max-margin SVM of its features?) and the codes probe (are the ReLU patterns a hash code?).

    python examples/own_model.py            # ~30 epochs, under a minute on one core
    python examples/own_model.py --tiny     # 2 epochs, a few seconds (also NNPROBE_EXAMPLE_TINY=1)
"""

import argparse
import json
import os
import tempfile
from pathlib import Path

import torch
from torch import nn

import nnprobe

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--tiny", action="store_true", default=os.environ.get("NNPROBE_EXAMPLE_TINY") == "1")
parser.add_argument("--out", default=None, help="where to write summary.json (default: a temporary directory)")
args = parser.parse_args()
out = Path(args.out or tempfile.mkdtemp(prefix="nnprobe-own-model-"))
out.mkdir(parents=True, exist_ok=True)
torch.manual_seed(0)

ds = nnprobe.load_dataset("digits")  # 8x8 grey images, 10 classes, shipped with scikit-learn
model = nn.Sequential(  # any nn.Module whose output is a linear layer's output
    nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.Flatten(), nn.Linear(16 * 8 * 8, 32), nn.ReLU(), nn.Linear(32, 10)
)
optimizer = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
for _ in range(2 if args.tiny else 30):  # epochs
    for idx in torch.randperm(ds.n_train).split(64):
        loss = nn.functional.cross_entropy(model(ds.x_train[idx]), ds.y_train[idx])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
model.eval()
with torch.no_grad():
    accuracy = (model(ds.x_test).argmax(1) == ds.y_test).float().mean().item()
print(f"test accuracy {accuracy:.3f}; head: {nnprobe.split_head(model).head_name}")

margin = nnprobe.margin_probe(model, ds, nnprobe.MarginConfig(retrain_epochs=0), seed=0)
codes = nnprobe.codes_probe(model, ds, nnprobe.CodesConfig(k=9), seed=0)
m, c = margin.summary(), codes.summary()
print(f"margin: cosine to the SVM {m['cosine_to_svm']:.3f}, test agreement {m['test_agreement']:.3f}")
print(f"codes: redundancy ratio {c['redundancy_ratio_train']:.4f}, K-NN test accuracy {c['knn_test_accuracy']:.3f}")
(out / "summary.json").write_text(json.dumps({"test_accuracy": accuracy, "margin": m, "codes": c}, indent=1))
print(f"wrote {out / 'summary.json'}")
