"""A small sweep: the codes probe over the width of a one-hidden-layer ReLU net on digits, with seeds, read from
``examples/sweeps/codes_width.yaml`` and run on this machine into one SQLite table, then printed per width.
The same from the command line: ``nnprobe sweep run examples/sweeps/codes_width.yaml --out DIR``.

    python examples/small_sweep.py            # 6 widths x 2 seeds, about a minute on one core
    python examples/small_sweep.py --tiny     # 2 widths x 1 seed, a few seconds (also NNPROBE_EXAMPLE_TINY=1)
"""

import argparse
import dataclasses
import os
import statistics
import tempfile
from pathlib import Path

from nnprobe.sweeps import ResultsTable, load_spec, run_spec

parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
parser.add_argument("--tiny", action="store_true", default=os.environ.get("NNPROBE_EXAMPLE_TINY") == "1")
parser.add_argument("--out", default=None, help="the sweep directory (default: in a temporary directory)")
args = parser.parse_args()
out = Path(args.out or tempfile.mkdtemp(prefix="nnprobe-sweep-")) / "codes_width"

spec = load_spec(Path(__file__).parent / "sweeps" / "codes_width.yaml")  # every point is seeded by its `seed`
if args.tiny:
    base = {**spec.base, "epochs": 2, "samples_per_class": 20, "test_samples_per_class": 10}
    spec = dataclasses.replace(spec, base=base, grid={"width": [4, 16]}, seeds=[0])
else:
    spec = dataclasses.replace(spec, seeds=[0, 1])  # the file has four seeds
# a re-run of the same command skips the finished points; workers=2 or engine="ray" spread them
summary = run_spec(spec, out, engine="local", workers=1, threads=1, progress=False)
print(summary)

rows = ResultsTable(out / "results.sqlite").rows()  # flat dicts: parameters and metrics, one per finished point
columns = ["redundancy_ratio_train", "knn_test_accuracy"]
print(f"\n{'width':>5}  {'seeds':>5}  " + "  ".join(f"{c:>22}" for c in columns))
for width in spec.grid["width"]:
    mine = [r for r in rows if r["width"] == width]
    means = [statistics.mean(r[c] for r in mine) for c in columns]
    print(f"{width:>5}  {len(mine):>5}  " + "  ".join(f"{m:>22.3f}" for m in means))
print(f"\nthe table: {out / 'results.sqlite'} (nnprobe report {out})")
