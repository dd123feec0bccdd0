"""The model-shapes table of issue 19: eight models written outside nnprobe x three probes x (Python, CLI).

Models: ``tests/models/user_models.py`` (``SHAPES``): a ``Sequential`` MLP, a CNN with ``F.relu`` and a head
called ``classifier``, a GELU-only MLP, BatchNorm + Dropout, a model returning ``(logits, features)``, a
torchvision-shaped ResNet-18 (written there; torchvision is not used) on ``digits@3x32x32``, a LeakyReLU /
Hardtanh / ReLU6 mix, and a model whose head is registered first. Each is trained as its user would, outside
nnprobe (``train_plainly``: Adam, ``--epochs``, on ``--samples-per-class`` digits per class), then probed:

* Python: ``margin.measure`` / ``codes.measure`` / ``gradnet.measure`` with ``output=`` where the model returns a
  tuple;
* CLI: ``python -m nnprobe <probe> --checkpoint model.pt --data ... [--output 0]``, one process per cell (the
  saved model's module is found through ``PYTHONPATH``).

A cell reads ``works`` with the head found (``models.dataset_head``, what the probes use), the network's test
accuracy as the probe measured it (``=`` when it equals the accuracy computed here through the model's own
output, ``!=`` otherwise) and the probe's headline numbers; or ``refused`` with the message's first words, and
for the CLI whether the refusal was clean: exit status != 0, one ``Error:`` message, no traceback, no run
directory left. Budgets are tiny (a few seconds per cell on one core): the numbers say the probe ran on the
right output and head, not what the claims are on these models.

    OMP_NUM_THREADS=1 python bench/model_shapes.py                 # about 5 minutes on one shared core
    OMP_NUM_THREADS=1 python bench/model_shapes.py --only "tuple"  # shapes whose name holds the text
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
MODELS = ROOT / "tests" / "models"
sys.path[:0] = [str(ROOT), str(MODELS)]

import user_models  # noqa: E402

from nnprobe.data import load_dataset  # noqa: E402
from nnprobe.errors import NNProbeError  # noqa: E402
from nnprobe.models import dataset_head  # noqa: E402
from nnprobe.models.adapter import selected_output  # noqa: E402

PROBES = ("margin", "codes", "gradnet")
FLAGS = {
    "margin": ["--retrain-epochs", "0", "--null-starts", "0"],
    "codes": ["--no-nulls"],
    "gradnet": ["--gradnet-epochs", "3"],
}
ACCURACY = {"margin": "nn_test_accuracy", "codes": "model_test_accuracy", "gradnet": "base_test_accuracy"}
SHOWN = {
    "margin": (("cos", "cosine_to_svm"), ("agree", "test_agreement")),
    "codes": (("RR", "redundancy_ratio_train"), ("9-NN", "knn_test_accuracy")),
    "gradnet": (("GradNet", "gradnet_test_accuracy"),),
}


def python_probe(probe: str, model, ds, output):
    from nnprobe.probes import codes, gradnet, margin

    if probe == "margin":
        return margin.measure(model, ds, margin.MarginConfig(retrain_epochs=0, null_starts=0), output=output)
    if probe == "codes":
        return codes.measure(model, ds, codes.CodesConfig(nulls=False), output=output)
    return gradnet.measure(model, ds, gradnet.GradSpaceConfig(gradnet_epochs=3), output=output)


def works(probe: str, summary: dict, acc: float) -> str:
    measured = summary[ACCURACY[probe]]
    same = "=" if abs(measured - acc) < 1e-6 else "!="
    rest = ", ".join(f"{label} {summary[key]:.2f}" for label, key in SHOWN[probe])
    return f"works: acc {measured:.2f} ({same}), {rest}"


def first_words(message: str, n: int = 9) -> str:
    words = message.replace("Error: ", "").split("\n")[0].split()
    return " ".join(words[:n]) + (" ..." if len(words) > n else "")


def cli_probe(probe: str, path: Path, data: str, args: argparse.Namespace, output, work: Path) -> tuple[str, dict]:
    out = work / f"{probe}-run"
    cmd = [
        sys.executable,
        "-m",
        "nnprobe",
        probe,
        "--checkpoint",
        str(path),
        "--data",
        data,
        "--samples-per-class",
        str(args.samples_per_class),
        "--test-samples-per-class",
        str(args.test_samples_per_class),
        "--out",
        str(out),
        "--format",
        "json",
        "--no-progress",
        *FLAGS[probe],
    ]
    if output is not None:
        cmd += ["--output", str(output)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(MODELS), os.environ.get("PYTHONPATH", "")])}
    done = subprocess.run(cmd, capture_output=True, text=True, env=env)
    if done.returncode == 0:
        return "ok", json.loads(done.stdout.strip().splitlines()[-1])
    text = done.stderr + done.stdout
    clean = (
        text.startswith("Error: ")
        and "Traceback" not in text
        and sum(line.startswith("Error:") for line in text.splitlines()) == 1
        and not out.exists()
    )
    return ("refused cleanly" if clean else "REFUSED UNCLEANLY"), {"message": text, "exit": done.returncode}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--samples-per-class", type=int, default=60)
    parser.add_argument("--test-samples-per-class", type=int, default=30)
    parser.add_argument("--epochs", type=int, default=20)
    parser.add_argument("--only", default="", help="shapes whose name holds this text")
    args = parser.parse_args()
    torch.set_num_threads(1)
    rows = []
    start = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for shape, (build, data, head, output) in user_models.SHAPES.items():
            if args.only.lower() not in shape.lower():
                continue
            ds = load_dataset(
                data, samples_per_class=args.samples_per_class, test_samples_per_class=args.test_samples_per_class
            )
            torch.manual_seed(0)
            model = build(ds.num_classes)
            acc = user_models.train_plainly(model, ds, output, epochs=args.epochs)
            with selected_output(model, output):
                found = dataset_head(model, ds).head_name
            work = Path(tmp) / str(len(rows))
            work.mkdir()
            path = work / "model.pt"
            torch.save(model, path)
            row = {
                "shape": shape,
                "data": data,
                "head": f"{found}" + ("" if found == head else f" (not {head}!)"),
                "acc": acc,
            }
            for probe in PROBES:
                try:
                    row[("python", probe)] = works(probe, python_probe(probe, model, ds, output).summary(), acc)
                except NNProbeError as exc:
                    row[("python", probe)] = f"refused: {first_words(str(exc))}"
                status, payload = cli_probe(probe, path, data, args, output, work)
                row[("cli", probe)] = (
                    works(probe, payload, acc)
                    if status == "ok"
                    else f"{status} (exit {payload['exit']}): {first_words(payload['message'])}"
                )
            rows.append(row)
            print(f"[{time.perf_counter() - start:.0f} s] {shape}", file=sys.stderr, flush=True)
    print(
        f"digits, {args.samples_per_class} training / {args.test_samples_per_class} test examples per class; each "
        f"model trained outside nnprobe ({args.epochs} epochs, Adam); acc = the network's test accuracy as the probe "
        "measured it, (=) when equal to the accuracy computed through the model's own output\n"
    )
    print("| model | data | head | own acc | how | margin | codes | gradnet |")
    print("|---|---|---|---|---|---|---|---|")
    for row in rows:
        for how in ("python", "cli"):
            lead = (
                f"| {row['shape']} | {row['data']} | {row['head']} | {row['acc']:.2f} "
                if how == "python"
                else "| | | | "
            )
            print(lead + f"| {how} | " + " | ".join(row[(how, p)] for p in PROBES) + " |")
    print(f"\n{time.perf_counter() - start:.0f} s in all")


if __name__ == "__main__":
    main()
