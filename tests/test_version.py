"""One version: the package metadata, ``nnprobe.__version__``, ``nnprobe --version``, run directories, sweeps,
CITATION.cff and the CHANGELOG's top section all say the same."""

from __future__ import annotations

import contextlib
import json
import re
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path

from click.testing import CliRunner

import nnprobe
from nnprobe.cli import main
from nnprobe.experiments.provenance import provenance

ROOT = Path(__file__).resolve().parents[1]


def test_one_version_everywhere():
    v = nnprobe.__version__
    assert re.fullmatch(r"\d+\.\d+\.\d+", v)
    # a checkout on PYTHONPATH, not installed, has no metadata to compare
    with contextlib.suppress(PackageNotFoundError):
        assert version("nnprobe") == v  # the installed metadata reads nnprobe/__init__.py (pyproject: dynamic)
    assert CliRunner().invoke(main, ["--version"]).output.strip() == f"nnprobe, version {v}"
    assert provenance("cpu")["nnprobe"] == v
    top = next(
        line for line in (ROOT / "CHANGELOG.md").read_text(encoding="utf-8").splitlines() if line.startswith("## ")
    )
    assert top.startswith(f"## {v} ")
    assert re.search(rf'^version: "{re.escape(v)}"$', (ROOT / "CITATION.cff").read_text(encoding="utf-8"), re.M)


def test_a_sweep_records_the_version(tmp_path):
    from nnprobe.sweeps import SweepSpec, run_spec

    run_spec(SweepSpec("selftest", grid={"x": [1]}), tmp_path / "sweep", workers=1, progress=False)
    states = [json.loads(p.read_text()) for p in (tmp_path / "sweep").glob("*.json")]
    assert any(s.get("nnprobe") == nnprobe.__version__ for s in states if isinstance(s, dict))


def test_the_package_ships_its_license_citation_and_type_marker():
    assert (ROOT / "nnprobe" / "py.typed").is_file()
    assert "MIT License" in (ROOT / "LICENSE").read_text(encoding="utf-8")
    cff = (ROOT / "CITATION.cff").read_text(encoding="utf-8")
    for arxiv in ("1808.05385", "2101.05490", "1912.09306"):
        assert f"arXiv:{arxiv}" in cff
