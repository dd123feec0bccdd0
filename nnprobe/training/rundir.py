"""Run directories: nothing lost, nothing mixed.

A run directory holds one configuration's outputs. :func:`prepare_run_dir` refuses to write into a directory
that already holds something unless asked to ``resume`` (same configuration, checked by a hash) or to
``overwrite`` (clear it first). The hash covers what changes results, not where things were: keys registered with
:func:`register_recorded_key` (the data directory, a file's path, the run's ``record`` of what it found) are
written to ``config.json`` but left out of the hash and of the comparison, so the same files read from another
directory (their sizes and MD5s are in the config) are the same run. ``state.json`` says what happened to the run:
``prepared``, ``running``, ``done``, ``failed`` (with the error) or ``interrupted`` (Ctrl-C or SIGTERM), with
timestamps, host and pid.

Overwrite clears the *whole* directory, not only the files nnprobe knows: a run's directory may also hold
probe results and figures, and keeping them would mix two runs. To make that safe it only clears a directory
nnprobe wrote (one with ``state.json``, or ``config.json`` from before ``state.json`` existed), never one a
run of nnprobe is still writing.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import signal
import socket
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from types import FrameType
from typing import Any, NoReturn

from nnprobe.errors import NNProbeError
from nnprobe.io import to_json, write_json_atomic

MODES = ("new", "resume", "overwrite")
STATE_FILE = "state.json"
CONFIG_FILE = "config.json"
# settings added after a run directory may have been written: {name: value that means "as before the setting
# existed"}. A run stored without such a key resumes under a config that holds it at that value.
_LATER_SETTINGS: dict[str, object] = {}
ANY = object()  # register_later_setting(name, ANY): a run stored without the key resumes whatever its value
# keys (at any depth, inside lists too) that say where or what was found, not what was asked: recorded in
# config.json, left out of the hash and of resume's comparison
_RECORDED_KEYS: set[str] = {"data_dir", "path", "record"}


def register_recorded_key(name: str) -> None:
    """Declare that config keys named ``name`` (at any depth) record a location or a finding, not a setting that
    changes results: they are written to ``config.json`` but a run resumes whatever their value.

    >>> register_recorded_key("scratch_dir")
    >>> config_hash({"lr": 0.1, "scratch_dir": "/tmp/a"}) == config_hash({"lr": 0.1, "scratch_dir": "/b"})
    True
    """
    _RECORDED_KEYS.add(name)


def register_later_setting(name: str, neutral: object) -> None:
    """Declare that settings named ``name`` (at any depth of a run's config) were added in a later nnprobe, and
    that ``neutral`` reproduces the behaviour from before. A run directory written without the key can then be
    resumed by a config that holds ``name: neutral`` (:data:`ANY`: any value, for a record such as the data
    files' digests that older runs did not keep); any other value is a difference, as usual.

    >>> register_later_setting("lr_step_factor", 0.1)
    """
    _LATER_SETTINGS[name] = neutral


class Terminated(KeyboardInterrupt):
    """Raised in the main thread when SIGTERM arrives inside :meth:`RunDir.running` (a scheduler's stop).

    A ``KeyboardInterrupt``, so code that catches ``Exception`` lets it through, like Ctrl-C.
    """

    def __init__(self, signum: int = signal.SIGTERM):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


def config_hash(config: dict[str, Any]) -> str:
    """A short stable hash of a JSON-able config (key order does not matter), of its :func:`config_identity`.

    >>> config_hash({"lr": 0.1, "epochs": 3}) == config_hash({"epochs": 3, "lr": 0.1})
    True
    >>> config_hash({"data": {"data_dir": "/a"}}) == config_hash({"data": {"data_dir": "/b"}})
    True
    """
    text = json.dumps(config_identity(config), sort_keys=True, separators=(",", ":"), allow_nan=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]


def config_identity(config: dict[str, Any]) -> dict[str, Any]:
    """The part of a config that identifies a run: as it reads back from JSON, without the recorded keys
    (:func:`register_recorded_key`).

    >>> config_identity({"data": {"data": "mnist", "data_dir": "/x"}, "files": [{"path": "/x/a", "md5": "0f"}]})
    {'data': {'data': 'mnist'}, 'files': [{'md5': '0f'}]}
    """
    return _strip(_canonical(config))


def _strip(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {k: _strip(v) for k, v in obj.items() if k not in _RECORDED_KEYS}
    if isinstance(obj, list):
        return [_strip(v) for v in obj]
    return obj


def _canonical(config: dict[str, Any]) -> dict[str, Any]:
    """The config as it reads back from JSON (tuples become lists, tensors lists), so hashes survive a reload."""
    return json.loads(to_json(config, indent=None))


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _flatten(obj: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(obj, dict):
        out = {}
        for k, v in obj.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        return out or {prefix[:-1]: {}}
    return {prefix[:-1]: obj}


def config_differences(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """``["train.lr: 0.05 -> 0.1", ...]``: every dotted key whose value differs between two configs.

    >>> config_differences({"train": {"lr": 0.05}}, {"train": {"lr": 0.1}})
    ['train.lr: 0.05 -> 0.1']
    """
    a, b, keys = _differing(old, new)
    return [f"{k}: {_short(a.get(k, _MISSING))} -> {_short(b.get(k, _MISSING))}" for k in keys]


_MISSING = object()


def _differing(old: dict[str, Any], new: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any], list[str]]:
    """Both configs' identities flattened to dotted keys, and the sorted keys whose values differ (or exist on one
    side)."""
    a, b = _flatten(config_identity(old)), _flatten(config_identity(new))
    return a, b, [k for k in sorted(set(a) | set(b)) if a.get(k, _MISSING) != b.get(k, _MISSING)]


def _short(value: object) -> str:
    if not isinstance(value, (str, int, float, bool, list, dict, type(None))):
        return "(absent)"
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _alive_here(state: dict[str, Any]) -> bool:
    """Whether the process a ``running`` state names is alive on this host (other hosts cannot be checked)."""
    pid = state.get("pid")
    if state.get("status") != "running" or not isinstance(pid, int) or state.get("host") != socket.gethostname():
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


@dataclass
class RunDir:
    """A prepared run directory. ``resuming`` is True when an earlier attempt of the same config is continued.

    Use :meth:`running` around the work so ``state.json`` records how it ended.
    """

    path: Path
    config: dict[str, Any]
    config_hash: str
    mode: str = "new"
    resuming: bool = False
    previous_state: dict[str, Any] | None = None
    _depth: int = field(default=0, repr=False)

    @property
    def state_path(self) -> Path:
        return self.path / STATE_FILE

    def read_state(self) -> dict[str, Any]:
        """The current ``state.json`` (an empty dict if there is none)."""
        return _read_json(self.state_path) or {}

    def mark(self, **fields: Any) -> dict[str, Any]:
        """Merge ``fields`` (e.g. ``epoch=3``) into ``state.json`` and stamp ``updated_at``."""
        state = {**self.read_state(), **fields, "updated_at": _now()}
        write_json_atomic(self.state_path, state)
        return state

    @contextlib.contextmanager
    def running(self) -> Iterator[RunDir]:
        """Mark the run ``running``; on exit ``done``, ``failed`` (with the error) or ``interrupted``.

        SIGTERM becomes :class:`Terminated` (a ``KeyboardInterrupt``) while inside, so a scheduler's stop is
        recorded like Ctrl-C; the exception is re-raised after recording. Nested use records only once.

        >>> with prepare_run_dir("runs/x", {"lr": 0.1}).running():   # doctest: +SKIP
        ...     train_somehow()
        """
        if self._depth:
            self._depth += 1
            try:
                yield self
            finally:
                self._depth -= 1
            return
        self._depth = 1
        attempts = int(self.read_state().get("attempts", 0)) + 1
        self.mark(
            status="running",
            pid=os.getpid(),
            host=socket.gethostname(),
            started_at=_now(),
            finished_at=None,
            error=None,
            attempts=attempts,
            config_hash=self.config_hash,
        )
        restore = _catch_sigterm()
        try:
            yield self
        except KeyboardInterrupt as exc:
            self.mark(
                status="interrupted",
                finished_at=_now(),
                error=str(exc) if isinstance(exc, Terminated) else "KeyboardInterrupt",
            )
            raise
        except BaseException as exc:
            self.mark(status="failed", finished_at=_now(), error=f"{type(exc).__name__}: {exc}"[:2000])
            raise
        else:
            self.mark(status="done", finished_at=_now())
        finally:
            self._depth = 0
            restore()


def _catch_sigterm() -> Callable[[], object]:
    """Turn SIGTERM into :class:`Terminated` until the returned function is called (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, frame: FrameType | None) -> NoReturn:
        raise Terminated(signum)

    previous = signal.signal(signal.SIGTERM, handler)
    return lambda: signal.signal(signal.SIGTERM, previous)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return {}


def prepare_run_dir(out_dir: str | os.PathLike[str], config: dict[str, Any], mode: str = "new") -> RunDir:
    """Claim ``out_dir`` for a run of ``config``; write ``config.json`` and ``state.json`` (status ``prepared``).

    ``mode``: ``"new"`` refuses a non-empty directory; ``"resume"`` continues an earlier run of the same
    config (a different config raises an error naming the keys that differ; an empty or missing directory
    simply starts); ``"overwrite"`` clears a directory nnprobe wrote, then starts afresh. Both refuse a run
    that a live process on this host is still writing.

    >>> run = prepare_run_dir("runs/mlp", {"train": {"lr": 0.05}}, mode="resume")   # doctest: +SKIP
    >>> with run.running():                                                          # doctest: +SKIP
    ...     ...
    """
    if mode not in MODES:
        raise NNProbeError(f"unknown run-directory mode '{mode}'", f"use one of: {', '.join(MODES)}")
    path = Path(out_dir)
    if path.exists() and not path.is_dir():
        raise NNProbeError(f"output path {path} is a file, not a directory", "choose a directory for --out")
    config = _canonical(config)
    digest = config_hash(config)
    entries = sorted(path.iterdir()) if path.is_dir() else []
    previous = _read_json(path / STATE_FILE)
    resuming = False
    if entries:
        if previous is not None and _alive_here(previous):
            raise NNProbeError(
                f"{path} is being written by a running process (pid {previous['pid']}, "
                f"started {previous.get('started_at')})",
                f"wait for it or stop it (kill {previous['pid']}); or choose another --out",
            )
        if mode == "new":
            raise NNProbeError(
                f"{path} is not empty ({len(entries)} entries, e.g. {entries[0].name})",
                "pass --resume to continue that run, --overwrite to replace it, or choose another --out",
            )
        if mode == "resume":
            _check_resumable(path, previous, config, digest)
            resuming = True
        else:
            _clear(path, previous is not None)
            previous = None
    path.mkdir(parents=True, exist_ok=True)
    if not resuming:
        write_json_atomic(path / CONFIG_FILE, config)
    run = RunDir(path=path, config=config, config_hash=digest, mode=mode, resuming=resuming, previous_state=previous)
    if resuming:
        run.mark(resumed_at=_now())
    else:
        write_json_atomic(
            run.state_path,
            {"status": "prepared", "config_hash": digest, "created_at": _now(), "updated_at": _now(), "attempts": 0},
        )
    return run


def _check_resumable(path: Path, previous: dict[str, Any] | None, config: dict[str, Any], digest: str) -> None:
    if previous is None:
        raise NNProbeError(
            f"{path} holds no {STATE_FILE}, so it cannot be resumed (not a run, or written by an older nnprobe)",
            "pass --overwrite to replace it, or choose another --out",
        )
    if previous.get("config_hash") == digest:
        return
    old = _read_json(path / CONFIG_FILE) or {}
    if old and _later_settings_only(old, config):
        # only settings added since the run was written, each at the value that behaves as before
        write_json_atomic(path / CONFIG_FILE, config)
        return
    diffs = config_differences(old, config) if old else ["(the stored config.json is missing or unreadable)"]
    shown = "; ".join(diffs[:6]) + (f"; and {len(diffs) - 6} more" if len(diffs) > 6 else "")
    raise NNProbeError(
        f"cannot resume {path}: it was run with a different configuration ({shown})",
        "resume with the same settings, pass --overwrite to discard that run, or choose another --out",
    )


def same_run(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether a part stored under config ``old`` belongs to a run of config ``new``: equal identities
    (:func:`config_identity`), or ``new`` adds only later settings at their neutral values.

    >>> same_run({"data": {"data_dir": "/a"}, "lr": 0.1}, {"data": {"data_dir": "/b"}, "lr": 0.1})
    True
    """
    return not _differing(old, new)[2] or _later_settings_only(old, new)


def _later_settings_only(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether ``new`` differs from the stored ``old`` only by keys ``old`` lacks that are registered later
    settings at their neutral value (see :func:`register_later_setting`)."""
    a, b, keys = _differing(old, new)
    for key in keys:
        name = key.rsplit(".", 1)[-1]
        if key in a or name not in _LATER_SETTINGS:
            return False
        if _LATER_SETTINGS[name] is not ANY and b[key] != _canonical({"v": _LATER_SETTINGS[name]})["v"]:
            return False
    return True


def _clear(path: Path, has_state: bool) -> None:
    """Empty ``path``, only if nnprobe wrote it (``state.json``, or an older run's ``config.json``)."""
    if not has_state and not (path / CONFIG_FILE).is_file():
        raise NNProbeError(
            f"{path} is not empty and does not look like an nnprobe run (no {STATE_FILE} or "
            f"{CONFIG_FILE}); nnprobe will not delete it",
            "choose another --out, or empty it yourself",
        )
    for entry in path.iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
        else:
            entry.unlink()
