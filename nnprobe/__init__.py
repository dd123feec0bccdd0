"""nnprobe: measure the geometry of trained neural-network classifiers.

Three probes, each on any ``torch.nn.Module`` classifier:

* ``nnprobe.probes.margin``   -- does the last linear layer converge to the max-margin SVM?
* ``nnprobe.probes.codes``    -- ReLU activation patterns as a hash code of the input.
* ``nnprobe.probes.gradnet`` -- per-sample gradients as features (GradNet).

and, past the papers, ``nnprobe.probes.collapse`` -- neural collapse (NC1-NC4) of the penultimate features.

The names a user needs are exported here (``__all__``):

* each probe's config, the whole probe on a trained model, and its result: :class:`MarginConfig`,
  :func:`margin_probe`, :class:`MarginProbeResult`; :class:`CodesConfig`, :func:`codes_probe`,
  :class:`CodesResult`; :class:`GradSpaceConfig`, :func:`gradnet_probe`, :class:`GradSpaceResult`;
  :class:`CollapseConfig`, :func:`collapse_probe`, :class:`CollapseResult`. Each
  ``<probe>_probe`` is that probe package's ``measure`` (``nnprobe.margin_probe is
  nnprobe.probes.margin.measure``), renamed here because the three share one name; the lower levels (such as
  ``nnprobe.probes.margin.measure_margin`` on features and head weights in hand) stay in their packages;
* :class:`Run` (data + model + training + probe config, written to a run directory) and :func:`load_result`;
* :func:`load_dataset` and :class:`Dataset` (wrap your own tensors), :func:`split_head` (any classifier's
  penultimate features and linear head);
* the statistics behind every verdict (:mod:`nnprobe.stats`): :func:`t_interval` and :func:`over_seeds`
  (:class:`Interval`), :func:`mcnemar_exact`, and the rules :func:`threshold_claim`, :func:`comparison_claim`,
  :func:`agreement_claim`, :func:`not_testable`, each returning a :class:`Decision`;
* curves over your own training: :class:`Tracker` (``tracker.step(model, epoch)`` in any loop) and
  :func:`track_checkpoints` (saved checkpoints, ``nnprobe track``), with :class:`ProbeSetConfig` (the fixed
  probe sets they measure); the Lightning and Hugging Face callbacks
  over them live in :mod:`nnprobe.integrations` (optional extras, not imported here);
* :class:`NNProbeError`, the one error type for bad input, and ``__version__``.

Packages export their public names lazily (:mod:`nnprobe.lazy`): ``import nnprobe`` imports no torch, and a name
imports its module on first use.

>>> import nnprobe
>>> ds = nnprobe.load_dataset("digits")                                              # doctest: +SKIP
>>> result = nnprobe.codes_probe(my_model, ds, nnprobe.CodesConfig(k=5))             # doctest: +SKIP
>>> result.summary()["redundancy_ratio_train"]                                      # doctest: +SKIP
"""

from nnprobe.lazy import export_lazily

__version__ = "0.3.0"  # the one place: pyproject, the CLI, run directories and CITATION.cff read it
__all__ = [
    "__version__",
    "NNProbeError",
    "MarginConfig",
    "MarginProbeResult",
    "margin_probe",
    "CodesConfig",
    "CodesResult",
    "codes_probe",
    "GradSpaceConfig",
    "GradSpaceResult",
    "gradnet_probe",
    "CollapseConfig",
    "CollapseResult",
    "collapse_probe",
    "Run",
    "load_result",
    "Dataset",
    "load_dataset",
    "split_head",
    "Decision",
    "Interval",
    "agreement_claim",
    "comparison_claim",
    "mcnemar_exact",
    "not_testable",
    "over_seeds",
    "t_interval",
    "threshold_claim",
    "Tracker",
    "ProbeSetConfig",
    "track_checkpoints",
]
export_lazily(
    __name__,
    {
        "nnprobe.errors": ("NNProbeError",),
        "nnprobe.probes.margin": ("MarginConfig", "MarginProbeResult"),
        "nnprobe.probes.codes": ("CodesConfig", "CodesResult"),
        "nnprobe.probes.gradnet": ("GradSpaceConfig", "GradSpaceResult"),
        "nnprobe.probes.collapse": ("CollapseConfig", "CollapseResult"),
        "nnprobe.experiments": ("Run", "load_result"),
        "nnprobe.data": ("Dataset", "load_dataset"),
        "nnprobe.models": ("split_head",),
        "nnprobe.tracking": ("Tracker", "ProbeSetConfig", "track_checkpoints"),
        "nnprobe.stats": (
            "Decision",
            "Interval",
            "agreement_claim",
            "comparison_claim",
            "mcnemar_exact",
            "not_testable",
            "over_seeds",
            "t_interval",
            "threshold_claim",
        ),
    },
    aliases={
        "margin_probe": "nnprobe.probes.margin:measure",
        "codes_probe": "nnprobe.probes.codes:measure",
        "gradnet_probe": "nnprobe.probes.gradnet:measure",
        "collapse_probe": "nnprobe.probes.collapse:measure",
    },
)
