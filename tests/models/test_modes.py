import pytest
from torch import nn

from nnprobe.models.modes import eval_mode


def test_eval_mode_restores_each_module_even_after_an_error():
    net = nn.Sequential(nn.Linear(2, 2), nn.BatchNorm1d(2), nn.Dropout(0.5))
    net[1].eval()  # a frozen BatchNorm inside a training model
    with pytest.raises(RuntimeError), eval_mode(net):
        assert not any(m.training for m in net.modules())
        raise RuntimeError("measurement failed")
    assert [m.training for m in net.modules()] == [True, True, False, True]
