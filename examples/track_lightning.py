"""Track a PyTorch Lightning run: ``NNProbeCallback`` measures the margin probe at the end of each training epoch and
logs its numbers to the trainer's loggers (here Lightning's CSV logger). Needs ``pip install 'nnprobe[lightning]'``.

    python examples/track_lightning.py            # 15 epochs, under a minute on one core
    python examples/track_lightning.py --tiny     # 2 epochs, a few seconds (also NNPROBE_EXAMPLE_TINY=1)
"""

import argparse
import logging
import os
import tempfile
import warnings

import lightning as L
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

import nnprobe
from nnprobe.integrations.lightning import NNProbeCallback

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--tiny", action="store_true", default=os.environ.get("NNPROBE_EXAMPLE_TINY") == "1")
parser.add_argument("--out", default=None, help="where the probe curves and logs go (default: a temporary directory)")
args = parser.parse_args()
out = args.out or tempfile.mkdtemp(prefix="nnprobe-lightning-")
logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)  # keep the example's output short
warnings.filterwarnings("ignore", category=FutureWarning)  # lightning 2.6 on torch 2.13: a deprecation notice
L.seed_everything(0, verbose=False)


class Digits(L.LightningModule):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, 10))

    def forward(self, x):  # the callback measures the module itself: its forward returns the logits
        return self.net(x)

    def training_step(self, batch, batch_idx):
        return nn.functional.cross_entropy(self(batch[0]), batch[1])

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.05, momentum=0.9)


ds = nnprobe.load_dataset("digits")
loader = DataLoader(TensorDataset(ds.x_train, ds.y_train), batch_size=64, shuffle=True)
probe = NNProbeCallback(["margin"], ds, out=os.path.join(out, "probes"), train=500, test=300)
trainer = L.Trainer(
    max_epochs=2 if args.tiny else 15, callbacks=[probe], logger=L.pytorch.loggers.CSVLogger(out, name="logs"),
    log_every_n_steps=5, enable_checkpointing=False, enable_progress_bar=False, enable_model_summary=False,
)  # fmt: skip
trainer.fit(Digits(), loader)

curves = probe.tracker.curves()  # 0-based epochs: Lightning's own current_epoch
print(f"{'epoch':>5}  {'step':>5}  {'cosine to SVM':>13}  {'test agreement':>14}")
for row in zip(*(curves[k] for k in ("epoch", "step", "margin/cosine_to_svm", "margin/test_agreement")), strict=True):
    print("{:>5}  {:>5}  {:>13.3f}  {:>14.3f}".format(*row))
print(f"\nprobe curves: {out}/probes; the same numbers in the CSV log: {trainer.logger.log_dir}/metrics.csv")
