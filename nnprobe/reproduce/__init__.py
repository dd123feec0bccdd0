"""The papers' experiments: plans (data) -> runs -> reports beside the reference numbers.

One module per paper, each writing one report that opens with its verdict table: :mod:`~nnprobe.reproduce.margin`
(Li, Ding & Gao; verdicts in :mod:`~nnprobe.reproduce.margin_verdicts`), :mod:`~nnprobe.reproduce.codes` and
:mod:`~nnprobe.reproduce.codes_reference` (He, Lei, Ji & Tao: nnprobe's protocol and the authors' own),
:mod:`~nnprobe.reproduce.gradnet` (Daróczy, Aleksziev & Benczúr); :mod:`~nnprobe.reproduce.demo` runs
``nnprobe demo``. The plans are :mod:`~nnprobe.reproduce.plans`, the shared helpers
:mod:`~nnprobe.reproduce.common`.

A floor between ``report`` / ``sweeps`` and ``cli``: it may import those and everything below; nothing below
imports it. Names are exported lazily (:mod:`nnprobe.lazy`), so the command line reads the plans' constants
without torch.

>>> from nnprobe.reproduce import reproduce_margin
>>> md, html = reproduce_margin(Path("runs/reproduce-margin"), quick=True, only=("blobs",))   # doctest: +SKIP
"""

from typing import TYPE_CHECKING

from nnprobe.lazy import export_lazily

if TYPE_CHECKING:  # the names export_lazily loads on first access, for type checkers
    from nnprobe.reproduce.codes import reproduce_codes
    from nnprobe.reproduce.codes_reference import reproduce_codes_reference
    from nnprobe.reproduce.common import missing_data
    from nnprobe.reproduce.demo import run_demo
    from nnprobe.reproduce.gradnet import reproduce_gradnet
    from nnprobe.reproduce.margin import reproduce_margin

__all__ = [
    "missing_data",
    "reproduce_codes",
    "reproduce_codes_reference",
    "reproduce_gradnet",
    "reproduce_margin",
    "run_demo",
]
export_lazily(
    __name__,
    {
        "nnprobe.reproduce.codes": ("reproduce_codes",),
        "nnprobe.reproduce.codes_reference": ("reproduce_codes_reference",),
        "nnprobe.reproduce.common": ("missing_data",),
        "nnprobe.reproduce.demo": ("run_demo",),
        "nnprobe.reproduce.gradnet": ("reproduce_gradnet",),
        "nnprobe.reproduce.margin": ("reproduce_margin",),
    },
)
