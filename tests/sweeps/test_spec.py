import json
import subprocess
import sys

import pytest

from nnprobe.errors import NNProbeError
from nnprobe.sweeps import SweepSpec, expand_points, load_spec
from nnprobe.sweeps.spec import parse_assignments

YAML = """
probe: codes
base: {data: digits, epochs: 2, lr: 1e-2}
grid:
  width: [4, 8]
  depth: [1, 2]
points: [{samples_per_class: 20}, {samples_per_class: 40}]
seeds: 3
"""
TOML = """
probe = "codes"
seeds = 3
points = [{samples_per_class = 20}, {samples_per_class = 40}]
[base]
data = "digits"
epochs = 2
lr = 0.01
[grid]
width = [4, 8]
depth = [1, 2]
"""


def test_yaml_toml_and_json_give_the_same_points(tmp_path):
    (tmp_path / "s.yaml").write_text(YAML)
    (tmp_path / "s.toml").write_text(TOML)
    y, t = load_spec(tmp_path / "s.yaml"), load_spec(tmp_path / "s.toml")
    (tmp_path / "s.json").write_text(json.dumps({k: v for k, v in y.to_dict().items() if k not in ("name", "out")}))
    j = load_spec(tmp_path / "s.json")
    assert y.expand() == t.expand() == j.expand()
    points = y.expand()
    assert len(points) == 2 * 2 * 2 * 3
    assert points[0] == {
        "data": "digits",
        "epochs": 2,
        "lr": 0.01,
        "samples_per_class": 20,
        "width": 4,
        "depth": 1,
        "seed": 0,
    }
    assert isinstance(points[0]["lr"], float)  # YAML 1.1 reads 1e-2 as a string; we do not
    assert y.name == "s"


def test_completed_points_carry_the_probe_defaults():
    spec = SweepSpec("codes", base={"data": "digits"}, grid={"width": [4, 8]}, seeds=[0, 5])
    points = expand_points(spec)
    assert [(p["width"], p["seed"]) for p in points] == [(4, 0), (4, 5), (8, 0), (8, 5)]
    from nnprobe.cli.common import probe_defaults

    defaults = probe_defaults("codes")  # what `nnprobe codes` runs with no flags
    assert all(p["epochs"] == defaults["epochs"] == 10 and p["k"] == defaults["k"] for p in points)
    assert all(p["model"] == "mlp" and p["optimizer"] == defaults["optimizer"] for p in points)


@pytest.mark.parametrize(
    "data, message",
    [
        ({"probe": "codes", "grid": {"width": 4}}, "must be a non-empty list"),
        ({"probe": "codes", "gird": {"width": [4]}}, "unknown key"),
        ({"probe": "codes", "base": {"seed": 1}, "seeds": 2}, "both in 'seeds'"),
        ({"probe": "codes", "seeds": [1, 1]}, "repeats a seed"),
        ({"grid": {"width": [4]}}, "names no probe"),
        ({"probe": "codes", "engine": {"wokers": 2}}, "unknown engine setting"),
    ],
)
def test_bad_specs_are_named(data, message):
    with pytest.raises(NNProbeError, match=message):
        SweepSpec.from_dict(data)


def test_probe_validation_happens_before_running():
    with pytest.raises(NNProbeError, match="unknown 'codes' setting.*widht"):
        expand_points(SweepSpec("codes", grid={"widht": [4]}))
    with pytest.raises(NNProbeError, match="model 'mlp' does not take option"):
        expand_points(SweepSpec("train", grid={"growth": [4]}))
    with pytest.raises(NNProbeError, match="unknown 'margin' setting"):
        expand_points(SweepSpec("margin", grid={"c": [1]}))
    assert [p["C"] for p in expand_points(SweepSpec("margin", grid={"C": [1, None]}))] == [1, None]
    with pytest.raises(NNProbeError, match="unknown criterion"):
        expand_points(SweepSpec("gradnet", base={"criterion": "loudest"}))
    with pytest.raises(NNProbeError, match="unknown probe"):
        expand_points(SweepSpec("nope", grid={"x": [1]}))
    with pytest.raises(NNProbeError, match="same point twice"):
        expand_points(SweepSpec("selftest", points=[{"x": 1}, {"x": 1}]))


def test_cli_assignments():
    assert parse_assignments(["width=4,8", "lr=1e-3,0.1"], lists=True) == {"width": [4, 8], "lr": [0.001, 0.1]}
    assert parse_assignments(["data=mnist:0,1;mnist:2,3"], lists=True) == {"data": ["mnist:0,1", "mnist:2,3"]}
    assert parse_assignments(["normalize=none", "flag=true"], lists=False) == {"normalize": "none", "flag": True}
    with pytest.raises(NNProbeError, match="name=value"):
        parse_assignments(["width"], lists=True)


def test_python_3_10_reads_toml_with_tomli(tmp_path):
    # requires-python is >=3.10, whose standard library has no tomllib: there the sweep module must import
    # (`nnprobe sweep` imports it) and read TOML with tomli, a dependency on 3.10 only. tomli is not installed on
    # 3.11+, so the test lends it tomllib (tomli is the same parser)
    (tmp_path / "s.yaml").write_text(YAML)
    (tmp_path / "s.toml").write_text(TOML)
    code = (
        "import sys, tomllib\n"
        "sys.modules['tomli'] = tomllib\n"
        "sys.modules['tomllib'] = None\n"  # what `import tomllib` finds on Python 3.10: nothing
        "sys.version_info = (3, 10, 14, 'final', 0)\n"
        "from nnprobe.sweeps.spec import load_spec\n"
        f"print(len(load_spec({str(tmp_path / 's.yaml')!r}).expand()))\n"
        f"print(len(load_spec({str(tmp_path / 's.toml')!r}).expand()))\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["24", "24"]
