"""Benchmark: every probe on a CIFAR-style ResNet-18, timed against the model's own forward pass.

Model: ``build_model("resnet18", (3, 32, 32), 10)`` (11.2M parameters, 557,056 ReLU units per input),
untrained, seeded (``torch.manual_seed(0)``), in eval mode. Inputs: the first ``--n`` Fashion-MNIST training
images (``nnprobe.data.load_dataset("fashion-mnist")``, standardised), padded to 32x32 and repeated over 3
channels, with their labels; seeded Gaussian images and random labels when Fashion-MNIST is not found (the
output says which). One thread. Each phase runs in its own subprocess on the same saved inputs, so its peak
resident memory (``ru_maxrss``: interpreter, torch, model and inputs included) is its own:

- ``forward``: the baseline, a plain ``model(x)`` without gradients over all ``--n`` inputs in batches of 512;
- ``margin``: ``extract_features`` (512-D penultimate features, batches of 512), then ``fit_svm`` one-vs-rest
  and Crammer-Singer on them (hard margin unless ``--C``; an untrained network's features need not be
  separable, so the fits' training error and separability are printed); goal <= 1.5 x forward;
- ``codes``: ``nnprobe.probes.codes.measure`` with the default layer selection and K-NN as the only classifier
  (record + redundancy ratio + per-layer redundancy + Hamming 9-NN, test and leave-one-out), the first 80% of
  the inputs as training codes and the rest as test codes; goal <= 2 x forward;
- ``grads`` vs ``grads_plain``: per-sample gradients of all 10 labels for the last residual block + head
  (``GradientExtractor(model, ["stages.7", "head"])``) on ``--grad-n`` inputs (512), streamed chunk by chunk
  and dropped, against a plain batched forward + backward per label (batches of 64, batch-summed gradients of
  the same parameters); goal <= 2 x.

Times are process CPU seconds (the machine is shared; wall seconds are printed beside them). Ratios are
probe time / baseline time, so lower is better and the goal is an upper bound. Peak memory goal: <= 4 GB.

    OMP_NUM_THREADS=1 python bench/real_models.py               # 10,000 inputs (forward alone ~300 s here)
    OMP_NUM_THREADS=1 python bench/real_models.py --n 2000      # smaller
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402

PHASES = ("forward", "margin", "codes", "grads_plain", "grads")
INTERNAL = (
    "prepare",
)  # runs in a subprocess too: Linux keeps a process's peak RSS across exec, so the parent stays small
GRAD_PARAMS = ["stages.7", "head"]
BATCH = 512
GOALS = {"margin": 1.5, "codes": 2.0, "grads": 2.0}


def prepare_inputs(n: int, out_dir: str) -> str:
    """Save ``n`` 3x32x32 inputs and labels as .npy files; return a line saying where they came from."""
    import torch

    from nnprobe.errors import NNProbeError

    try:
        from nnprobe.data import load_dataset

        ds = load_dataset("fashion-mnist")
        if ds.x_train.shape[0] < n:
            raise NNProbeError(f"only {ds.x_train.shape[0]} images", "use a smaller --n")
        x = torch.nn.functional.pad(ds.x_train[:n], (2, 2, 2, 2)).repeat(1, 3, 1, 1)
        y = ds.y_train[:n]
        source = (
            f"fashion-mnist: the first {n} training images (standardised), zero-padded to 32x32 and repeated "
            "over 3 channels, with their labels"
        )
    except (NNProbeError, OSError) as exc:
        g = torch.Generator().manual_seed(0)
        x, y = torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)
        source = f"seeded Gaussian images and random labels (Fashion-MNIST not available: {exc})"
    np.save(os.path.join(out_dir, "x.npy"), x.numpy().astype(np.float32))
    np.save(os.path.join(out_dir, "y.npy"), y.numpy().astype(np.int64))
    return source


def make_model():
    import torch

    from nnprobe.models import build_model

    torch.manual_seed(0)
    return build_model("resnet18", (3, 32, 32), 10).eval()


def run_phase(phase: str, data_dir: str, grad_n: int, C, n: int = 0) -> dict:
    """One phase in this process: returns seconds (CPU and wall), peak RSS and the phase's own figures."""
    import torch

    torch.set_num_threads(1)
    model = make_model()
    if phase == "prepare":
        return {"source": prepare_inputs(n, data_dir), "parameters": sum(p.numel() for p in model.parameters())}
    x = torch.from_numpy(np.load(os.path.join(data_dir, "x.npy")))
    y = torch.from_numpy(np.load(os.path.join(data_dir, "y.npy")))
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    extra: dict = {}
    cpu0, wall0 = time.process_time(), time.perf_counter()
    if phase == "forward":
        with torch.no_grad():
            for i in range(0, x.shape[0], BATCH):
                model(x[i : i + BATCH])
    elif phase == "margin":
        from nnprobe.probes.margin import extract_features, fit_svm

        features = extract_features(model, x, batch_size=BATCH)
        extra["features_cpu_seconds"] = time.process_time() - cpu0
        for mode in ("ovr", "crammer_singer"):
            t = time.process_time()
            svm = fit_svm(features, y, 10, C=C, multi_class=mode)
            extra[f"{mode}_cpu_seconds"] = time.process_time() - t
            extra[f"{mode}_train_error"] = svm.train_error
            extra[f"{mode}_separable"] = bool(svm.separable)
        extra["feature_dim"] = int(features.shape[1])
    elif phase == "codes":
        from nnprobe.data.base import Dataset
        from nnprobe.probes.codes import CodesConfig, measure

        cut = int(0.8 * x.shape[0])
        ds = Dataset("bench", x[:cut], y[:cut], x[cut:], y[cut:], list(range(10)), [str(i) for i in range(10)])
        res = measure(model, ds, CodesConfig(methods=["knn"]))
        extra.update(
            record_seconds=res.record_seconds,
            n_units=res.n_units,
            units_total=res.units_total,
            sites=res.selection["names"],
            redundancy_ratio_train=res.determinism.redundancy_ratio_train,
            redundancy_ratio_test=res.determinism.redundancy_ratio_test,
            knn_test_accuracy=res.categorisation.knn_test_accuracy,
            knn_train_accuracy=res.categorisation.knn_train_accuracy,
            knn_seconds=res.categorisation.seconds,
            memory=res.memory,
            n_train=cut,
        )
    elif phase == "grads":
        from nnprobe.probes.gradnet import GradientExtractor

        ex = GradientExtractor(model, GRAD_PARAMS)
        xs = x[:grad_n]
        extra.update(chunk_size=ex.chunk_size_for(xs), dim=ex.layout.dim)
        for _ in ex.iter_chunks(xs, reuse_buffer=True):
            pass
    elif phase == "grads_plain":
        from nnprobe.probes.gradnet import GradientLayout

        named = dict(model.named_parameters())
        chosen = [named[k] for k in GradientLayout.from_model(model, GRAD_PARAMS).names]
        xs = x[:grad_n]
        for i in range(0, xs.shape[0], 64):
            xb = xs[i : i + 64]
            for k in range(10):
                loss = torch.nn.functional.cross_entropy(model(xb), torch.full((xb.shape[0],), k), reduction="sum")
                torch.autograd.grad(loss, chosen)
    else:
        raise SystemExit(f"unknown phase {phase}")
    return {
        "cpu_seconds": time.process_time() - cpu0,
        "wall_seconds": time.perf_counter() - wall0,
        "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "rss_before_mib": rss_before / 1024,
        **extra,
    }


def sub(phase: str, args, data_dir: str) -> dict:
    cmd = [
        sys.executable,
        os.path.abspath(__file__),
        "--phase",
        phase,
        "--data-dir",
        data_dir,
        "--n",
        str(args.n),
        "--grad-n",
        str(args.grad_n),
    ] + ([] if args.C is None else ["--C", str(args.C)])
    out = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise SystemExit(f"phase {phase} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--n", type=int, default=10000, help="inputs (forward, margin, codes)")
    parser.add_argument("--grad-n", type=int, default=512, help="inputs of the per-sample gradient phases")
    parser.add_argument("--C", type=float, default=None, help="soft-margin C of the SVM fits (default: hard margin)")
    parser.add_argument("--only", nargs="+", choices=PHASES, help="run these phases (forward always runs)")
    parser.add_argument("--phase", choices=PHASES + INTERNAL, help=argparse.SUPPRESS)
    parser.add_argument("--data-dir", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        print(json.dumps(run_phase(args.phase, args.data_dir, args.grad_n, args.C, max(args.n, args.grad_n))))
        return
    phases = [p for p in PHASES if args.only is None or p in args.only or p == "forward"]
    if "grads" in phases and "grads_plain" not in phases:
        phases.insert(phases.index("grads"), "grads_plain")
    with tempfile.TemporaryDirectory() as tmp:
        prep = sub("prepare", args, tmp)
        print(f"inputs: {prep['source']}")
        print(
            f"model: resnet18 (3x32x32, 10 classes, {prep['parameters']:,} parameters), untrained, seed 0, "
            "eval mode; one thread; times in process CPU seconds"
        )
        print(f"n: {args.n} (forward, margin, codes); grad_n: {args.grad_n} (per-sample gradients)")
        res = {}
        for phase in phases:
            res[phase] = r = sub(phase, args, tmp)
            figures = {
                k: v for k, v in r.items() if k not in ("cpu_seconds", "wall_seconds", "peak_rss_mib", "rss_before_mib")
            }
            print(f"{phase}_cpu_seconds: {r['cpu_seconds']:.1f} (wall {r['wall_seconds']:.1f})")
            print(
                f"{phase}_peak_rss_mib: {r['peak_rss_mib']:.0f} (after loading model and inputs: "
                f"{r['rss_before_mib']:.0f})"
            )
            if figures:
                print(f"{phase}_figures: {json.dumps(figures)}")
    base = res["forward"]["cpu_seconds"]
    for phase in ("margin", "codes"):
        if phase in res:
            ratio = res[phase]["cpu_seconds"] / base
            print(
                f"{phase}_vs_forward: {ratio:.2f} "
                f"(goal <= {GOALS[phase]}: {'met' if ratio <= GOALS[phase] else 'NOT met'})"
            )
    if "grads" in res:
        ratio = res["grads"]["cpu_seconds"] / res["grads_plain"]["cpu_seconds"]
        print(
            f"grads_vs_plain_forward_backward_per_label: {ratio:.2f} "
            f"(goal <= 2.0: {'met' if ratio <= 2 else 'NOT met'})"
        )
    peak = max(r["peak_rss_mib"] for r in res.values()) / 1024
    print(
        f"peak_rss_gib_max_over_phases: {peak:.2f} (goal <= 4: {'met' if peak <= 4 else 'NOT met'}; "
        "ru_maxrss of each phase's own subprocess)"
    )


if __name__ == "__main__":
    main()
