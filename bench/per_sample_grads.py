"""Per-sample gradient throughput: nnprobe's extractor vs a loop, plain ``torch.func``, BackPACK and Opacus.

Headline figures, printed as ``name: median M (range lo-hi)`` over ``--rounds`` rounds (default 5); each
ratio is taken within one round, ours and the baseline timed back to back (higher is better for speed-ups):

- ``mlp_all_labels_vs_loop``: gradients/second of ``GradientExtractor`` (automatic chunk size) for all 10
  candidate labels of a 784-512-512-10 MLP at batch 256, divided by a loop doing one backward per (example,
  label);
- ``..._vs_vmap``: against plain ``torch.func``, ``vmap(grad(loss))`` once per label, in its fastest form for
  this model (swept first; the best is named on the line): the whole batch with ``chunk_size`` None/16/64, or
  the batch in slices of 8/16/32 examples (one ``vmap`` each);
- ``..._vs_backpack`` / ``..._vs_opacus``: against BackPACK (``BatchGrad``) and Opacus (``GradSampleModule``),
  each one forward + backward per label at its fastest chunk of 4/8/16/32/64 examples (swept first; larger
  chunks were slower, consistent with page faults on fresh results above glibc's 32 MB mmap threshold);
  ``..._vs_best_library``: the faster of the two in each round; ``..._vs_best_peer``: the fastest of vmap,
  BackPACK and Opacus in each round (goal >= 1.5). A library that is not installed is skipped with a line saying
  so; install both with ``pip install -e ".[bench]" -c constraints/cpu.txt`` (a bare ``pip install
  backpack-for-pytorch`` pulls the newest torchvision, which upgrades torch; neither library needs torchvision
  at run time, so a PyPI torchvision that does not match a ``+cpu`` torch can be uninstalled). Every baseline's
  gradients are checked against nnprobe's (``max |diff|`` on its line);
- ``..._auto_chunk_vs_chunk64``: the automatic chunk against 64 examples per chunk;
- ``..._select1pct_time_ratio``: seconds with 1% of the coordinates kept divided by seconds for all of them;
- the same for a small CNN (32/64 channels, FC 128) on 28x28 inputs;
- ``resnet18_last_block_N<n>_time_vs_plain``: per-sample gradients of all 10 labels for the last residual
  block + head (4.7M parameters) of the zoo's CIFAR ResNet-18, divided by the time of a plain batched
  forward + backward per label (batches of 64) that yields only the batch-summed gradients;
- ``memmap_*`` (one run: memory, not time): streaming the MLP's gradients (batch 256: 3.3 GB) to a float16
  ``.npy`` file: the extra peak resident memory against the file's size and against one chunk (the memory
  bound of ``GradientExtractor.to_memmap``).

Each measurement runs in its own subprocess, so its peak resident memory (``ru_maxrss``) is its own, and
reports the fastest of ``--repeats`` (default 1) timed passes after a warm-up (the per-example loop: one pass,
no warm-up). Gradients are streamed in chunks and dropped (as a feature pipeline would write them to disk):
nnprobe reuses one chunk buffer; the baselines return fresh tensors, as their plain use does.
Single-threaded by default (``--threads``); with one thread, seconds are the process's CPU time (user +
system: page faults count), so other work on a shared CPU changes them little; with more, wall-clock time.
The default run takes about 40 minutes of one core on an idle machine (the sweeps and Opacus dominate);
``--quick`` uses fewer examples; ``--models``, ``--skip-small``, ``--skip-resnet`` and ``--resnet-sizes``
select parts (separate parts can run side by side on separate cores).

    OMP_NUM_THREADS=1 python bench/per_sample_grads.py            # all figures
    OMP_NUM_THREADS=1 python bench/per_sample_grads.py --quick    # fewer examples, ResNet at 64 inputs only
    OMP_NUM_THREADS=1 python bench/per_sample_grads.py --chunk-sweep   # the measurements behind the chunk rule
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time

import torch
import torch.nn.functional as F
from torch import nn

# vmap's forms swept: 0 the whole batch in one vmap, c > 0 the whole batch with chunk_size=c, c < 0 the batch in
# slices of -c examples, one vmap each (smaller results: below glibc's 32 MB mmap threshold no page faults)
VMAP_CHUNKS = (0, 16, 64, -8, -16, -32)
LIBRARY_CHUNKS = (4, 8, 16, 32, 64)  # examples per forward + backward for BackPACK / Opacus (0: the whole batch)
REPEATS = 1  # timed passes per measurement after a warm-up (the fastest counts); the rounds give the spread
# one thread: the process's CPU seconds (user + system, so page faults count), which other processes on a shared
# CPU barely change; several threads: wall-clock seconds. main() sets it.
CLOCK = time.perf_counter
ROUNDS = 5  # each figure is measured once per round; headlines print the median and range over rounds
RESNET_PARAMS = ["stages.7", "head"]  # the last BasicBlock (two 512x512 3x3 convs, two BatchNorms) + head


def make_model(name: str) -> tuple[nn.Module, tuple[int, ...]]:
    torch.manual_seed(0)
    if name == "mlp" or name.startswith("mlp_"):
        widths = [512, 512] if name == "mlp" else [int(w) for w in name[4:].split("x")]
        layers, d = [nn.Flatten()], 784
        for w in widths:
            layers += [nn.Linear(d, w), nn.ReLU()]
            d = w
        return nn.Sequential(*layers, nn.Linear(d, 10)), (784,)
    from nnprobe.models import build_model

    if name == "resnet18":
        return build_model("resnet18", (3, 32, 32), 10), (3, 32, 32)
    return build_model("cnn", (1, 28, 28), 10, channels=32, width=128), (1, 28, 28)


def _library_grads(method: str, model: nn.Module):
    """A function ``(x, k) -> list of per-sample gradient tensors`` for label ``k``, or a reason it can't run."""
    params = [p for p in model.parameters()]
    if method == "backpack":
        try:
            from backpack import backpack, extend
            from backpack.extensions import BatchGrad
        except ImportError:
            return None, "BackPACK is not installed (pip install -e .[bench] -c constraints/cpu.txt)"
        net, loss_fn = extend(model), extend(nn.CrossEntropyLoss(reduction="sum"))

        def grads(x, k):
            loss = loss_fn(net(x), torch.full((x.shape[0],), k))
            with backpack(BatchGrad()):
                loss.backward()
            out = [p.grad_batch for p in params]
            for p in params:
                p.grad = None
            return out

        return grads, None
    try:
        from opacus import GradSampleModule
    except ImportError:
        return None, "Opacus is not installed (pip install -e .[bench] -c constraints/cpu.txt)"
    net = GradSampleModule(model, batch_first=True, loss_reduction="sum")
    net.train()  # Opacus records activations only in training mode (these models have no BatchNorm/dropout)

    def grads(x, k):
        for p in params:
            p.grad_sample = None
            p.grad = None
        F.cross_entropy(net(x), torch.full((x.shape[0],), k), reduction="sum").backward()
        return [p.grad_sample for p in params]

    return grads, None


def _ours_label3(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """nnprobe's per-sample gradients for label 3 of the first four examples: what each baseline is checked on."""
    from nnprobe.probes.gradnet import GradientExtractor

    return GradientExtractor(model, chunk_size=4)(x[:4])[:, 3]


def _diff_vs_ours(ours: torch.Tensor, x: torch.Tensor, grads) -> float:
    """Max |difference| between a baseline's per-sample gradients (label 3, four examples) and nnprobe's."""
    theirs = torch.cat([g.reshape(4, -1) for g in grads(x[:4], 3)], 1)
    return (theirs - ours).abs().max().item()


def drain(chunks) -> None:
    collections.deque(chunks, maxlen=0)  # consume without keeping the last chunk alive


def fastest(run, repeats: int) -> float:
    """Seconds of the fastest of ``repeats`` calls of ``run``."""
    best = float("inf")
    for _ in range(repeats):
        t0 = CLOCK()
        run()
        best = min(best, CLOCK() - t0)
    return best


def measure(model_name: str, method: str, n: int, chunk: int, repeats: int = REPEATS) -> dict:
    """Run one method on ``n`` examples (all 10 labels); seconds, gradients, peak RSS. ``chunk=0``: automatic."""
    from nnprobe.probes.gradnet import (
        GradientExtractor,
        GradientLayout,
        gradient_stats,
        per_sample_grads_loop,
        random_labels,
        select_coordinates,
    )

    model, shape = make_model(model_name)
    model.eval()
    x = torch.randn(n, *shape)
    params = RESNET_PARAMS if model_name == "resnet18" else None
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    check = None
    if method in ("ours", "ours_select1pct", "ours_memmap"):
        layout = GradientLayout.from_model(model, params)
        if method == "ours_select1pct":
            stats = gradient_stats(GradientExtractor(model, params, chunk_size=16), x[:32], random_labels(32, 10))
            layout = select_coordinates(stats, 1.0)
        ex = GradientExtractor(model, layout=layout, chunk_size=chunk or None)
        chunk = ex.chunk_size_for(x)
        drain(ex.iter_chunks(x[:chunk], reuse_buffer=True))  # warm-up (allocator, first-touch pages)
        if method == "ours_memmap":
            with tempfile.TemporaryDirectory() as tmp:
                path = os.path.join(tmp, "grads.npy")
                t0 = time.perf_counter()  # wall-clock: the writes to disk count
                ex.to_memmap(x, "all", path, dtype="float16")
                seconds = time.perf_counter() - t0
                file_mib = os.path.getsize(path) / 2**20
        else:
            seconds = fastest(lambda: drain(ex.iter_chunks(x, reuse_buffer=True)), repeats)
        dim = layout.dim
    elif method == "plain":  # an ordinary batched forward + backward per label: batch-summed gradients only
        named = dict(model.named_parameters())
        chosen = [named[k] for k in GradientLayout.from_model(model, params).names]

        def plain():
            for i in range(0, n, chunk):
                for k in range(10):
                    loss = F.cross_entropy(
                        model(x[i : i + chunk]), torch.full((min(chunk, n - i),), k), reduction="sum"
                    )
                    torch.autograd.grad(loss, chosen)

        torch.autograd.grad(F.cross_entropy(model(x[:chunk]), torch.zeros(min(chunk, n), dtype=torch.long)), chosen)
        seconds = fastest(plain, repeats)
        dim = sum(p.numel() for p in chosen)
    elif method == "loop":
        t0 = CLOCK()
        g = per_sample_grads_loop(model, x)
        seconds = CLOCK() - t0
        dim = g.shape[-1]
    elif method == "vmap":  # plain torch.func: vmap(grad(loss)) once per label (forms: VMAP_CHUNKS)
        from torch.func import functional_call, grad, vmap

        p = {k: v.detach() for k, v in model.named_parameters()}

        def loss_fn(p, xi, yi):
            return F.cross_entropy(functional_call(model, p, (xi[None],)), yi[None])

        per_example = vmap(grad(loss_fn), in_dims=(None, 0, 0), chunk_size=max(chunk, 0) or None)
        step = -chunk if chunk < 0 else n
        check = _diff_vs_ours(
            _ours_label3(model, x), x, lambda xs, k: list(per_example(p, xs, torch.full((4,), k)).values())
        )
        per_example(p, x[:step], torch.zeros(min(step, n), dtype=torch.long))  # warm-up: one call

        def vmapped():
            for i in range(0, n, step):
                for k in range(10):
                    per_example(p, x[i : i + step], torch.full((min(step, n - i),), k))

        seconds = fastest(vmapped, repeats)
        dim = sum(v.numel() for v in p.values())
    elif method in ("backpack", "opacus"):
        ours = _ours_label3(model, x)  # before the library wraps the model
        grads, reason = _library_grads(method, model)
        if grads is None:
            return {"skipped": reason}
        check = _diff_vs_ours(ours, x, grads)
        chunk = chunk or n  # 0: the whole batch at once
        grads(x[:chunk], 0)  # warm-up

        def library():
            for i in range(0, n, chunk):
                for k in range(10):
                    grads(x[i : i + chunk], k)

        seconds = fastest(library, repeats)
        dim = sum(p.numel() for p in model.parameters())
    else:
        raise SystemExit(f"unknown method {method}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    out = {
        "model": model_name,
        "method": method,
        "examples": n,
        "gradients": n * 10,
        "seconds": seconds,
        "grads_per_second": n * 10 / seconds,
        "dim": dim,
        "chunk": chunk,
        "peak_rss_mib": peak / 1024,
        "extra_rss_mib": (peak - base_rss) / 1024,
    }
    if check is not None:
        out["max_abs_diff_vs_nnprobe"] = check
    if method == "ours_memmap":
        out["file_mib"] = file_mib
    return out


def run_sub(args, model_name, method, n, chunk, repeats=None) -> dict:
    cmd = [
        sys.executable,
        __file__,
        "--one",
        model_name,
        method,
        str(n),
        str(chunk),
        "--threads",
        str(args.threads),
        "--repeats",
        str(args.repeats if repeats is None else repeats),
    ]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def show(tag: str, r: dict) -> None:
    extra = f", chunk {r['chunk']}" if "chunk" in r else ""
    if "max_abs_diff_vs_nnprobe" in r:
        extra += f", max |diff| vs nnprobe {r['max_abs_diff_vs_nnprobe']:.1e}"
    print(
        f"# {tag}: {r['grads_per_second']:.0f} grads/s over {r['gradients']} gradients of dim {r['dim']} in "
        f"{r['seconds']:.2f} s{extra}, peak RSS {r['peak_rss_mib']:.0f} MiB (+{r['extra_rss_mib']:.0f} MiB)"
    )


def sweep(args, model_name: str, method: str, chunks: tuple[int, ...]) -> int | None:
    """The chunk at which a baseline is fastest on this model (each chunk timed in its own process), or None."""
    runs = []
    for chunk in chunks:
        r = run_sub(args, model_name, method, args.batch, chunk)
        if "skipped" in r:
            print(f"# {model_name} {method}: skipped, {r['skipped']}")
            return None
        show(f"{model_name} {method} sweep", r)
        runs.append(r)
    best = max(runs, key=lambda r: r["grads_per_second"])["chunk"]
    print(f"# {model_name} {method}: best {setting(method, best)}")
    return best


def setting(method: str, chunk: int) -> str:
    """A baseline's chunk setting in words."""
    if method != "vmap":
        return f"chunk {chunk}"
    if chunk < 0:
        return f"slices of {-chunk} examples, chunk_size None"
    return f"whole batch, chunk_size {chunk or None}"


def summary(name: str, values: list[float], note: str = "", digits: int = 2) -> None:
    """One headline line: the median over the rounds and the range, e.g. ``x: median 3.90 (range 3.50-4.40)``."""
    v = sorted(values)
    print(f"{name}: median {statistics.median(v):.{digits}f} (range {v[0]:.{digits}f}-{v[-1]:.{digits}f}){note}")


def small_models(args) -> None:
    slow_n = 8 if args.quick else 32
    for model_name in args.models.split(","):
        best = {"vmap": sweep(args, model_name, "vmap", VMAP_CHUNKS)}
        for m in ("backpack", "opacus"):
            best[m] = sweep(args, model_name, m, LIBRARY_CHUNKS)
        peers = [m for m, c in best.items() if c is not None]
        ratios: dict[str, list[float]] = collections.defaultdict(list)
        for i in range(args.rounds):  # every figure once per round; each ratio within one round
            res = {
                "ours": run_sub(args, model_name, "ours", args.batch, 0),
                "ours_chunk64": run_sub(args, model_name, "ours", args.batch, 64),
                "ours_select1pct": run_sub(args, model_name, "ours_select1pct", args.batch, 64),
                "loop": run_sub(args, model_name, "loop", slow_n, 1, repeats=1),
            }
            res.update({m: run_sub(args, model_name, m, args.batch, best[m]) for m in peers})
            for name, r in res.items():
                show(f"{model_name} round {i + 1} {name}", r)
            ours = res["ours"]["grads_per_second"]
            for name in ("loop", *peers):
                ratios[f"{model_name}_all_labels_vs_{name}"].append(ours / res[name]["grads_per_second"])
            libs = [m for m in peers if m != "vmap"]
            if libs:
                top = max(res[m]["grads_per_second"] for m in libs)
                ratios[f"{model_name}_all_labels_vs_best_library"].append(ours / top)
            if peers:
                top = max(res[m]["grads_per_second"] for m in peers)
                ratios[f"{model_name}_all_labels_vs_best_peer"].append(ours / top)
            ratios[f"{model_name}_auto_chunk_vs_chunk64"].append(ours / res["ours_chunk64"]["grads_per_second"])
            ratios[f"{model_name}_select1pct_time_ratio"].append(ours / res["ours_select1pct"]["grads_per_second"])
            if "vmap" in res:
                rss = res["ours"]["peak_rss_mib"] / res["vmap"]["peak_rss_mib"]
                ratios[f"{model_name}_peak_rss_mib_ours_vs_vmap"].append(rss)
            kept = res["ours_select1pct"]["dim"] / res["ours"]["dim"]
            sys.stdout.flush()
        notes = {f"{model_name}_all_labels_vs_{m}": f" (its best: {setting(m, best[m])})" for m in peers}
        notes[f"{model_name}_all_labels_vs_best_peer"] = (
            " (fastest of " + ", ".join(peers) + " each round; goal >= 1.5)"
        )
        for name, values in ratios.items():
            summary(name, values, notes.get(name, ""), 3 if "select1pct" in name else 2)
        print(f"{model_name}_select1pct_kept_fraction: {kept:.4f}")
        sys.stdout.flush()


def resnet(args) -> None:
    for n in [64] if args.quick else [int(s) for s in args.resnet_sizes.split(",")]:
        ratios = []
        for i in range(args.rounds):
            ours = run_sub(args, "resnet18", "ours", n, 0)
            plain = run_sub(args, "resnet18", "plain", n, 64)
            show(f"resnet18 last block + head, N={n}, round {i + 1}, per-sample (ours)", ours)
            show(f"resnet18 last block + head, N={n}, round {i + 1}, plain forward+backward per label", plain)
            ratios.append(plain["grads_per_second"] / ours["grads_per_second"])
            sys.stdout.flush()
        summary(f"resnet18_last_block_N{n}_time_vs_plain", ratios)
        sys.stdout.flush()


def memmap(args) -> None:
    r = run_sub(args, "mlp", "ours_memmap", args.batch, 0)
    show(f"mlp to_memmap float16, {args.batch} examples", r)
    chunk_mib = r["chunk"] * 10 * r["dim"] * 4 / 2**20
    print(
        f"# memmap: wrote {r['file_mib']:.0f} MiB at {r['file_mib'] / r['seconds']:.0f} MiB/s; one chunk of float32 "
        f"gradients is {chunk_mib:.0f} MiB (+ its float16 copy {chunk_mib / 2:.0f} MiB)"
    )
    print(f"memmap_extra_rss_vs_file_size: {r['extra_rss_mib'] / r['file_mib']:.2f}")
    print(f"memmap_extra_rss_vs_one_chunk: {r['extra_rss_mib'] / chunk_mib:.2f}")


def chunk_sweep(args) -> None:
    for name in ("mlp_32", "mlp_128x128", "mlp"):
        for chunk in (1, 2, 4, 8, 16, 32, 64, 128):
            r = run_sub(args, name, "ours", args.batch, chunk)
            print(f"# sweep {name} dim {r['dim']}: chunk {chunk:4d}  {r['grads_per_second']:8.0f} grads/s")
        print(f"# sweep {name}: automatic chunk {run_sub(args, name, 'ours', args.batch, 0)['chunk']}")
        sys.stdout.flush()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--repeats", type=int, default=REPEATS, help="timed passes per measurement (fastest counts)")
    p.add_argument("--rounds", type=int, default=ROUNDS, help="rounds of every figure (median and range printed)")
    p.add_argument("--skip-resnet", action="store_true")
    p.add_argument("--models", default="mlp,cnn", help="the small models, comma-separated (mlp, cnn)")
    p.add_argument("--skip-memmap", action="store_true")
    p.add_argument("--skip-small", action="store_true", help="skip the MLP and CNN figures (ResNet and memmap only)")
    p.add_argument("--resnet-sizes", default="64,512", help="ResNet batch sizes, comma-separated (--quick: 64)")
    p.add_argument("--chunk-sweep", action="store_true", help="only the chunk-size sweep behind the automatic rule")
    p.add_argument("--one", nargs=4, metavar=("MODEL", "METHOD", "N", "CHUNK"), help=argparse.SUPPRESS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    global CLOCK
    CLOCK = time.process_time if args.threads == 1 else time.perf_counter
    if args.one:
        m, method, n, chunk = args.one
        print(json.dumps(measure(m, method, int(n), int(chunk), args.repeats)))
        return
    if args.chunk_sweep:
        chunk_sweep(args)
        return
    if not args.skip_small:
        small_models(args)
    if not args.skip_memmap:
        memmap(args)
    if not args.skip_resnet:
        resnet(args)


if __name__ == "__main__":
    main()
