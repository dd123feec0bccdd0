"""``nnprobe margin`` and ``nnprobe reproduce margin``: the last layer against the max-margin SVM.

Li, Ding & Gao, "On the decision boundary of deep neural networks" (arXiv 1808.05385). Thin: flags -> a
:class:`~nnprobe.experiments.Run`, executed; figures and reports are drawn from the result files.
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import click

from nnprobe.cli.common import _stack, memory_option, missing_data, mode_options, opt, pass_opts, print_result, run_mode, run_options

PAPER = 'Li, Ding & Gao, "On the decision boundary of deep neural networks" (arXiv 1808.05385)'


def margin_options(fn):
    """The max-margin probe's own flags (defaults from :class:`~nnprobe.probes.margin.MarginConfig`)."""
    return _stack([
        opt("margin", "checkpoint", "Probe this saved model instead of training (its dataset flags must match).",
            type=click.Path(dir_okay=False, exists=True)),
        opt("margin", "C", "SVM soft-margin C (default: hard margin; the reference used 1).", type=float, flag="--C"),
        opt("margin", "multi_class", "SVM for more than two classes.",
            type=click.Choice(["ovr", "crammer_singer", "both"])),
        opt("margin", "solver", "SVM solver."),
        opt("margin", "every", "Measure every N epochs during training (0: never).", type=int),
        opt("margin", "log_spaced", "Measure at about N log-spaced epochs during training (0: only at the end).",
            type=int),
        opt("margin", "retrain_epochs", "Re-initialise the head and retrain it alone for N epochs on frozen features "
                                        "(0: skip).", type=int),
        opt("margin", "head", "Dotted name of the final linear layer (default: the layer whose output is the model's)."),
        click.option("--live-seed/--no-live-seed", "live_seed", default=None,
                     help="From --seed on, use the first seed whose untrained model has no all-dead feature unit "
                          "[default: on for feature layers of width <= 4]."),
        memory_option("margin"),
    ])(fn)


def echo_table(rows: list[dict]) -> None:
    """Print margin table rows with the columns that have values."""
    from nnprobe.probes.margin.measure import TABLE_COLUMNS
    from nnprobe.results import format_value

    cols = [c for c in TABLE_COLUMNS if c != "cosine_per_class" and any(r.get(c) is not None for r in rows)]
    widths = [max(len(c), *(len(format_value(r.get(c))) for r in rows)) for c in cols]
    click.echo("  ".join(c.rjust(w) for c, w in zip(cols, widths)))
    for r in rows:
        click.echo("  ".join(format_value(r.get(c)).rjust(w) for c, w in zip(cols, widths)))


# ---- reference experiments ------------------------------------------------------------------------------------

VERDICT_COLUMNS = ["finding", "reference setting", "reference value", "nnprobe value (same setting)", "verdict"]
MIN_COSINE = 0.99          # nnprobe's target for the direction finding (the reference computes no cosine)
ACCURACY_TOLERANCE = 0.005  # a test accuracy "matches" the reference's when at most this much lower
NEAR_MIDPOINT = 0.1         # "near the midpoint": |offset| <= this fraction of the half-distance between class means
NOT_AVAILABLE = "not run (CIFAR-10 files are not available here)"


def command_line(probe: str, params: dict) -> str:
    """The ``nnprobe <probe>`` command line equivalent to a plan entry's settings."""
    parts = [(f"--{'' if v else 'no-'}{k.replace('_', '-')}" if isinstance(v, bool) else f"--{k.replace('_', '-')} {v}")
             for k, v in params.items() if v is not None]
    return f"nnprobe {probe} " + " ".join(parts)


def distribution(values) -> dict:
    """``n``, median, quartiles and range of ``values`` (NaN and None left out).

    >>> d = distribution([3.0, 1.0, 2.0, 4.0, None]); d["n"], d["median"], d["q25"], d["q75"], d["min"], d["max"]
    (4, 2.5, 1.75, 3.25, 1.0, 4.0)
    """
    import numpy as np

    v = np.array([float(x) for x in values if x is not None and not math.isnan(float(x))])
    if not len(v):
        return {"n": 0, "median": None, "q25": None, "q75": None, "min": None, "max": None}
    q25, med, q75 = np.percentile(v, [25, 50, 75])
    return {"n": len(v), "median": float(med), "q25": float(q25), "q75": float(q75), "min": float(v.min()),
            "max": float(v.max())}


def half_gap(result) -> float | None:
    """Half the distance between the two class means along the SVM normal, in SVM margins (binary results).

    >>> half_gap(load_result("runs/reproduce-margin/midpoint/cnn-seed0")[1])   # doctest: +SKIP
    5.41
    """
    import numpy as np

    r = result.main
    if r.mode != "binary":
        return None
    w, means = np.asarray(r.svm_coef[0]), np.asarray(r.class_means)
    return float(abs(w @ (means[1] - means[0])) / 2)   # (distance / 2) / margin, with margin = 1 / ||w||


def midpoint_row(entry: dict, result) -> dict:
    """One seed of the midpoint study: where the jointly trained and the retrained boundaries cross, relative to
    the midpoint of the class means (signed, in SVM margins; positive: towards class 1).

    >>> midpoint_row({"group": "cnn"}, result)["relative_offset"]   # doctest: +SKIP
    0.34
    """
    s, main = result.summary(), result.main
    gap = half_gap(result)
    off = s.get("nn_offset_from_midpoint")
    return {"architecture": entry["group"], "seed": result.seed, "nn_train_accuracy": main.nn_train_accuracy,
            "nn_test_accuracy": s.get("nn_test_accuracy"), "cosine_to_svm": s.get("cosine_to_svm"),
            "svm_margin": s.get("svm_margin"), "half_gap": gap, "nn_offset_from_midpoint": off,
            "relative_offset": None if off is None or not gap else abs(off) / gap,
            "svm_offset_from_midpoint": main.rows[0].svm_offset_from_midpoint if main.mode == "binary" else None,
            "retrained/cosine_to_svm": s.get("retrained/cosine_to_svm"),
            "retrained/nn_offset_from_midpoint": s.get("retrained/nn_offset_from_midpoint"),
            "dead_feature_dims": main.extra.get("dead_feature_dims")}


MIDPOINT_LABELS = {
    "architecture": "architecture", "seed": "seed used", "half_gap": "half-distance between class means (SVM margins)",
    "nn_offset_from_midpoint": "joint head: offset from midpoint (SVM margins)",
    "relative_offset": "joint head: abs(offset) / half-distance", "cosine_to_svm": "joint head: cosine to SVM",
    "svm_offset_from_midpoint": "SVM: offset from midpoint (SVM margins)",
    "retrained/cosine_to_svm": "retrained head: cosine to SVM",
    "retrained/nn_offset_from_midpoint": "retrained head: offset from midpoint (SVM margins)",
    "quantity": "quantity", "q25": "25th percentile", "q75": "75th percentile", "median": "median",
}
MIDPOINT_QUANTITIES = ("nn_offset_from_midpoint", "relative_offset", "svm_offset_from_midpoint",
                       "retrained/nn_offset_from_midpoint", "cosine_to_svm", "retrained/cosine_to_svm")


def midpoint_distributions(rows: list[dict]) -> list[dict]:
    """The distribution of each midpoint quantity over seeds, per architecture and over all runs.

    >>> d = midpoint_distributions([{"architecture": "cnn", "nn_offset_from_midpoint": v} for v in (1.0, -3.0, 2.0)])
    >>> d[0]["quantity"], d[0]["median"], d[0]["min"]
    ('joint head: offset from midpoint (SVM margins)', 1.0, -3.0)
    """
    groups = list(dict.fromkeys(r["architecture"] for r in rows))
    rows = [r for r in rows if r.get("half_gap", 1)]   # features collapsed to one point: no boundary to place
    out = []
    for group in groups + (["all"] if len(groups) > 1 else []):
        sel = [r for r in rows if group == "all" or r["architecture"] == group]
        for q in MIDPOINT_QUANTITIES:
            out.append({"architecture": group, "quantity": MIDPOINT_LABELS.get(q, q).replace("_", " "),
                        **distribution(r.get(q) for r in sel)})
    return out


def _fmt_dist(d: dict, what: str = "") -> str:
    if not d["n"]:
        return "not measured"
    return (f"median {d['median']:+.2f}{what} (IQR {d['q25']:+.2f} .. {d['q75']:+.2f}, min {d['min']:+.2f}, "
            f"max {d['max']:+.2f}; n = {d['n']})")


def _acc_verdict(value, reference: float) -> str:
    if value is None:
        return "not measured"
    if value >= reference - ACCURACY_TOLERANCE:
        return f"holds ({value:.4f} vs {reference}: within {ACCURACY_TOLERANCE} or above)"
    return f"does not hold ({value:.4f} is {reference - value:.4f} below {reference})"


def verdict_rows(done: dict, midpoint: list[dict], quick: bool) -> list[dict]:
    """The verdict table. ``done`` maps plan keys to ``(entry, result)`` or to a string saying why the run is
    missing; ``midpoint`` holds :func:`midpoint_row` rows.

    >>> [r["verdict"] for r in verdict_rows({"cifar02": "not run: no files"}, [], quick=True)][-1]
    'not run'
    """
    setting = "nnprobe --quick: " if quick else "nnprobe: "

    def got(key):
        value = done.get(key, "not run (not selected with --only)")
        return (None, value) if isinstance(value, str) else value

    rows = []
    entry, r = got("mnist01")
    ref01 = "ResNet -> FC 200 ReLU -> FC 2 ReLU -> linear, MNIST 0 vs 1, momentum (1e-4, 0.9)"
    if isinstance(r, str):
        rows += [{"finding": f, "reference setting": ref01, "reference value": v, "nnprobe value (same setting)": r,
                  "verdict": "not run"} for f, v in (("test accuracy, MNIST 0 vs 1", "0.998"),
                                                     ("NN direction = SVM direction, MNIST 0 vs 1",
                                                      f"compared by eye (no cosine); nnprobe target >= {MIN_COSINE}"))]
    else:
        s, where = r.summary(), f" ({setting}{entry['title']})"
        rows.append({"finding": "test accuracy, MNIST 0 vs 1", "reference setting": ref01, "reference value": "0.998",
                     "nnprobe value (same setting)": f"{s['nn_test_accuracy']:.4f}{where}",
                     "verdict": _acc_verdict(s["nn_test_accuracy"], 0.998)})
        cos = s["cosine_to_svm"]
        rows.append({"finding": "NN direction = SVM direction, MNIST 0 vs 1", "reference setting": ref01,
                     "reference value": f"compared by eye (no cosine); nnprobe target >= {MIN_COSINE}",
                     "nnprobe value (same setting)": f"cosine {cos:.4f}, test agreement {s['test_agreement']:.4f}"
                                                     f"{where}",
                     "verdict": "holds" if cos >= MIN_COSINE else "does not hold"})
    rows += _midpoint_verdicts(midpoint, ref01, setting)
    entry, r = got("mnist012")
    ref012 = ("DenseNet-40 (growth 12) -> FC 2 ReLU -> linear, MNIST 0/1/2, momentum (1e-3, 0.9), batch 1024, "
              "1000 epochs")
    if isinstance(r, str):
        rows += [{"finding": f, "reference setting": ref012, "reference value": v, "nnprobe value (same setting)": r,
                  "verdict": "not run"} for f, v in (("test accuracy, MNIST 0/1/2 (ReLU features)",
                                                      "0.9955 (notebook output; ~0.997 in the README)"),
                                                     ("NN direction = SVM direction per class, MNIST 0/1/2 (ReLU)",
                                                      f"compared by eye; nnprobe target >= {MIN_COSINE} per class"))]
    else:
        s, where = r.summary(), f" ({setting}{entry['title']})"
        rows.append({"finding": "test accuracy, MNIST 0/1/2 (ReLU features)", "reference setting": ref012,
                     "reference value": "0.9955 (notebook output; ~0.997 in the README)",
                     "nnprobe value (same setting)": f"{s['nn_test_accuracy']:.4f}, train {r.main.nn_train_accuracy:.4f}"
                                                     f"{where}",
                     "verdict": _acc_verdict(s["nn_test_accuracy"], 0.9955)})
        per_mode = {m: [c.cosine_to_svm for c in res.rows] for m, res in r.results.items()}
        worst = min(min(v) for v in per_mode.values())
        text = "; ".join(f"{m}: " + ", ".join(f"{c:.4f}" for c in v) for m, v in per_mode.items())
        zero = r.main.nn_train_accuracy == 1.0
        rows.append({"finding": "NN direction = SVM direction per class, MNIST 0/1/2 (ReLU)",
                     "reference setting": ref012,
                     "reference value": f"compared by eye; nnprobe target >= {MIN_COSINE} per class",
                     "nnprobe value (same setting)": f"per-class cosines {text}; training error "
                                                     f"{1 - r.main.nn_train_accuracy:.4f}{where}",
                     "verdict": "holds" if worst >= MIN_COSINE and zero else
                     f"does not hold (lowest per-class cosine {worst:.4f}"
                     + ("" if zero else ", training error not zero") + ")"})
    refc = "DenseNet-40 -> FC 2 ReLU -> linear, CIFAR-10 airplane vs bird, momentum (1e-3, 0.9), batch 256, 501 epochs"
    entry, r = got("cifar02")
    if isinstance(r, str):
        rows.append({"finding": "test accuracy, CIFAR-10 airplane vs bird", "reference setting": refc,
                     "reference value": "0.9255",
                     "nnprobe value (same setting)": r if "--only" in r else NOT_AVAILABLE, "verdict": "not run"})
    else:
        s = r.summary()
        rows.append({"finding": "test accuracy, CIFAR-10 airplane vs bird", "reference setting": refc,
                     "reference value": "0.9255",
                     "nnprobe value (same setting)": f"{s['nn_test_accuracy']:.4f} ({setting}{entry['title']}), "
                                                     f"cosine {s['cosine_to_svm']:.4f}",
                     "verdict": _acc_verdict(s["nn_test_accuracy"], 0.9255)})
    return rows


def _midpoint_verdicts(midpoint: list[dict], ref01: str, setting: str) -> list[dict]:
    find_joint = "jointly trained boundary near the midpoint of the two class clusters, MNIST 0 vs 1"
    find_re = "re-initialised head retrained alone: direction kept, boundary shifted toward one cluster"
    if not midpoint:
        return [{"finding": f, "reference setting": ref01, "reference value": v,
                 "nnprobe value (same setting)": "not run (not selected with --only)", "verdict": "not run"}
                for f, v in ((find_joint, "near the midpoint (by eye, figure)"),
                             (find_re, "direction kept, bias shifted (by eye, figure)"))]
    archs = ", ".join(dict.fromkeys(r["architecture"] for r in midpoint))
    runs = len(midpoint)
    midpoint = [r for r in midpoint if r["half_gap"]]   # features collapsed to one point: no boundary to place
    joint = distribution(r["nn_offset_from_midpoint"] for r in midpoint)
    rel = distribution(r["relative_offset"] for r in midpoint)
    re_off = distribution(r["retrained/nn_offset_from_midpoint"] for r in midpoint)
    re_cos = distribution(r["retrained/cosine_to_svm"] for r in midpoint)
    near = rel["n"] and rel["median"] <= NEAR_MIDPOINT
    zero = sum(r["nn_train_accuracy"] == 1.0 for r in midpoint)
    rows = [{"finding": find_joint, "reference setting": ref01, "reference value": "near the midpoint (by eye, figure)",
             "nnprobe value (same setting)": f"offset from the midpoint {_fmt_dist(joint, ' SVM margins')}; abs(offset) "
                                             f"/ half-distance between the class means: median {rel['median']:.3f}, "
                                             f"max {rel['max']:.3f}; {zero} of {runs} runs at zero training error, "
                                             f"{runs - len(midpoint)} whose features collapsed to one point left out "
                                             f"({setting}{archs}, one run per seed)",
             "verdict": ("holds" if near else "does not hold") + f" (criterion: median abs(offset) <= {NEAR_MIDPOINT} "
                                                                  "of the half-distance)"}]
    shifted = re_off["n"] and (distribution(abs(r["retrained/nn_offset_from_midpoint"]) for r in midpoint
                                            if r["retrained/nn_offset_from_midpoint"] is not None)["median"]
                               > distribution(abs(r["nn_offset_from_midpoint"]) for r in midpoint
                                              if r["nn_offset_from_midpoint"] is not None)["median"])
    kept = re_cos["n"] and re_cos["median"] >= MIN_COSINE
    rows.append({"finding": find_re, "reference setting": ref01 + "; head weights and bias reset, head trained alone",
                 "reference value": "direction kept, bias shifted (by eye, figure)",
                 "nnprobe value (same setting)": f"retrained cosine median {re_cos['median']:.4f} (min {re_cos['min']:.4f}); "
                                                 f"retrained offset {_fmt_dist(re_off, ' SVM margins')}",
                 "verdict": ("holds" if kept and shifted else "does not hold")
                 + f" (criteria: median cosine >= {MIN_COSINE}; median abs(offset) larger than the joint head's)"})
    return rows

def _execute(entry: dict, out: Path, data_dir, mode: str, progress: bool, draw: bool = True):
    """Run one plan entry into ``out / entry["key"]``: ``(run, result, figures, seconds)``, or the reason it cannot run
    (``draw``: draw its figures)."""
    from nnprobe.experiments import load_result
    from nnprobe.experiments.plans import plan_run
    from nnprobe.report.run_figures import draw_run

    missing = missing_data(entry["needs"], data_dir) if entry.get("needs") else None
    if missing:
        click.echo(f"[{entry['key']}] not run: {missing}")
        return f"not run: {missing}"
    t0 = time.perf_counter()
    sub = out / entry["key"]
    plan_run(entry, data_dir=data_dir).execute(sub, mode=mode, progress=progress)
    run, result = load_result(sub)
    figures = draw_run(sub, title=entry["key"]) if draw else {}
    seconds = json.loads((sub / "result.json").read_text(encoding="utf-8")).get("seconds")   # the run's own wall time
    click.echo(f"[{entry['key']}] done in {time.perf_counter() - t0:.0f} s")
    return run, result, figures, time.perf_counter() - t0 if seconds is None else float(seconds)


def _experiment_section(report, entry: dict, got) -> list[dict]:
    from nnprobe.probes.margin.measure import TABLE_COLUMNS
    from nnprobe.report.run_figures import CAPTIONS

    report.heading(entry["title"])
    if isinstance(got, str):
        report.text(f"{got[0].upper()}{got[1:]}. Put the files under `--data-dir` or `$NNPROBE_DATA` to run it.")
        return []
    run, result, figures, seconds = got
    report.text(f"`{command_line('margin', entry['params'])}` (seed used: {result.seed}; {seconds:.0f} s wall on this "
                "machine when it ran).")
    if entry.get("note"):
        report.text(entry["note"])
    if result.warnings:
        report.text("Warnings: " + "; ".join(result.warnings))
    rows = result.table_rows(entry["key"])
    report.table(rows, columns=[c for c in TABLE_COLUMNS if any(r.get(c) is not None for r in rows)])
    for key, path in figures.items():
        report.figure(path, CAPTIONS.get(key.split("_")[0], ""))
    return rows


def _midpoint_section(report, entries: list[dict], runs: list, rows: list[dict]) -> None:
    report.heading("The midpoint claim over seeds: MNIST 0 vs 1, 2-D ReLU feature layer")
    if not entries:
        return
    missing = [g for g in runs if isinstance(g, str)]
    if missing:
        report.text(f"Not run: {missing[0]}.")
        return
    seconds = sum(g[3] for g in runs)
    per_arch = {}
    for e in entries:
        per_arch.setdefault(e["group"], e)
    report.text("The reference reads off its MNIST 0 vs 1 figure that the jointly trained boundary sits near the "
                "midpoint of the two class clusters in the 2-D feature space, and that a head re-initialised and "
                "retrained alone keeps the direction but moves the boundary toward one cluster. Each run below "
                "trains one model and retrains its head; the offsets are signed distances from the midpoint of the "
                "two class means to each boundary, along that boundary's normal, in units of the SVM margin "
                "(positive: toward class 1); `abs(offset) / half-distance` divides by half the distance between the "
                f"class means (0: at the midpoint, 1: at a class mean). Runs that did not reach zero training error "
                "or lost a feature unit are kept (see the columns); a run whose feature units all died (every input "
                "mapped to one point) has no boundary to place and is left out of the distributions. {len(runs)} runs, {seconds:.0f} s in all.")
    for arch, e in per_arch.items():
        params = {k: v for k, v in e["params"].items() if k != "seed"}
        report.text(f"{arch}: `{command_line('margin', params)} --seed S` for S in "
                    f"{', '.join(str(x['params']['seed']) for x in entries if x['group'] == arch)} "
                    "(each run takes the first seed from S whose untrained feature units are all alive: the seed used "
                    "is in the table)." + (f" {e['note']}" if e.get("note") else ""))
    cols = ["architecture", "seed", "nn_train_accuracy", "nn_test_accuracy", "dead_feature_dims", "cosine_to_svm",
            "svm_margin", "half_gap", "nn_offset_from_midpoint", "relative_offset", "svm_offset_from_midpoint",
            "retrained/cosine_to_svm", "retrained/nn_offset_from_midpoint"]
    report.table(rows, cols, labels=MIDPOINT_LABELS)
    report.text("Distribution over seeds:")
    report.table(midpoint_distributions(rows), ["architecture", "quantity", "n", "median", "q25", "q75", "min", "max"],
                 labels=MIDPOINT_LABELS)


def reproduce_margin(out: Path, quick: bool, data_dir=None, only: tuple[str, ...] = (), progress: bool = False,
                     mode: str = "new"):
    """Run the reference experiments (and the midpoint study over seeds, key ``midpoint``) and write one Markdown +
    HTML report into ``out``, opening with the verdict table."""
    from nnprobe.experiments.plans import margin_midpoint_plan, margin_plan
    from nnprobe.probes.margin.measure import TABLE_COLUMNS
    from nnprobe.report.document import Report

    start = time.perf_counter()
    plan = [e for e in margin_plan(quick) if not only or e["key"] in only]
    done = {e["key"]: _execute(e, out, data_dir, mode, progress) for e in plan}
    mid_entries = margin_midpoint_plan(quick) if not only or "midpoint" in only else []
    mid_runs = [_execute(e, out / "midpoint", data_dir, mode, progress, draw=False) for e in mid_entries]
    mid_rows = [midpoint_row(e, g[1]) for e, g in zip(mid_entries, mid_runs) if not isinstance(g, str)]

    report = Report("Max-margin probe: the last layer vs the max-margin SVM")
    report.text(f"Reproduces the experiments of {PAPER} with nnprobe's measurements "
                f"({'--quick: CPU-sized settings' if quick else 'full settings'}). Measured numbers, not copied ones. "
                "Cosines compare NN weight vectors (binary: `w_1 - w_0`; multi-class: centred rows) with the SVM's; "
                "offsets are signed distances in units of the SVM margin (positive: towards the positive class), "
                "measured at the midpoint of the class means.")
    report.heading("Verdicts")
    report.text("Reference values from the design note (`margin.md`), read from the reference notebooks' saved outputs "
                "and README (exact numbers, not read from figures). The reference compares NN and SVM only by eye on "
                f"plots: for the direction, nnprobe's target is a cosine >= {MIN_COSINE} (per class for 3 classes, "
                "with zero training error); for the midpoint, abs(offset) <= "
                f"{NEAR_MIDPOINT} of the half-distance between the class means. A test accuracy holds when it is at "
                f"most {ACCURACY_TOLERANCE} below the reference's. The nnprobe value names its own setting where it "
                "differs from the reference's.")
    report.table(verdict_rows({k: v if isinstance(v, str) else (next(e for e in plan if e["key"] == k), v[1])
                               for k, v in done.items()}, mid_rows, quick), VERDICT_COLUMNS)
    all_rows = []
    for entry in plan:
        all_rows += _experiment_section(report, entry, done[entry["key"]])
    if mid_entries:
        _midpoint_section(report, mid_entries, mid_runs, mid_rows)
    if all_rows:
        report.heading("All measurements")
        report.table(all_rows, columns=[c for c in TABLE_COLUMNS if any(r.get(c) is not None for r in all_rows)])
    report.text(f"Total time {time.perf_counter() - start:.0f} s.")
    md, html = report.write(out)
    if all_rows:
        echo_table(all_rows)
    if mid_rows:
        for d in midpoint_distributions(mid_rows):
            if d["n"]:
                click.echo(f"[midpoint] {d['architecture']:>8} {d['quantity']}: {_fmt_dist(d)}")
    return md, html


def register(main, reproduce) -> None:
    @main.command("margin")
    @run_options("margin", "runs/margin")
    @margin_options
    @pass_opts
    def margin_cmd(opts):
        """Train (or load) a classifier and compare its last layer with the max-margin SVM on its penultimate
        features: cosine, margins, bias and offsets, test agreement, curves over training, retrained head.

        \b
        Examples:
          nnprobe margin --data mnist:0,1 --model resnet --feature-dim 2 --epochs 2 --out runs/margin
          nnprobe margin --data digits --model mlp --multi-class both --format json
          nnprobe margin --checkpoint my_model.pt --data mnist:0,1
        """
        from nnprobe.cli.common import execute_command

        run, result, figures = execute_command("margin", opts)
        print_result(opts, result, figures, extra=lambda: echo_table(result.table_rows(run.data.data)))
        if opts.get("format") != "json":
            for w in result.warnings:
                click.echo(f"warning: {w}", err=True)

    @reproduce.command("margin")
    @click.option("--quick", is_flag=True, help="CPU-sized settings (about 11 minutes on 2 shared cores, midpoint study included).")
    @click.option("--out", type=click.Path(file_okay=False), default="runs/reproduce-margin", show_default=True)
    @click.option("--data-dir", type=click.Path(file_okay=False), envvar="NNPROBE_DATA", default=None,
                  help="Directory with MNIST / CIFAR-10 files [env NNPROBE_DATA].")
    @click.option("--only", multiple=True, help="Run only these experiments (blobs, blobs3, mnist01, cifar02, mnist012, "
                                                "mnist012_selu, midpoint).")
    @click.option("--progress/--no-progress", default=False, show_default=True)
    @mode_options
    def reproduce_margin_cmd(quick, out, data_dir, only, progress, resume, overwrite):
        """Reference experiments of Li, Ding & Gao (2018): simulated clusters, MNIST 0/1 ResNet, CIFAR-10 0/2 and
        MNIST 0/1/2 with ReLU features (SELU as an extra row), the retrained-head experiment and the midpoint claim
        over seeds (--only midpoint); writes report.md and report.html, opening with the verdict table."""
        mode = run_mode({"resume": resume, "overwrite": overwrite})
        md, html = reproduce_margin(Path(out), quick, data_dir, tuple(only), progress, mode)
        click.echo(f"wrote {md} and {html}")
