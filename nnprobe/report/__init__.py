"""Reports and figures, drawn from result files: one run, a sweep, a directory of runs, the demo.

Names are exported lazily (:mod:`nnprobe.lazy`): matplotlib and torch load with the module that needs them.
"""

from typing import TYPE_CHECKING

from nnprobe.lazy import export_lazily

if TYPE_CHECKING:  # the names export_lazily loads on first access, for type checkers
    from nnprobe.report.demo import demo_report
    from nnprobe.report.directory import metric_names, plot_curves, report_directory
    from nnprobe.report.document import Report
    from nnprobe.report.run_figures import CAPTIONS, draw_run
    from nnprobe.report.verdicts import CLAIMS, THRESHOLDS, Verdict, add_verdict, criteria, verdict

__all__ = [
    "CAPTIONS",
    "CLAIMS",
    "Report",
    "THRESHOLDS",
    "Verdict",
    "add_verdict",
    "criteria",
    "demo_report",
    "draw_run",
    "metric_names",
    "plot_curves",
    "report_directory",
    "verdict",
]
export_lazily(
    __name__,
    {
        "nnprobe.report.demo": ("demo_report",),
        "nnprobe.report.directory": ("metric_names", "plot_curves", "report_directory"),
        "nnprobe.report.document": ("Report",),
        "nnprobe.report.run_figures": ("CAPTIONS", "draw_run"),
        "nnprobe.report.verdicts": ("CLAIMS", "THRESHOLDS", "Verdict", "add_verdict", "criteria", "verdict"),
    },
)
