"""Where a run ran: the versions, the machine and the code that made its numbers, recorded in its ``result.json``
(``provenance``) so that a number can be traced back.

>>> sorted(provenance("cpu"))[:4]
['cpu_count', 'device', 'git_commit', 'git_dirty']
"""

from __future__ import annotations

import os
import platform
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy
import torch

import nnprobe
from nnprobe.training.config import resolve_device


def git_commit(path: Path | None = None) -> tuple[str | None, bool | None]:
    """``(commit, dirty)`` of the git checkout holding nnprobe, or ``(None, None)`` for an installed package."""
    where = Path(path or Path(nnprobe.__file__).resolve().parents[1])
    if not (where / ".git").exists():
        return None, None
    try:
        commit = subprocess.run(
            ["git", "-C", str(where), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "-C", str(where), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return None, None
    return commit or None, bool(status.strip())


def provenance(device: str = "auto") -> dict[str, Any]:
    """The versions (nnprobe, torch, Python, NumPy), the device and its name, the thread count, the machine, the
    git commit of the code (when run from a checkout) and the start time of a run."""
    resolved = resolve_device(device)
    commit, dirty = git_commit()
    return {
        "nnprobe": nnprobe.__version__,
        "torch": torch.__version__,
        "python": platform.python_version(),
        "numpy": numpy.__version__,
        "device": str(resolved),
        "device_name": torch.cuda.get_device_name(resolved)
        if resolved.type == "cuda"
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "cpu_count": os.cpu_count(),
        "platform": platform.platform(),
        "executable": sys.executable,
        "git_commit": commit,
        "git_dirty": dirty,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


__all__ = ["git_commit", "provenance"]
