import pytest

from nnprobe.data import parse_spec
from nnprobe.errors import NNProbeError


def test_parse_class_lists():
    assert parse_spec("mnist").classes is None
    assert parse_spec("mnist:0,1").classes == (0, 1)
    assert parse_spec("CIFAR-10:3,5").name == "cifar10"
    assert str(parse_spec("mnist:0,1,2")) == "mnist:0,1,2"


def test_parse_synthetic_params():
    spec = parse_spec("synthetic:gauss,k=3,d=10,sep=4.5")
    assert spec.params == {"kind": "gauss", "k": 3, "d": 10, "sep": 4.5}


@pytest.mark.parametrize(
    "bad,fragment",
    [
        ("imagenet", "unknown dataset"),
        ("mnist:a,b", "bad class list"),
        ("mnist:1,1", "repeats"),
        ("mnist:3", "at least two"),
        ("", "empty"),
    ],
)
def test_bad_names_explain_themselves(bad, fragment):
    with pytest.raises(NNProbeError, match=fragment) as info:
        parse_spec(bad)
    assert "fix:" in str(info.value)
