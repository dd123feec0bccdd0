"""Benchmark: nnprobe's max-margin SVM fit against scikit-learn.

Binary: against ``SVC(kernel="linear")``, same problem (unregularised intercept, the same C), same
solution (cosine of the weight vectors printed, must be >= 0.999). Features imitate trained penultimate
layers: non-negative (ReLU), two class clusters with within-class spread, separable with a small gap.

Multi-class (10 classes, 512-D, 10k and 50k points): nnprobe's exact hard-margin one-vs-rest and
Crammer-Singer SVMs (intercepts free) against ``LinearSVC(multi_class="ovr" | "crammer_singer")``, which
solves an easier problem (regularised intercept), and against today's nnprobe solver (commit fb5fdb1) where
it finishes: run in a subprocess with a time limit, and skipped for Crammer-Singer, which did not finish at
5k x 512 in 10 min. Features: ReLU of a random projection of Gaussian clusters, separable with a gap (see
:func:`clusters_like`). Times are process CPU seconds (the machine is shared); cosines are to nnprobe's
exact solution.

Prints one ``name: ratio`` line per case (ratio = baseline time / nnprobe time; > 1 means nnprobe is faster).

    OMP_NUM_THREADS=1 python bench/svm_fit.py            # binary n = 12k..60k; multi-class 10k and 50k
    OMP_NUM_THREADS=1 python bench/svm_fit.py --quick    # binary n = 12k; multi-class 10k
    OMP_NUM_THREADS=1 python bench/svm_fit.py --only nonseparable   # 10k x 512 x 10 with 20% of labels redrawn
    OMP_NUM_THREADS=1 python bench/svm_fit.py --only soft --quick   # soft margins, 20% noise, 10k, C = 1 and 100
    OMP_NUM_THREADS=1 python bench/svm_fit.py --only hard-sets      # harder separable sets (bench/svm_hard_sets.py)

Soft margins (``--only soft``; ``--sizes``, ``--Cs``, ``--modes``, ``--cap``): the exact soft margin with the
intercept penalised (``LinearSVC``'s problem) on the non-separable features, against ``LinearSVC(loss="hinge")``
with ``max_iter=10**6`` at its default ``tol`` under a CPU-time cap (reported instead of a ratio when hit), and
against its default squared hinge; both objectives recomputed by nnprobe, and nnprobe's duality gap.

Non-separable (opt-in, ``--only nonseparable``): the same clusters with a fifth of the labels redrawn at
random. The hard margin does not exist: nnprobe must say so quickly (``exact=False``, a warning naming the
fix); with ``C=1`` both modes are solved exactly (or refused with a clear error when the exact solve would
outgrow its memory bound) and timed against ``LinearSVC(C=1)`` of the same mode.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
import warnings
from functools import partial

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import torch  # noqa: E402
from sklearn.exceptions import ConvergenceWarning  # noqa: E402
from sklearn.svm import SVC, LinearSVC  # noqa: E402

from nnprobe.probes.margin import fit_svm  # noqa: E402


def penultimate_like(n: int, d: int, seed: int = 0, spread: float = 0.6, sep: float = 5.0, gap: float = 0.05):
    """ReLU features of two classes: ``relu(mu_y + spread * noise)``, means ``sep`` deviations apart, made
    separable with a gap.

    Points within ``gap`` (in within-class standard deviations) of the class-mean bisector, or on its wrong
    side, are dropped -- as at zero training error -- so a hard margin exists; the support vectors are the
    many points that crowd the gap, as for real features.
    """
    rng = np.random.default_rng(seed)
    mu = np.tile(rng.normal(0.5, 1.0, d), (2, 1))
    v = rng.standard_normal(d)
    mu[1] += sep * spread * v / np.linalg.norm(v)  # class means `sep` within-class deviations apart, for any d
    y = np.arange(2 * n) % 2
    x = np.maximum(mu[y] + spread * rng.standard_normal((2 * n, d)), 0.0)
    u = x[y == 1].mean(0) - x[y == 0].mean(0)
    s = (x - x.mean(0)) @ u / np.linalg.norm(u)
    s -= np.median(s)
    keep = np.where(y == 1, s, -s) > gap * s.std()
    x, y = x[keep][:n], y[keep][:n]
    return x.astype(np.float32), y


def run(n: int, d: int, C: float, repeats: int = 1) -> dict:
    x, y = penultimate_like(n, d, seed=n + d)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    ours = min(_timed(lambda: fit_svm(xt, yt, C=C))[1] for _ in range(repeats))
    svm, _ = _timed(lambda: fit_svm(xt, yt, C=C))
    ref, theirs = _timed(lambda: SVC(kernel="linear", C=C).fit(x.astype(np.float64), y))
    w, w_ref = svm.coef[0], ref.coef_[0]
    cos = float(w @ w_ref / np.linalg.norm(w) / np.linalg.norm(w_ref))
    return {
        "n": len(y),
        "d": d,
        "ours_s": ours,
        "sklearn_s": theirs,
        "ratio": theirs / ours,
        "cosine": cos,
        "margin_ours": 1 / np.linalg.norm(w),
        "margin_sklearn": 1 / np.linalg.norm(w_ref),
        "n_support_ours": svm.n_support[0],
        "n_support_sklearn": int(ref.n_support_.sum()),
        "intercept_ours": float(svm.intercept[0]),
        "intercept_sklearn": float(ref.intercept_[0]),
    }


def _timed(fn):
    start = time.process_time()
    out = fn()
    return out, time.process_time() - start


LEGACY_COMMIT = "fb5fdb1"  # today's solver before the working-set rewrite
LEGACY_FILES = ("ipm", "smo", "binary", "crammer_singer")


def clusters_like(
    n: int,
    d: int = 512,
    k: int = 10,
    latent: int = 256,
    sep: float = 3.0,
    noise: float = 0.1,
    gap: float = 0.05,
    seed: int = 0,
):
    """``relu(z P + noise)`` with ``z`` from ``k`` Gaussian clusters in ``latent`` dimensions (unit spread,
    centres ``sep / sqrt(2)`` standard deviations apart per axis), ``P`` a random ``latent x d`` projection:
    non-negative, about half zeros, like CNN features. Points whose nearest-class-mean margin is below ``gap``
    standard deviations are dropped (as at zero training error), so the data are separable with many
    points crowding the boundary."""
    rng = np.random.default_rng(seed)
    m = int(n * 1.6) + 100
    y = np.arange(m) % k
    z = rng.standard_normal((k, latent))[y] * sep / np.sqrt(2) + rng.standard_normal((m, latent))
    x = np.maximum(z @ (rng.standard_normal((latent, d)) / np.sqrt(latent)) + noise * rng.standard_normal((m, d)), 0.0)
    mu = np.stack([x[y == c].mean(0) for c in range(k)])
    f = x @ (2 * mu).T - (mu * mu).sum(1)
    own = f[np.arange(m), y].copy()
    f[np.arange(m), y] = -np.inf
    margin = own - f.max(1)
    keep = margin > gap * margin.std()
    return x[keep][:n].astype(np.float32), y[keep][:n]


def _legacy_fit(x: np.ndarray, y: np.ndarray, k: int, timeout: float):
    """Today's (pre-rewrite) one-vs-rest fit, from git, in a subprocess: ``(coef, cpu_seconds)`` or ``None``."""
    with tempfile.TemporaryDirectory() as tmp:
        pkg = os.path.join(tmp, "legacy_margin")
        os.makedirs(pkg)
        open(os.path.join(pkg, "__init__.py"), "w").close()
        for name in LEGACY_FILES:
            src = subprocess.run(
                ["git", "show", f"{LEGACY_COMMIT}:nnprobe/probes/margin/{name}.py"],
                check=True,
                capture_output=True,
                text=True,
                cwd=os.path.dirname(os.path.abspath(__file__)),
            ).stdout
            with open(os.path.join(pkg, f"{name}.py"), "w") as f:
                f.write(src.replace("nnprobe.probes.margin.", "legacy_margin."))
        np.save(os.path.join(tmp, "x.npy"), x)
        np.save(os.path.join(tmp, "y.npy"), y)
        code = (
            "import sys, time, numpy as np, torch; torch.set_num_threads(1); sys.path.insert(0, sys.argv[1]);"
            "from legacy_margin.binary import fit_binary;"
            "x = torch.from_numpy(np.load(sys.argv[1] + '/x.npy'));"
            "y = torch.from_numpy(np.load(sys.argv[1] + '/y.npy'));"
            f"coef = np.stack([fit_binary(x, torch.where(y == c, 1.0, -1.0)).coef for c in range({k})]);"
            "np.save(sys.argv[1] + '/coef.npy', coef)"
        )
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            subprocess.run([sys.executable, "-c", code, tmp], check=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return None
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        return np.load(os.path.join(tmp, "coef.npy")), (after.ru_utime + after.ru_stime) - (
            before.ru_utime + before.ru_stime
        )


def _cos_rows(a: np.ndarray, b: np.ndarray) -> float:
    """Smallest cosine between matching rows."""
    return float(min(r @ s / np.linalg.norm(r) / np.linalg.norm(s) for r, s in zip(a, b, strict=True)))


def run_multiclass(n: int, C: float, legacy_timeout: float) -> list[dict]:
    x, y = clusters_like(n)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    out = []
    for mode in ("ovr", "crammer_singer"):
        svm, ours = _timed(partial(fit_svm, xt, yt, 10, multi_class=mode))
        _, warm = _timed(partial(fit_svm, xt, yt, 10, multi_class=mode, warm_start=svm))
        f = x.astype(np.float64) @ svm.coef.T + svm.intercept
        if mode == "ovr":
            min_margin = float((np.where(y[:, None] == np.arange(10), 1.0, -1.0) * f).min())
        else:
            own = f[np.arange(len(y)), y].copy()
            f[np.arange(len(y)), y] = -np.inf
            min_margin = float((own - f.max(1)).min())
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            ref, theirs = _timed(
                lambda mode=mode: LinearSVC(
                    C=C, multi_class=mode, loss="hinge" if mode == "ovr" else "squared_hinge", max_iter=1000
                ).fit(x, y)
            )
        W, Wr = svm.coef, ref.coef_
        cos = (
            _cos_rows(W, Wr)
            if mode == "ovr"
            else float(
                ((W - W.mean(0)) * (Wr - Wr.mean(0))).sum()
                / np.linalg.norm(W - W.mean(0))
                / np.linalg.norm(Wr - Wr.mean(0))
            )
        )
        row = {
            "n": len(y),
            "mode": mode,
            "ours_s": ours,
            "warm_s": warm,
            "linearsvc_s": theirs,
            "cosine_linearsvc": cos,
            "linearsvc_converged": not caught,
            "min_margin": min_margin,
            "n_support": sum(svm.n_support),
            "separable": svm.separable,
            "legacy_s": None,
            "cosine_legacy": None,
        }
        if mode == "ovr" and legacy_timeout > 0:
            legacy = _legacy_fit(x, y, 10, legacy_timeout)
            if legacy is not None:
                row["legacy_s"], row["cosine_legacy"] = legacy[1], _cos_rows(W, legacy[0])
        out.append(row)
    return out


def run_nonseparable(n: int = 10000, C: float = 1.0) -> None:
    """Hard margin and ``C`` on label-noise features: times, exactness, training errors; ratios vs LinearSVC."""
    from nnprobe.errors import NNProbeError

    x, y = clusters_like(n)
    rng = np.random.default_rng(1)
    swap = rng.random(len(y)) < 0.2
    y = y.copy()
    y[swap] = rng.integers(0, 10, int(swap.sum()))
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    print(f"# non-separable: clusters_like({n}) with 20% of labels redrawn; process CPU seconds, 1 thread")
    for mode in ("ovr", "crammer_singer"):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            svm, hard = _timed(partial(fit_svm, xt, yt, 10, multi_class=mode))
        print(
            f"# n={n} {mode} hard margin: {hard:.2f} s, exact {svm.exact}, separable {svm.separable}, train error "
            f"{svm.train_error:.4f}; warning: {'; '.join(str(w.message)[:160] for w in caught) or 'none'}",
            flush=True,
        )
        try:
            svm, ours = _timed(partial(fit_svm, xt, yt, 10, C=C, multi_class=mode))
        except NNProbeError as exc:
            print(f"# n={n} {mode} C={C:g}: refused ({str(exc).splitlines()[0][:200]})", flush=True)
            continue
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            ref, theirs = _timed(
                lambda mode=mode: LinearSVC(
                    C=C, multi_class=mode, loss="hinge" if mode == "ovr" else "squared_hinge", max_iter=1000
                ).fit(x, y)
            )
        print(
            f"# n={n} {mode} C={C:g}: nnprobe {ours:.2f} s (exact {svm.exact}, train error {svm.train_error:.4f}); "
            f"LinearSVC {theirs:.2f} s ({'converged' if not caught else 'hit max_iter'}, train error "
            f"{float(np.mean(ref.predict(x) != y)):.4f})",
            flush=True,
        )
        print(f"svm_{mode}_n{n}_nonseparable_C{C:g}_vs_linearsvc: {theirs / ours:.2f}", flush=True)


def _linearsvc_capped(x: np.ndarray, y: np.ndarray, C: float, mode: str, loss: str, max_iter: int, cap: float):
    """``LinearSVC`` in a subprocess under a CPU-time cap: ``(coef, intercept, cpu_seconds, n_iter)`` or
    ``None`` when it did not finish within ``cap`` seconds."""
    with tempfile.TemporaryDirectory() as tmp:
        np.save(os.path.join(tmp, "x.npy"), x)
        np.save(os.path.join(tmp, "y.npy"), y)
        code = (
            "import sys, numpy as np, resource; from sklearn.svm import LinearSVC;"
            f"resource.setrlimit(resource.RLIMIT_CPU, ({int(cap)}, {int(cap) + 5}));"
            "x = np.load(sys.argv[1] + '/x.npy'); y = np.load(sys.argv[1] + '/y.npy');"
            f"m = LinearSVC(C={C}, loss='{loss}', multi_class='{mode}', max_iter={max_iter}).fit(x, y);"
            "np.save(sys.argv[1] + '/coef.npy', m.coef_); np.save(sys.argv[1] + '/b.npy', m.intercept_);"
            "np.save(sys.argv[1] + '/it.npy', np.array(m.n_iter_))"
        )
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        done = subprocess.run([sys.executable, "-c", code, tmp], capture_output=True).returncode == 0
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)
        if not done:
            return None
        return (
            np.load(os.path.join(tmp, "coef.npy")),
            np.load(os.path.join(tmp, "b.npy")),
            cpu,
            int(np.load(os.path.join(tmp, "it.npy"))),
        )


def noisy_clusters(n: int, flip: float = 0.2) -> tuple[np.ndarray, np.ndarray]:
    """:func:`clusters_like` with a fraction ``flip`` of the labels redrawn at random (seeded)."""
    x, y = clusters_like(n)
    rng = np.random.default_rng(1)
    swap = rng.random(len(y)) < flip
    y = y.copy()
    y[swap] = rng.integers(0, 10, int(swap.sum()))
    return x, y


def run_soft(n: int, C: float, cap: float, modes: tuple[str, ...]) -> None:
    """The exact soft margin at ``C`` (intercept penalised: LinearSVC's problem) against LinearSVC with the hinge
    (max_iter 10^6 under a CPU cap) and its default squared hinge; objectives recomputed by nnprobe."""
    from nnprobe.errors import NNProbeError
    from nnprobe.probes.margin.svm.soft import hinge_objective

    x, y = noisy_clusters(n)
    for mode in modes:
        tag = f"n={n} {mode} C={C:g}"
        try:
            svm, ours = _timed(
                partial(
                    fit_svm,
                    torch.from_numpy(x),
                    torch.from_numpy(y),
                    10,
                    C=C,
                    multi_class=mode,
                    penalise_intercept=True,
                )
            )
        except NNProbeError as exc:
            print(f"# {tag}: nnprobe refused ({str(exc).splitlines()[0][:160]})", flush=True)
            continue
        obj = hinge_objective(x, y, svm.coef, svm.intercept, C, mode=mode, penalise_intercept=True)
        hinge = _linearsvc_capped(x, y, C, mode, "hinge", 10**6, cap)
        sq = _linearsvc_capped(x, y, C, mode, "squared_hinge", 1000, cap) if mode == "ovr" else None
        line = f"# {tag}: nnprobe {ours:.1f} s, duality gap {svm.duality_gap:.2e}, objective {obj:.6f}"
        if hinge is None:
            line += f"; LinearSVC(hinge) did not finish in the {cap:g} s cap"
        else:
            theirs = hinge_objective(x, y, hinge[0], hinge[1], C, mode=mode, penalise_intercept=True)
            line += (
                f"; LinearSVC(hinge) {hinge[2]:.1f} s ({hinge[3]} iterations), objective {theirs:.6f} "
                f"(nnprobe - LinearSVC: {obj - theirs:+.3g}, relative {(obj - theirs) / theirs:+.2e})"
            )
        if sq is not None:
            line += f"; LinearSVC(squared hinge, default) {sq[2]:.1f} s"
        print(line, flush=True)
        if hinge is not None:
            print(f"svm_soft_{mode}_n{n}_C{C:g}_vs_linearsvc_hinge: {hinge[2] / ours:.2f}", flush=True)
        if sq is not None:
            print(f"svm_soft_{mode}_n{n}_C{C:g}_vs_linearsvc_squared_hinge: {sq[2] / ours:.2f}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="binary n = 12k, multi-class n = 10k only")
    parser.add_argument("--C", type=float, default=1e3, help="the same C for both solvers (large: hard margin)")
    parser.add_argument(
        "--legacy-timeout",
        type=float,
        default=600,
        help="seconds allowed to today's one-vs-rest solver per size (0: skip it)",
    )
    parser.add_argument(
        "--only", choices=("binary", "multiclass", "nonseparable", "soft", "hard-sets"), help="run one part only"
    )
    parser.add_argument(
        "--cap", type=float, default=600, help="CPU seconds allowed to each LinearSVC fit (--only soft)"
    )
    parser.add_argument("--sizes", type=int, nargs="+", help="soft: sizes to run (default 10k, and 50k unless --quick)")
    parser.add_argument("--Cs", type=float, nargs="+", default=[1.0, 100.0], help="soft: the values of C")
    parser.add_argument("--modes", nargs="+", default=["ovr", "crammer_singer"], help="soft: the SVM modes")
    parser.add_argument("--max-iter", type=int, default=1000, help="hard-sets: LinearSVC's max_iter")
    parser.add_argument("--repeats", type=int, default=3, help="hard-sets: fits per solver (the fastest is kept)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    if args.only == "hard-sets":
        from svm_hard_sets import run_hard_sets  # lazy: an opt-in part, kept in its own module

        run_hard_sets(args.sizes or ([2000] if args.quick else [10000]), args.C, args.max_iter, args.repeats)
        return
    if args.only == "soft":
        print(
            "# soft margin: clusters_like(n) x 512 x 10 with 20% of labels redrawn; nnprobe fit_svm(C, "
            "penalise_intercept=True) vs LinearSVC at the same C (hinge: max_iter 1e6, default tol, under a CPU "
            f"cap of {args.cap:g} s; squared hinge: defaults); objectives recomputed by nnprobe; process CPU "
            "seconds, 1 thread; ratio = LinearSVC time / nnprobe time"
        )
        for n in args.sizes or ([10000] if args.quick else [10000, 50000]):
            for C in args.Cs:
                run_soft(n, C, args.cap, tuple(args.modes))
        return
    if args.only == "nonseparable":
        run_nonseparable()
        return
    if args.only != "multiclass":
        sizes = [(12000, 2), (12000, 64), (12000, 512)]
        if not args.quick:
            sizes += [(60000, 2), (60000, 64), (60000, 512)]
        print(f"# binary linear SVM, C={args.C:g}, 1 thread each; ratio = sklearn SVC time / nnprobe fit_svm time")
        worst = 1.0
        for n, d in sizes:
            r = run(n, d, args.C)
            worst = min(worst, r["cosine"])
            print(
                f"# n={r['n']} d={d}: nnprobe {r['ours_s']:.3f} s, sklearn {r['sklearn_s']:.3f} s, "
                f"cosine {r['cosine']:.6f}, "
                f"margin {r['margin_ours']:.5g} vs {r['margin_sklearn']:.5g}, support vectors {r['n_support_ours']} vs "
                f"{r['n_support_sklearn']}, intercept {r['intercept_ours']:.4f} vs {r['intercept_sklearn']:.4f}",
                flush=True,
            )
            print(f"svm_fit_n{r['n']}_d{d}: {r['ratio']:.2f}", flush=True)
        print(f"# smallest cosine: {worst:.6f} ({'OK' if worst >= 0.999 else 'BELOW 0.999'})")
    if args.only == "binary":
        return
    print(
        f"# multi-class: 10 classes, d=512, features = clusters_like(): ReLU of a random projection of 10 Gaussian "
        f"clusters (latent 256-D), separable with a gap; nnprobe exact hard margin (intercepts free) vs "
        f"LinearSVC(C={args.C:g}, hinge for ovr, max_iter=1000; regularised intercept) and today's solver "
        f"({LEGACY_COMMIT}, one-vs-rest only, limit {args.legacy_timeout:g} s); process CPU seconds, 1 thread"
    )
    for n in [10000] if args.quick else [10000, 50000]:
        for r in run_multiclass(n, args.C, args.legacy_timeout):
            legacy = (
                "skipped (Crammer-Singer: > 10 min at 5k x 512)"
                if r["mode"] == "crammer_singer"
                else "skipped"
                if args.legacy_timeout <= 0
                else f"did not finish in {args.legacy_timeout:g} s"
                if r["legacy_s"] is None
                else f"{r['legacy_s']:.2f} s (cosine {r['cosine_legacy']:.6f})"
            )
            print(
                f"# n={r['n']} {r['mode']}: nnprobe {r['ours_s']:.2f} s (warm start from its own solution "
                f"{r['warm_s']:.2f} s), min functional margin {r['min_margin']:.6f}, support vectors {r['n_support']}, "
                f"separable {r['separable']}; LinearSVC {r['linearsvc_s']:.2f} s "
                f"({'converged' if r['linearsvc_converged'] else 'hit max_iter'}), "
                f"cosine to exact {r['cosine_linearsvc']:.6f}; "
                f"today's solver {legacy}",
                flush=True,
            )
            print(f"svm_{r['mode']}_n{r['n']}_d512_k10_vs_linearsvc: {r['linearsvc_s'] / r['ours_s']:.2f}", flush=True)
            if r["legacy_s"] is not None:
                print(f"svm_{r['mode']}_n{r['n']}_d512_k10_vs_today: {r['legacy_s'] / r['ours_s']:.2f}", flush=True)


if __name__ == "__main__":
    main()
