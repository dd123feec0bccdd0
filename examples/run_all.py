"""Run every example at its tiny size, each in its own process, and time it (what CI runs).

    python3 examples/run_all.py             # every example in EXAMPLES
    python3 examples/run_all.py own_model   # only the ones named

Prints ``example NAME: N.N s`` per example and the total; exits non-zero, with the tail of the failing example's
output, when any fails.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXAMPLES = ["own_model", "track_plain_loop", "track_lightning", "checkpoints_folder", "small_sweep", "collapse_mnist"]
TAIL = 3000  # characters of a failing example's stderr (and stdout) to show


def run(name: str, out: Path) -> tuple[float, subprocess.CompletedProcess]:
    """Run ``examples/NAME.py --tiny --out OUT/NAME``; returns its wall time and the finished process."""
    env = {**os.environ, "NNPROBE_EXAMPLE_TINY": "1"}
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(HERE.parent), env.get("PYTHONPATH")) if p)
    command = [sys.executable, str(HERE / f"{name}.py"), "--tiny", "--out", str(out / name)]
    start = time.perf_counter()
    done = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    return time.perf_counter() - start, done


def main(names: list[str]) -> int:
    unknown = sorted(set(names) - set(EXAMPLES))
    if unknown:
        print(f"unknown example(s): {', '.join(unknown)}; known: {', '.join(EXAMPLES)}", file=sys.stderr)
        return 2
    failed, total = [], 0.0
    with tempfile.TemporaryDirectory(prefix="nnprobe-examples-") as tmp:
        for name in names or EXAMPLES:
            seconds, done = run(name, Path(tmp))
            total += seconds
            print(
                f"example {name}: {seconds:.1f} s" + ("" if done.returncode == 0 else f"  FAILED ({done.returncode})")
            )
            if done.returncode != 0:
                failed.append(name)
                print(f"--- {name}: stdout (tail) ---\n{done.stdout[-TAIL:]}", file=sys.stderr)
                print(f"--- {name}: stderr (tail) ---\n{done.stderr[-TAIL:]}", file=sys.stderr)
            sys.stdout.flush()
    print(f"total: {total:.1f} s" + (f"; failed: {', '.join(failed)}" if failed else ""))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
