import pytest

from nnprobe.data import fetch as fetch_mod
from nnprobe.errors import NNProbeError


def test_fetch_without_network_says_where_to_put_files(tmp_path, monkeypatch):
    import urllib.error

    def refuse(*args, **kwargs):
        raise urllib.error.URLError("network unreachable")

    monkeypatch.setattr(fetch_mod.urllib.request, "urlopen", refuse)
    with pytest.raises(NNProbeError) as info:
        fetch_mod.fetch("mnist", dest=tmp_path, progress=False)
    msg = str(info.value)
    assert "train-images-idx3-ubyte.gz" in msg and str(tmp_path / "mnist") in msg


def test_fetch_rejects_wrong_checksum(tmp_path, monkeypatch):
    import io

    class Response(io.BytesIO):
        headers = {"Content-Length": "5"}

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(fetch_mod.urllib.request, "urlopen", lambda *a, **k: Response(b"wrong"))
    with pytest.raises(NNProbeError, match="MD5"):
        fetch_mod.fetch("fashion-mnist", dest=tmp_path, progress=False)
    assert not list((tmp_path / "fashion-mnist").glob("*.gz"))  # nothing half-written left behind


def test_fetch_keeps_verified_files(tmp_path, monkeypatch):
    import hashlib

    payload = b"hello"
    md5 = hashlib.md5(payload).hexdigest()
    monkeypatch.setitem(fetch_mod.SOURCES, "mnist", {"mirrors": ["http://x/"], "files": {"a.gz": md5}})
    (tmp_path / "mnist").mkdir()
    (tmp_path / "mnist" / "a.gz").write_bytes(payload)
    monkeypatch.setattr(fetch_mod.urllib.request, "urlopen", lambda *a, **k: pytest.fail("must not download"))
    assert fetch_mod.fetch("mnist", dest=tmp_path, progress=False) == tmp_path / "mnist"


def test_fetch_unknown():
    with pytest.raises(NNProbeError, match="nothing to fetch"):
        fetch_mod.fetch("digits")
