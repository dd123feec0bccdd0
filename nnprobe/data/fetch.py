"""``nnprobe data fetch``: download the standard files from their public mirrors, verified by MD5."""

from __future__ import annotations

import hashlib
import shutil
import tarfile
import urllib.error
import urllib.request
from pathlib import Path
from typing import TypedDict

from tqdm.auto import tqdm

from nnprobe.data.paths import cache_dir
from nnprobe.errors import NNProbeError
from nnprobe.io import atomic_path


class _Source(TypedDict):
    mirrors: list[str]
    files: dict[str, str]  # file name -> MD5


SOURCES: dict[str, _Source] = {
    "mnist": {
        "mirrors": [
            "https://ossci-datasets.s3.amazonaws.com/mnist/",
            "https://storage.googleapis.com/cvdf-datasets/mnist/",
        ],
        "files": {
            "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
            "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
            "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
            "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
        },
    },
    "fashion-mnist": {
        "mirrors": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
        "files": {
            "train-images-idx3-ubyte.gz": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
            "train-labels-idx1-ubyte.gz": "25c81989df183df01b3e8a0aad5dffbe",
            "t10k-images-idx3-ubyte.gz": "bef4ecab320f06d8554ea6380940ec79",
            "t10k-labels-idx1-ubyte.gz": "bb300cfdad3c16e7a12a480ee83cd310",
        },
    },
    "cifar10": {
        "mirrors": ["https://www.cs.toronto.edu/~kriz/"],
        "files": {"cifar-10-python.tar.gz": "c58f30108f718f92721af3b95e74349a"},
    },
}


def md5sum(path: Path) -> str:
    digest = hashlib.md5()  # noqa: S324 -- integrity check against the publishers' MD5 lists
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _download(url: str, target: Path, expected_md5: str, progress: bool) -> None:
    with atomic_path(target) as tmp:
        with urllib.request.urlopen(url, timeout=30) as response, open(tmp, "wb") as out:
            total = int(response.headers.get("Content-Length") or 0)
            with tqdm(total=total or None, unit="B", unit_scale=True, desc=target.name, disable=not progress) as bar:
                for block in iter(lambda: response.read(1 << 16), b""):
                    out.write(block)
                    bar.update(len(block))
        got = md5sum(tmp)
        if got != expected_md5:
            raise NNProbeError(
                f"{url} has MD5 {got}, expected {expected_md5}", "the mirror served a wrong file; retry later"
            )


def fetch(name: str, dest: str | Path | None = None, progress: bool = True) -> Path:
    """Download dataset ``name`` into ``dest`` (default: the user cache); returns the dataset directory.

    Files already present with the right checksum are kept. Without network access the error says where to
    put the files by hand.
    """
    if name not in SOURCES:
        raise NNProbeError(
            f"nothing to fetch for '{name}'",
            f"fetchable datasets: {', '.join(SOURCES)}; digits and synthetic need no files",
        )
    source = SOURCES[name]
    directory = Path(dest).expanduser() if dest else cache_dir()
    directory = directory / name
    directory.mkdir(parents=True, exist_ok=True)
    for filename, md5 in source["files"].items():
        target = directory / filename
        if target.is_file() and md5sum(target) == md5:
            continue
        errors = []
        for mirror in source["mirrors"]:
            try:
                _download(mirror + filename, target, md5, progress)
                break
            except (urllib.error.URLError, OSError, NNProbeError) as exc:
                errors.append(f"{mirror}: {getattr(exc, 'reason', exc)}")
        else:
            raise NNProbeError(
                f"could not download {filename} for {name} ({'; '.join(errors)})",
                f"without network access, copy the files by hand: {', '.join(source['files'])} into {directory} "
                f"(or any directory passed as --data-dir / NNPROBE_DATA)",
            )
    if name == "cifar10":
        with tarfile.open(directory / "cifar-10-python.tar.gz") as tar:
            tar.extractall(directory, filter="data")
        unpacked = directory / "cifar-10-batches-py"
        return unpacked if unpacked.is_dir() else directory
    return directory


def remove(name: str, dest: str | Path | None = None) -> None:
    """Delete a fetched dataset from the cache."""
    directory = (Path(dest) if dest else cache_dir()) / name
    shutil.rmtree(directory, ignore_errors=True)
