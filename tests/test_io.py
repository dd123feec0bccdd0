import pytest

from nnprobe.io import append_jsonl, atomic_path, read_jsonl, write_json_atomic


def test_failed_write_leaves_old_file_intact(tmp_path):
    target = tmp_path / "result.json"
    write_json_atomic(target, {"a": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
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


@pytest.fixture
def umask():
    """Set the process umask for one test and restore it afterwards."""
    import os

    old = os.umask(0o022)
    yield lambda mask: os.umask(mask)
    os.umask(old)


def test_outputs_follow_the_umask(tmp_path, umask):
    import os
    import stat

    import torch

    from nnprobe.io import save_torch_atomic, write_text_atomic

    def mode(p):
        return stat.S_IMODE(os.stat(p).st_mode)

    umask(0o022)  # a shared server's usual umask: colleagues may read
    write_json_atomic(tmp_path / "a.json", {"a": 1})
    save_torch_atomic({"w": torch.zeros(2)}, tmp_path / "c.pt")
    append_jsonl(tmp_path / "m.jsonl", {"x": 1})
    assert [mode(tmp_path / n) for n in ("a.json", "c.pt", "m.jsonl")] == [0o644] * 3
    umask(0o077)  # a private umask is respected too
    write_text_atomic(tmp_path / "b.txt", "x")
    write_json_atomic(tmp_path / "a.json", {"a": 2})  # replacing a file gives the new file's mode
    assert mode(tmp_path / "b.txt") == 0o600 and mode(tmp_path / "a.json") == 0o600


def test_append_is_a_real_append(tmp_path):
    path = tmp_path / "m.jsonl"
    append_jsonl(path, {"epoch": 1})
    inode = path.stat().st_ino
    append_jsonl(path, {"epoch": 2})
    assert path.stat().st_ino == inode  # same file, not an atomic rewrite of the whole log
    assert path.read_text() == '{"epoch": 1}\n{"epoch": 2}\n'


def test_torn_last_line_is_skipped_and_not_glued_onto(tmp_path):
    path = tmp_path / "m.jsonl"
    path.write_text('{"epoch": 1}\n{"epoch": 2, "lo')  # a kill in the middle of writing line 2
    assert read_jsonl(path) == [{"epoch": 1}]
    append_jsonl(path, {"epoch": 2})
    assert path.read_text() == '{"epoch": 1}\n{"epoch": 2}\n'
    (tmp_path / "n.jsonl").write_text('{"a": 1}\n{"a": 2}')  # a complete last line without newline still counts
    assert read_jsonl(tmp_path / "n.jsonl") == [{"a": 1}, {"a": 2}]
    append_jsonl(tmp_path / "n.jsonl", {"a": 3})
    assert (tmp_path / "n.jsonl").read_text() == '{"a": 1}\n{"a": 2}\n{"a": 3}\n'


def test_write_jsonl_atomic_replaces_the_log(tmp_path):
    from nnprobe.io import write_jsonl_atomic

    path = tmp_path / "m.jsonl"
    for e in (1, 2, 3):
        append_jsonl(path, {"epoch": e})
    write_jsonl_atomic(path, [r for r in read_jsonl(path) if r["epoch"] <= 2])
    assert read_jsonl(path) == [{"epoch": 1}, {"epoch": 2}]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.jsonl"]
