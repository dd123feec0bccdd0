"""The demo's report, drawn from the result files of the runs of :func:`nnprobe.reproduce.plans.demo_plan`.

``nnprobe demo`` executes the plan (the three probes on the embedded digits) and then calls
:func:`demo_report`, which reads ``<out>/<key>/result.json`` for each run and writes one page: per run its
verdict, the plan entry's ``note`` and ``text``, the probe's table (``ProbeEntry.table``, with the plan
entry's ``columns`` and ``labels`` when it names them) and its figures.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from nnprobe.entries import get_probe
from nnprobe.experiments import load_result
from nnprobe.io import write_json_atomic
from nnprobe.report.document import Report
from nnprobe.report.run_figures import CAPTIONS, draw_run
from nnprobe.report.verdicts import add_verdict


def demo_report(out_dir: str | Path, plan: list[dict[str, Any]], seconds: float) -> dict[str, Any]:
    """Write ``report.md`` / ``report.html`` and ``demo.json`` (the summaries) from the plan's result files."""
    out = Path(out_dir)
    loaded = {e["key"]: load_result(out / e["key"]) for e in plan}
    first_run = loaded[plan[0]["key"]][0]
    ds = first_run.data.load(first_run.train.seed).summary()
    report = Report(f"nnprobe demo: three probes on {ds['name']}")
    report.text(
        f"Dataset `{ds['name']}`: {ds['n_train']} training and {ds['n_test']} test examples, "
        f"{len(ds['classes'])} classes. Every number below was measured in this run "
        f"(seed {first_run.train.seed})."
    )
    summary = {"dataset": ds, "seconds": seconds}
    for entry in plan:
        run, result = loaded[entry["key"]]
        figures = draw_run(out / entry["key"], title=f"{run.data.data}")
        report.heading(entry["title"], level=2 if entry["title"][:1].isdigit() else 3)
        add_verdict(report, run.probe, result.summary())
        if entry.get("note"):
            report.text(entry["note"])
        if entry.get("text"):
            report.text(entry["text"])
        table = get_probe(run.probe).hook("table")
        if table is not None:  # the probe's own table; a plan entry may choose other columns
            report.table(
                table(run, result),
                columns=entry.get("columns") or list(get_probe(run.probe).table_columns),
                labels=entry.get("labels") or get_probe(run.probe).table_labels,
            )
        for key, path in figures.items():
            report.figure(path, CAPTIONS.get(key.split("_")[0], ""))
        summary[entry["key"]] = result.summary()
    report.text(f"Total time {seconds:.0f} s.")
    write_json_atomic(out / "demo.json", summary)
    report.write(out)
    return summary


__all__ = ["demo_report"]
