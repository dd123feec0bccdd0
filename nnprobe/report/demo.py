"""The demo's report, drawn from the result files of the runs of :func:`nnprobe.experiments.plans.demo_plan`.

``nnprobe demo`` executes the plan (the three probes on the embedded digits) and then calls
:func:`demo_report`, which reads ``<out>/<key>/result.json`` for each run and writes one page.
"""

from __future__ import annotations

from pathlib import Path

from nnprobe.io import write_json_atomic
from nnprobe.report.document import Report

TEXT = {
    "margin": "Does the last linear layer point where the max-margin linear SVM on the penultimate features points? "
              "The SVM is the hard-margin multi-class (Crammer-Singer) SVM with free intercepts, the max-margin problem "
              "that gradient descent on cross-entropy approaches; cosines are per class and averaged. The approach "
              "is logarithmic in the number of steps: the curve rises steadily rather than jumping.",
    "codes": "The on/off pattern of all ReLUs is the input's code. Redundancy ratio: (n - distinct codes) / n.",
    "gradnet": "A base MLP is trained on half of the training set; at each snapshot a block-structured GradNet is "
               "trained on per-sample gradients of the other half and tested by summing its outputs over all "
               "candidate labels.",
}


def demo_report(out_dir: str | Path, plan: list[dict], seconds: float) -> dict:
    """Write ``report.md`` / ``report.html`` and ``demo.json`` (the summaries) from the plan's result files."""
    from nnprobe.experiments import load_result
    from nnprobe.probes.codes import summary_rows
    from nnprobe.report.run_figures import CAPTIONS, draw_run
    from nnprobe.report.verdicts import add_verdict

    out = Path(out_dir)
    loaded = {e["key"]: load_result(out / e["key"]) for e in plan}
    first_run = loaded[plan[0]["key"]][0]
    ds = first_run.data.load(first_run.train.seed).summary()
    report = Report(f"nnprobe demo: three probes on {ds['name']}")
    report.text(f"Dataset `{ds['name']}`: {ds['n_train']} training and {ds['n_test']} test examples, "
                f"{len(ds['classes'])} classes. Every number below was measured in this run "
                f"(seed {first_run.train.seed}).")
    summary = {"dataset": ds, "seconds": seconds}
    for entry in plan:
        run, result = loaded[entry["key"]]
        figures = draw_run(out / entry["key"], title=f"{run.data.data}")
        report.heading(entry["title"], level=2 if entry["title"][:1].isdigit() else 3)
        add_verdict(report, run.probe, result.summary())
        if entry.get("note"):
            report.text(entry["note"])
        if entry["key"] == "margin":
            report.text(TEXT["margin"])
            report.table(result.table_rows(run.data.data), columns=["head", "cosine_to_svm", "test_agreement",
                                                                    "nn_test_accuracy", "svm_test_accuracy",
                                                                    "svm_train_error", "cosine_per_class"])
        elif entry["key"] == "margin_2d":
            report.table(result.table_rows(run.data.data), columns=["experiment", "cosine_to_svm", "test_agreement",
                                                                    "svm_margin", "nn_offset_from_svm",
                                                                    "nn_offset_from_midpoint", "grid_disagreement"])
        elif run.probe == "codes":
            report.text(TEXT["codes"])
            report.table(summary_rows(result.summary()), columns=["measure", "train", "test"])
        elif run.probe == "gradnet":
            report.text(TEXT["gradnet"])
            report.table(result.rows(), columns=["epoch", "base_test_accuracy", "gradnet_test_accuracy", "gain",
                                                 "gradient_dim"], labels={"epoch": "base snapshot (epoch)"})
        for key, path in figures.items():
            report.figure(path, CAPTIONS.get(key.split("_")[0], ""))
        summary[entry["key"]] = result.summary()
    report.text(f"Total time {seconds:.0f} s.")
    write_json_atomic(out / "demo.json", summary)
    report.write(out)
    return summary


__all__ = ["demo_report"]
