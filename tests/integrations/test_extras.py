"""Lightning and transformers are optional: nnprobe, its tracker and the integrations package import without them,
and using an adapter without its framework is one readable error naming the extra to install."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import nnprobe

ROOT = Path(nnprobe.__file__).resolve().parents[1]
CODE = """
import json, sys
for name in ("lightning", "pytorch_lightning", "transformers"):
    sys.modules[name] = None            # as if not installed: importing them raises ImportError
import nnprobe, nnprobe.integrations
from nnprobe.tracking import Tracker    # the tracker core needs neither
errors = {}
for attr in ("NNProbeCallback", "NNProbeTrainerCallback"):
    try:
        getattr(nnprobe.integrations, attr)
    except Exception as exc:
        errors[attr] = f"{type(exc).__name__}: {exc}"
print(json.dumps(errors))
"""


def test_the_integrations_import_lazily_and_say_which_extra_is_missing():
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, check=True, cwd=ROOT)
    errors = json.loads(out.stdout.strip().splitlines()[-1])
    assert errors["NNProbeCallback"].startswith("NNProbeError") and "nnprobe[lightning]" in errors["NNProbeCallback"]
    assert "nnprobe[hf]" in errors["NNProbeTrainerCallback"]
