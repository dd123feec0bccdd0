"""Per-sample gradient throughput: nnprobe's extractor vs a per-example loop vs plain ``torch.func``.

Headline figures, printed as ``name: ratio`` lines (higher is better for speed-ups):

- ``mlp_all_labels_vs_loop``: gradients/second of ``GradientExtractor`` for all 10 candidate labels of a
  784-512-512-10 MLP at batch 256, divided by a loop doing one backward per (example, label);
- ``..._vs_vmap``: the same against ``vmap(grad)`` once per label (plain ``torch.func``);
- ``..._select1pct_time_ratio``: seconds with 1% of the coordinates kept divided by seconds for all of them
  (cost proportional to the kept fraction would give ~0.01 plus the fixed forward/backward cost);
- the same for a small CNN (32/64 channels, FC 128) on 28x28 inputs.

Each measurement runs in its own subprocess so its peak resident memory (``ru_maxrss``) is its own; peak
memory is printed in MiB. Gradients are streamed in chunks and dropped (as a feature pipeline would write
them to disk), so memory stays bounded. Single-threaded by default (``--threads``), as the 2-core CI box is
shared. Default run: about 2-4 minutes on one core.

    python bench/per_sample_grads.py            # all figures
    python bench/per_sample_grads.py --quick    # smaller sample counts for the slow baselines
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch
from torch import nn


def make_model(name: str) -> tuple[nn.Module, tuple[int, ...]]:
    torch.manual_seed(0)
    if name == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(784, 512), nn.ReLU(), nn.Linear(512, 512), nn.ReLU(),
                             nn.Linear(512, 10)), (784,)
    from nnprobe.models import build_model
    return build_model("cnn", (1, 28, 28), 10, channels=32, width=128), (1, 28, 28)


def measure(model_name: str, method: str, n: int, chunk: int) -> dict:
    """Run one method on ``n`` examples (all 10 labels) and return seconds, gradients and peak RSS."""
    from nnprobe.probes.gradspace import (GradientExtractor, GradientLayout, gradient_stats, per_sample_grads_loop,
                                          random_labels, select_coordinates)

    model, shape = make_model(model_name)
    model.eval()
    x = torch.randn(n, *shape)
    base_rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    if method in ("ours", "ours_select1pct"):
        layout = GradientLayout.from_model(model)
        if method == "ours_select1pct":
            stats = gradient_stats(GradientExtractor(model, chunk_size=16), x[:32], random_labels(32, 10))
            layout = select_coordinates(stats, 1.0)
        ex = GradientExtractor(model, layout=layout, chunk_size=chunk)
        for _ in ex.iter_chunks(x[:chunk], reuse_buffer=True):   # warm-up (allocator, first-touch pages)
            pass
        t0 = time.perf_counter()
        for _ in ex.iter_chunks(x, reuse_buffer=True):
            pass
        seconds = time.perf_counter() - t0
        dim = layout.dim
    elif method == "loop":
        t0 = time.perf_counter()
        g = per_sample_grads_loop(model, x)
        seconds = time.perf_counter() - t0
        dim = g.shape[-1]
    elif method == "vmap":   # plain torch.func, as a user would write it: vmap(grad(loss)) once per label
        from torch.func import functional_call, grad, vmap
        import torch.nn.functional as F
        params = {k: v.detach() for k, v in model.named_parameters()}

        def loss_fn(p, xi, yi):
            return F.cross_entropy(functional_call(model, p, (xi[None],)), yi[None])

        per_example = vmap(grad(loss_fn), in_dims=(None, 0, 0), chunk_size=chunk)
        per_example(params, x[:2], torch.zeros(2, dtype=torch.long))
        t0 = time.perf_counter()
        for i in range(0, n, chunk):
            for k in range(10):
                g = per_example(params, x[i:i + chunk], torch.full((min(chunk, n - i),), k))
        seconds = time.perf_counter() - t0
        dim = sum(v.numel() for v in params.values())
    else:
        raise SystemExit(f"unknown method {method}")
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return {"model": model_name, "method": method, "examples": n, "gradients": n * 10, "seconds": seconds,
            "grads_per_second": n * 10 / seconds, "dim": dim, "peak_rss_mib": peak / 1024,
            "extra_rss_mib": (peak - base_rss) / 1024}


def run_sub(args, model_name, method, n, chunk) -> dict:
    cmd = [sys.executable, __file__, "--one", model_name, method, str(n), str(chunk), "--threads", str(args.threads)]
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return json.loads(out.strip().splitlines()[-1])


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--batch", type=int, default=256)
    p.add_argument("--one", nargs=4, metavar=("MODEL", "METHOD", "N", "CHUNK"), help=argparse.SUPPRESS)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    if args.one:
        m, method, n, chunk = args.one
        print(json.dumps(measure(m, method, int(n), int(chunk))))
        return
    slow_n = 8 if args.quick else 32
    for model_name in ("mlp", "cnn"):
        res = {
            "ours": run_sub(args, model_name, "ours", args.batch, 16),
            "ours_select1pct": run_sub(args, model_name, "ours_select1pct", args.batch, 64),
            "loop": run_sub(args, model_name, "loop", slow_n, 1),
            "vmap": run_sub(args, model_name, "vmap", 2 * slow_n, 16),
        }
        for name, r in res.items():
            print(f"# {model_name} {name}: {r['grads_per_second']:.0f} grads/s over {r['gradients']} gradients "
                  f"of dim {r['dim']} in {r['seconds']:.2f} s, peak RSS {r['peak_rss_mib']:.0f} MiB "
                  f"(+{r['extra_rss_mib']:.0f} MiB)")
        ours = res["ours"]["grads_per_second"]
        print(f"{model_name}_all_labels_vs_loop: {ours / res['loop']['grads_per_second']:.2f}")
        print(f"{model_name}_all_labels_vs_vmap: {ours / res['vmap']['grads_per_second']:.2f}")
        print(f"{model_name}_select1pct_time_ratio: {res['ours']['grads_per_second'] / res['ours_select1pct']['grads_per_second']:.3f}")
        print(f"{model_name}_select1pct_kept_fraction: {res['ours_select1pct']['dim'] / res['ours']['dim']:.4f}")
        print(f"{model_name}_peak_rss_mib_ours_vs_vmap: {res['ours']['peak_rss_mib'] / res['vmap']['peak_rss_mib']:.2f}")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
