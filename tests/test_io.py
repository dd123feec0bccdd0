import pytest

from nnprobe.io import append_jsonl, atomic_path, read_jsonl, write_json_atomic


def test_failed_write_leaves_old_file_intact(tmp_path):
    target = tmp_path / "result.json"
    write_json_atomic(target, {"a": 1})
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text('{"a": 2, "half')
            raise RuntimeError("killed")
    assert target.read_text().strip().replace(" ", "").replace("\n", "") == '{"a":1}'
    assert list(tmp_path.iterdir()) == [target]


def test_jsonl_append_and_read(tmp_path):
    import numpy as np
    import torch

    path = tmp_path / "m.jsonl"
    append_jsonl(path, {"x": torch.tensor(1.5), "y": np.float32(2.0)})
    append_jsonl(path, {"x": 3})
    assert read_jsonl(path) == [{"x": 1.5, "y": 2.0}, {"x": 3}]
    assert read_jsonl(tmp_path / "none.jsonl") == []
