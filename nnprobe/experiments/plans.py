"""Moved: the plans behind ``nnprobe demo`` and ``nnprobe reproduce`` are :mod:`nnprobe.reproduce.plans`.

This old path stays one release as an alias of that very module (it warns): patching a plan through either
name patches both. It points up a floor, the one exception the layering test lists (``MOVED``).
"""

import importlib
import sys
import warnings

warnings.warn(
    "nnprobe.experiments.plans moved to nnprobe.reproduce.plans; the old name goes in the next release",
    DeprecationWarning,
    stacklevel=2,
)
sys.modules[__name__] = importlib.import_module("nnprobe.reproduce.plans")
