"""``nnprobe <probe>``: one command per registered probe, built from its entry (:mod:`nnprobe.entries`).

A probe command's flags are the run's (data, model, training, output: :mod:`nnprobe.cli.common`), the
``--checkpoint`` of a probe that can measure a saved model, and one flag per field of the probe's config,
derived from the field's :func:`~nnprobe.config.option` metadata: name, help, ``[default: ...]``, choices,
on/off form. The body builds the :class:`~nnprobe.experiments.Run`, executes it into ``--out``, draws its
figures and prints the result, the entry's ``details`` and the progress lines of its ``event_text``. Building a
command imports no torch (``nnprobe <probe> --help``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import MISSING, Field, fields
from typing import Any

import click

from nnprobe.cli.common import (
    ByteSize,
    Decorator,
    _help,
    _stack,
    execute_command,
    opt,
    pass_opts,
    print_result,
    print_seeds,
    probe_defaults,
    run_options,
)
from nnprobe.entries import ProbeEntry
from nnprobe.experiments.seeds import SeedsResult


def _value_type(f: Field[Any]) -> type[int] | type[float] | None:
    """The click type of a config field without choices: from its default, else from its annotation."""
    default = f.default if f.default is not MISSING else None
    if isinstance(default, bool):
        return None
    if isinstance(default, (int, float)):
        return type(default)
    annotation = str(f.type)
    if annotation.startswith("int"):
        return int
    if annotation.startswith("float"):
        return float
    return None  # str, and lists given as comma-separated text


def config_option(probe: str, f: Field[Any]) -> Decorator:
    """The click option of one config field (see the module docstring)."""
    meta = f.metadata
    flag = meta["flag"] or f"--{f.name.replace('_', '-')}"
    kind = meta["kind"]
    if kind == "flag":
        negative = meta["negative"] or f"--no-{flag[2:]}"
        return click.option(f"{flag}/{negative}", f.name, default=None, help=_help(probe, f.name, meta["help"]))
    if kind == "bytes":
        default = probe_defaults(probe).get(f.name)
        shown = f"  [default: {default / 2**30:g}G]" if default else ""
        return click.option(flag, f.name, type=ByteSize(), default=None, help=meta["help"] + shown)
    if kind == "path":
        return opt(probe, f.name, meta["help"], flag=flag, type=click.Path(dir_okay=False, exists=True))
    if meta["choices"] is not None:
        return opt(probe, f.name, meta["help"], flag=flag, type=click.Choice(list(meta["choices"])))
    return opt(probe, f.name, meta["help"], flag=flag, type=_value_type(f))


OUTPUT_HELP = (
    "The logits of a --checkpoint model whose forward returns a tuple, dict or object: an index (0) or a "
    "name (logits). Unset: the output itself, .logits, or the one tuple element with a column per class."
)


def config_options(entry: ProbeEntry) -> Decorator:
    """``--checkpoint``, ``--output`` and one option per command-line field of the probe's config."""
    if entry.config_cls is None:
        return _stack([])
    options = [
        opt(entry.name, "checkpoint", entry.checkpoint_help, type=click.Path(dir_okay=False, exists=True)),
        opt(entry.name, "output", OUTPUT_HELP),
    ]
    options += [config_option(entry.name, f) for f in fields(entry.config_cls) if f.metadata.get("cli", False)]
    return _stack(options)


def command_help(entry: ProbeEntry) -> str:
    """The help of ``nnprobe <entry.name>``: the entry's command help, else its one-line help."""
    return entry.command_help or entry.help or f"Run the {entry.name} probe."


def probe_command(entry: ProbeEntry) -> click.Command:
    """The ``nnprobe <entry.name>`` command."""

    def run(opts: dict[str, Any]) -> None:
        event_text = entry.hook("event_text")

        def on_event(kind: str, payload: Any, echo: Callable[[str], None]) -> None:
            line = event_text(kind, payload) if event_text is not None else None
            if line:
                echo(line)

        run_, result, figures = execute_command(entry.name, opts, on_event)
        if (opts.get("seeds") or 1) > 1:
            assert isinstance(result, SeedsResult)  # --seeds N: the N runs' outcome
            print_seeds(opts, result, figures)
            return
        assert not isinstance(result, SeedsResult)
        details = entry.hook("details")

        def extra() -> None:
            text = details(run_, result) if details is not None else ""
            if text:
                click.echo(text)
            if entry.evidence is not None or entry.verdict is not None:
                click.echo(f"finding: {entry.judge(result.summary()).sentence}")

        print_result(opts, result, figures, extra=extra)
        if opts.get("format") != "json":
            for warning in getattr(result, "warnings", None) or []:
                click.echo(f"warning: {warning}", err=True)

    default_out = entry.default_out or f"runs/{entry.name}"
    body = pass_opts(run)
    body.__doc__ = command_help(entry)
    return click.command(entry.name)(run_options(entry.name, default_out)(config_options(entry)(body)))


__all__ = ["OUTPUT_HELP", "command_help", "config_option", "config_options", "probe_command"]
