"""The ``nnprobe`` command line. Thin: flags -> configs, a :class:`~nnprobe.experiments.Run` or a
:mod:`nnprobe.reproduce` function -> printed results; an :class:`~nnprobe.errors.NNProbeError` is one readable line.

Lazy: ``nnprobe --help`` lists :data:`COMMANDS` without importing them; ``nnprobe <command>`` imports its module only.
Imports sit at the top of each module, none inside functions; what needs torch is reached through the lazy package
exports (:mod:`nnprobe.lazy`: ``from nnprobe import experiments`` at the top, ``experiments.Run`` in the body), so
importing a command module imports no torch. Exception, for now: the ``--help`` defaults of ``margin``, ``codes``
and ``gradnet`` come from ``Run`` (:func:`nnprobe.cli.common.probe_defaults`), which imports torch.
"""

from __future__ import annotations

import importlib
import sys

import click

from nnprobe import __version__
from nnprobe.cli.common import FriendlyGroup

# command -> ("module:attribute", the first sentence of its help, which `nnprobe --help` shortens to fit)
COMMANDS = {
    "codes": ("nnprobe.cli.probes:codes",
              "Activation codes of a ReLU classifier: determinism (redundancy ratio) and categorisation."),
    "data": ("nnprobe.cli.data:command", "List, inspect and download datasets."),
    "demo": ("nnprobe.cli.demo:command",
             "Run the max-margin, activation-code and GradNet probes and write OUT/report.html."),
    "gradnet": ("nnprobe.cli.probes:gradnet", "Train a base network on half the data, snapshot it, and train GradNet "
                "on each snapshot's per-sample gradients of the other half; or, with --checkpoint, GradNet on the "
                "gradients of your trained model."),
    "margin": ("nnprobe.cli.probes:margin", "Train (or load) a classifier and compare its last layer with the "
               "max-margin SVM on its penultimate features: cosine, margins, bias and offsets, test agreement, "
               "curves over training, retrained head."),
    "report": ("nnprobe.cli.report:command", "Turn DIRECTORY (a run: config.json, metrics.jsonl, result JSON, PNGs; "
               "or a sweep: results.sqlite) into overview.html (figures embedded) and overview.md."),
    "reproduce": ("nnprobe.cli.reproduce:command",
                  "Re-run a paper's reference experiments and write a report (add --quick for a CPU-sized run)."),
    "results": ("nnprobe.cli.results:register", "Print the results in PATH: a run directory (its summary), a sweep "
                "directory (one row per point) or a directory of runs (``nnprobe demo``, ``reproduce``: one row per "
                "run)."),
    "sweep": ("nnprobe.cli.sweep:command",
              "Run a grid of points of any probe, resumably, on this machine, a Ray cluster or Slurm."),
    "train": ("nnprobe.cli.train:command",
              "Train a classifier; writes config.json, metrics.jsonl, checkpoints/ and result.json into --out."),
}


def load_command(name: str) -> click.Command:
    """Import the command ``name`` of :data:`COMMANDS` (a module's click command, or its ``register`` function's)."""
    module, _, attribute = COMMANDS[name][0].partition(":")
    target = getattr(importlib.import_module(module), attribute)
    if isinstance(target, click.Command):
        return target
    holder = click.Group()
    target(holder, holder)   # register(main, reproduce): the module adds its command to the group it is given
    return holder.commands[name]


class LazyGroup(FriendlyGroup):
    """A group whose commands (:data:`COMMANDS`) are imported when one of them is used, not to list them."""

    def list_commands(self, ctx):
        return sorted({*self.commands, *COMMANDS})

    def get_command(self, ctx, name):
        if name not in self.commands and name in COMMANDS:
            self.add_command(load_command(name), name)
        return super().get_command(ctx, name)

    def format_commands(self, ctx, formatter):
        names = self.list_commands(ctx)
        limit = formatter.width - 6 - max(len(n) for n in names)   # as click.Group.format_commands
        rows = [(n, (self.commands.get(n) or click.Command(n, help=COMMANDS[n][1])).get_short_help_str(limit))
                for n in names]
        with formatter.section("Commands"):
            formatter.write_dl(rows)


HELP = """Measure the geometry of trained neural-network classifiers.

\b
Probes (each works on zoo models and on your own nn.Module checkpoints):
  margin    does the last linear layer converge to the max-margin SVM
            on the penultimate features?  (Li, Ding, Gao 2018)
  codes     ReLU activation patterns as hash codes: determinism and
            categorisation  (He, Lei, Ji, Tao 2021)
  gradnet   per-sample gradients as features; GradNet vs the base net

\b
Start here (offline, the embedded digits dataset):
  nnprobe demo --out runs/demo        all three probes, one report
  nnprobe reproduce margin --quick    the paper's reference experiments
"""


@click.group(cls=LazyGroup, help=HELP, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="nnprobe")
def main():
    pass


def run() -> None:  # pragma: no cover - console entry point alias
    sys.exit(main())
