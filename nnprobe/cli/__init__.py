"""The ``nnprobe`` command line. Thin: flags -> configs, a :class:`~nnprobe.experiments.Run` or a
:mod:`nnprobe.reproduce` function -> printed results; an :class:`~nnprobe.errors.NNProbeError` is one readable line.

Lazy: ``nnprobe --help`` lists :data:`COMMANDS` and the registered probes (:mod:`nnprobe.entries`) without
importing a command module; ``nnprobe <command>`` imports its module only, and every probe command is built from
its entry (:mod:`nnprobe.cli.probes`). Imports sit at the top of each module, none inside functions; what needs
torch is reached through the lazy package exports (:mod:`nnprobe.lazy`: ``from nnprobe import experiments`` at
the top, ``experiments.Run`` in the body), so ``--help`` of any command imports no torch.
"""

from __future__ import annotations

import importlib
import sys

import click

from nnprobe import __version__, entries
from nnprobe.cli import probes
from nnprobe.cli.common import FriendlyGroup

# command -> ("module:attribute", the first sentence of its help, which `nnprobe --help` shortens to fit); the
# probes' commands (train, margin, codes, gradnet, and any probe registered since) come from their entries
COMMANDS = {
    "data": ("nnprobe.cli.data:command", "List, inspect and download datasets."),
    "demo": (
        "nnprobe.cli.demo:command",
        "Run the max-margin, activation-code and GradNet probes and write OUT/report.html.",
    ),
    "report": (
        "nnprobe.cli.report:command",
        "Turn DIRECTORY (a run: config.json, metrics.jsonl, result JSON, PNGs; "
        "or a sweep: results.sqlite) into overview.html (figures embedded) and overview.md.",
    ),
    "reproduce": (
        "nnprobe.cli.reproduce:command",
        "Re-run a paper's reference experiments and write a report (add --quick for a CPU-sized run).",
    ),
    "results": (
        "nnprobe.cli.results:command",
        "Print the results in PATH: a run directory (its summary), a sweep "
        "directory (one row per point) or a directory of runs (``nnprobe demo``, ``reproduce``: one row per "
        "run).",
    ),
    "sweep": (
        "nnprobe.cli.sweep:command",
        "Run a grid of points of any probe, resumably, on this machine, a Ray cluster or Slurm.",
    ),
    "track": (
        "nnprobe.cli.track:command",
        "Measure each probe at each saved checkpoint and draw the curves over training.",
    ),
}


def _first_sentence(text: str) -> str:
    return " ".join(text.split("\n\n")[0].split())


def short_help(name: str) -> str:
    """The first sentence of a command's help, without importing its module."""
    if name in COMMANDS:
        return COMMANDS[name][1]
    return _first_sentence(probes.command_help(entries.get_probe(name)))


def load_command(name: str) -> click.Command:
    """The command ``name``: a module's click command from :data:`COMMANDS`, or a probe's, built from its entry."""
    if name not in COMMANDS:
        return probes.probe_command(entries.get_probe(name))
    module, _, attribute = COMMANDS[name][0].partition(":")
    return getattr(importlib.import_module(module), attribute)


class LazyGroup(FriendlyGroup):
    """A group whose commands (:data:`COMMANDS`) are imported when one of them is used, not to list them."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*self.commands, *COMMANDS, *entries.probe_names()})

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name not in self.commands and (name in COMMANDS or name in entries.probe_names()):
            self.add_command(load_command(name), name)
        return super().get_command(ctx, name)

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(n) for n in names)  # as click.Group.format_commands
        rows = [
            (n, (self.commands.get(n) or click.Command(n, help=short_help(n))).get_short_help_str(limit)) for n in names
        ]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


def _probe_lines() -> str:
    """The probes (entries with a config of their own) with their one-line help, for ``nnprobe --help``."""
    lines = []
    for entry in entries.entries():
        if entry.config_cls is None:
            continue
        first, *rest = (entry.help or short_help(entry.name)).split("\n")
        lines.append(f"  {entry.name.ljust(8)}  {first}")
        lines += [f"  {'':8}  {line}" for line in rest]
    return "\n".join(lines)


HELP = f"""Measure the geometry of trained neural-network classifiers.

\b
Probes (each works on zoo models and on your own nn.Module checkpoints):
{_probe_lines()}

\b
Start here (offline, the embedded digits dataset):
  nnprobe demo --out runs/demo        all three probes, one report
  nnprobe reproduce margin --quick    the paper's reference experiments
"""


@click.group(
    cls=LazyGroup, help=HELP, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100}
)
@click.version_option(__version__, prog_name="nnprobe")
def main() -> None:
    pass


def run() -> None:  # pragma: no cover - console entry point alias
    sys.exit(main())
