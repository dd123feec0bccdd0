"""Where the time of one ``nnprobe reproduce gradnet`` study goes: wall seconds per part, one seed of a plan entry.

Each part is timed exclusively (a part's time excludes the parts nested in it: the snapshot measurements run
inside the base training's epochs, the per-epoch test evaluation inside every training), so the parts add up to
the study's wall time. Parts: ``base training``, ``epoch-end evaluation`` (the trainer's test pass each epoch),
``coordinate selection`` (gradient statistics), ``gradient extraction`` (train and test gradients),
``GradNet training`` and ``GradNet scoring`` (its test rule), ``control (a)`` / ``control (b)``,
``converged base``, ``null baselines`` (features + the two probes), ``test evaluation`` (``correct_on``),
``saving`` (snapshot checkpoints and parts), ``options`` (the option comparison the report runs once).

    OMP_NUM_THREADS=1 python bench/gradnet_parts.py --protocol nnprobe --data mnist --seed 0
    OMP_NUM_THREADS=1 python bench/gradnet_parts.py --protocol reference --data mnist --options

``--options`` also times the option comparison (``reproduce gradnet`` runs it on the first nnprobe setting).
Prints one ``part: wall and CPU seconds`` line each, the peak resident memory and a JSON line (``--json``: to a
file). Under a loaded machine the CPU seconds of the same work vary too (measured: +-10-25% between runs at load
3.5 and 5 on the 2-core box): compare runs made at similar load, or parts whose work did not change.
"""

from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


class Timers:
    """Exclusive wall time per label: a stack of open labels; the innermost one is charged."""

    def __init__(self):
        self.total = collections.defaultdict(float)
        self.cpu = collections.defaultdict(float)
        self.calls = collections.Counter()
        self.stack = []
        self.mark, self.cpu_mark = time.perf_counter(), time.process_time()

    def _charge(self):
        now, cpu = time.perf_counter(), time.process_time()
        if self.stack:
            self.total[self.stack[-1]] += now - self.mark
            self.cpu[self.stack[-1]] += cpu - self.cpu_mark
        self.mark, self.cpu_mark = now, cpu

    @contextlib.contextmanager
    def part(self, label):
        if "options" in self.stack and label != "options":  # the option comparison's parts stay apart
            label = f"options: {label}"
        self._charge()
        self.stack.append(label)
        self.calls[label] += 1
        try:
            yield
        finally:
            self._charge()
            self.stack.pop()

    def wrap(self, module, name, label):
        fn = getattr(module, name)
        timers = self

        def wrapped(*args, **kwargs):
            lab = label(args, kwargs) if callable(label) else label
            with timers.part(lab):
                return fn(*args, **kwargs)

        wrapped.__wrapped__ = fn
        setattr(module, name, wrapped)


def instrument(timers: Timers) -> None:
    """Wrap the study's parts where the modules that call them look them up (the layout before and after the
    pipeline moved out of ``study``, so the script times either)."""
    import importlib

    import nnprobe.experiments.run as run_mod
    import nnprobe.probes.gradnet.baselines as baselines
    import nnprobe.probes.gradnet.extract as extract
    import nnprobe.probes.gradnet.network as network
    import nnprobe.probes.gradnet.selection as selection
    import nnprobe.probes.gradnet.study as study
    import nnprobe.probes.gradnet.trainset as trainset
    import nnprobe.reproduce.gradnet as rep
    import nnprobe.training.trainer as trainer

    try:
        pipeline = importlib.import_module("nnprobe.probes.gradnet.pipeline")
    except ImportError:
        pipeline = study
    control_calls = collections.Counter()

    def control_label(args, kwargs):
        control_calls["n"] += 1
        return "control (a)" if control_calls["n"] % 2 == 1 else "control (b)"

    def wrap(module, name, label):
        if hasattr(module, name):
            timers.wrap(module, name, label)

    wrap(study, "train", "base training")
    wrap(trainer, "evaluate", "epoch-end evaluation")
    for mod in (study, baselines):
        wrap(mod, "correct_on", "test evaluation")
    wrap(pipeline, "gradient_stats", "coordinate selection")
    wrap(pipeline, "training_gradients", "gradient extraction")
    wrap(pipeline, "collect_gradients", "gradient extraction")
    wrap(pipeline, "train_gradnet", "GradNet training")
    wrap(network, "accuracy_of_sum", "GradNet scoring")
    wrap(network.GradNet, "predict_scores", "GradNet scoring")
    wrap(extract.GradientExtractor, "_batch_full", "gradient extraction")
    for mod in (trainset, pipeline):
        wrap(mod, "keep_top_per_example", "top-k sparsification")
    if hasattr(trainset, "TopKStore"):
        wrap(trainset.TopKStore, "collect", "top-k sparsification")
        wrap(trainset.TopKStore, "dense", "top-k store: rebuild")
    wrap(selection.GradientNormalizer, "transform_", "normalisation")
    wrap(selection.GradientNormalizer, "fit", "normalisation")
    wrap(study, "train_on", control_label)
    wrap(study, "converged_base", "converged base")
    wrap(study, "probe_baselines", "null baselines")
    wrap(run_mod.RunContext, "save_part", "saving")
    wrap(rep, "compare_options", "options")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--protocol", choices=("nnprobe", "reference"), default="nnprobe")
    ap.add_argument("--data", default="mnist")
    ap.add_argument("--seed", type=int, default=0, help="seed index (per_seed)")
    ap.add_argument("--full", action="store_true", help="the full plan, not --quick's")
    ap.add_argument("--options", action="store_true", help="also time the option comparison")
    ap.add_argument("--json", default=None)
    ap.add_argument("--cprofile", default=None, help="also write a cProfile dump here")
    args = ap.parse_args()

    from nnprobe import experiments
    from nnprobe.reproduce import gradnet as rep
    from nnprobe.reproduce import plans

    timers = Timers()
    instrument(timers)
    plan = (plans.gradnet_plan if args.protocol == "nnprobe" else plans.gradnet_reference_plan)(not args.full)
    entry = next(
        e
        for e in plans.per_seed(plan, args.seed + 1)
        if e["params"]["data"] == args.data and e["seed_index"] == args.seed
    )
    data_dir = os.environ.get("NNPROBE_DATA")
    profiler = None
    if args.cprofile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    start, cpu_start = time.perf_counter(), time.process_time()
    with tempfile.TemporaryDirectory() as tmp:
        sub = Path(tmp) / entry["key"]
        with timers.part("other (setup, data, report)"):
            run = plans.plan_run(entry, data_dir=data_dir, device="cpu")
            run.execute(sub, mode="new", progress=False)
            study_seconds = time.perf_counter() - start
            if args.options:
                run, study = experiments.load_result(sub)
                doc = type("Doc", (), {"__getattr__": lambda self, name: lambda *a, **k: None})()
                import nnprobe.reproduce.gradnet as repmod

                repmod.plot_option_comparison = lambda *a, **k: None
                rep._option_section(doc, study, run, sub, entry["key"], "new", lambda *a, **k: None)
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    if profiler is not None:
        profiler.disable()
        profiler.dump_stats(args.cprofile)
    parts = dict(sorted(timers.total.items(), key=lambda kv: -kv[1]))
    print(f"{'part':<36} {'wall s':>8} {'cpu s':>8}  calls")
    for k, v in parts.items():
        print(f"{k:<36} {v:8.1f} {timers.cpu[k]:8.1f}  {timers.calls[k]}")
    print(f"{'study wall':<36} {study_seconds:8.1f}")
    print(f"{'total':<36} {wall:8.1f} {cpu:8.1f}")
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    print(f"{'peak resident memory (MB)':<36} {peak:8.0f}")
    out = {
        "entry": entry["key"],
        "protocol": args.protocol,
        "parts": parts,
        "cpu": dict(timers.cpu),
        "calls": dict(timers.calls),
        "study_seconds": study_seconds,
        "wall": wall,
        "cpu_total": cpu,
        "peak_mb": peak,
        "load": os.getloadavg(),
    }
    text = json.dumps(out)
    if args.json:
        Path(args.json).write_text(text)
    print(text)


if __name__ == "__main__":
    main()
