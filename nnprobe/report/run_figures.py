"""Figures of one run, drawn from its ``result.json`` alone (probes compute; this module only draws).

>>> draw_run("runs/margin")   # doctest: +SKIP
{'boundaries': PosixPath('runs/margin/boundaries.png'), 'convergence': PosixPath('runs/margin/convergence.png')}
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from nnprobe.entries import LiveMapping, entries
from nnprobe.experiments import load_result
from nnprobe.report.codes_plots import plot_categorisation
from nnprobe.report.gradnet_plots import plot_learning_curves, plot_snapshot_table
from nnprobe.report.margin_plots import save_convergence, save_feature_boundaries

if TYPE_CHECKING:
    from nnprobe.probes.codes.result import CodesResult
    from nnprobe.probes.gradnet.study import GradNetStudy, GradSpaceResult
    from nnprobe.probes.margin.probe import MarginProbeResult
    from nnprobe.probes.margin.result import MarginResult

# draws one probe's figures: drawer(result, out_dir, title) -> {figure name: path}; each takes its probe's result
Drawer = Callable[[Any, Path, str], dict[str, Path]]

CAPTIONS = LiveMapping(
    lambda: {name: caption for e in entries() for name, caption in e.figures.items()}
)  # name -> caption


def _mode_label(mode: str, result: MarginResult) -> str:
    if result.mode == "binary":
        return "binary"
    return {"ovr": "one-vs-rest", "crammer_singer": "Crammer-Singer"}.get(mode, mode)


def draw_margin(result: MarginProbeResult, out: Path, title: str) -> dict[str, Path]:
    """Boundary figures (2-D features), the convergence curve and the retrained head."""
    files: dict[str, Path] = {}
    if result.plot_features:
        several = len(result.results) > 1
        for mode, r in result.results.items():
            key = f"boundaries_{mode}" if several else "boundaries"
            files[key], _ = save_feature_boundaries(
                out / f"{key}.png",
                r,
                result.plot_features,
                result.plot_labels,
                class_names=result.class_names,
                title=f"{title}: penultimate features, NN head vs SVM ({_mode_label(mode, r)})",
            )
        if result.retrained is not None:
            joint = result.main
            files["retrain"], _ = save_feature_boundaries(
                out / "retrain.png",
                result.retrained,
                result.plot_features,
                result.plot_labels,
                class_names=result.class_names,
                nn_label="retrained head",
                extra_heads={"NN head, jointly trained": (joint.nn_coef, joint.nn_intercept)},
                title=f"{title}: re-initialised head retrained on frozen features vs SVM",
            )
    if len(result.curve) > 1:
        files["convergence"] = save_convergence(
            out / "convergence.png", result.curve, title=f"{title}: last layer vs SVM during training"
        )
    return files


def draw_codes(result: CodesResult, out: Path, title: str) -> dict[str, Path]:
    """The categorisation bars."""
    return {
        "categorisation": plot_categorisation(
            result.summary(), out / "categorisation.png", title=f"{title}: network vs classifiers on its codes"
        )
    }


def draw_gradnet(result: GradNetStudy | GradSpaceResult, out: Path, title: str) -> dict[str, Path]:
    """The snapshot table and learning curves of a GradNet study (nothing for a single model)."""
    if not hasattr(result, "snapshots") or not result.snapshots:
        return {}
    study = result.to_dict()
    return {
        "snapshots": plot_snapshot_table(study, out / "snapshots.png", title=f"{title}: base network vs GradNet"),
        "curves": plot_learning_curves(study, out / "curves.png", title=f"{title}: learning curves"),
    }


# report/ keeps one drawer per probe, found by the probe's name (drawing needs matplotlib and this package's
# styling, which probes must not import); a probe without one gets no figures. See docs/ADDING_A_PROBE.md.
DRAWERS: dict[str, Drawer] = {"margin": draw_margin, "codes": draw_codes, "gradnet": draw_gradnet}


def register_drawer(probe: str, drawer: Drawer) -> None:
    """Draw ``probe``'s figures with ``drawer(result, out_dir, title) -> {figure name: path}``."""
    DRAWERS[probe] = drawer


def draw_run(run_dir: str | Path, title: str | None = None) -> dict[str, Path]:
    """Draw every figure of the run in ``run_dir`` from its ``result.json``; returns ``{name: path}``."""
    out = Path(run_dir)
    run, result = load_result(out)
    drawer = DRAWERS.get(run.probe)
    return {} if drawer is None else drawer(result, out, title or run.data.data)


__all__ = ["CAPTIONS", "DRAWERS", "draw_run", "register_drawer"]
