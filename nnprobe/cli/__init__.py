"""The ``nnprobe`` command line. Thin: parses, calls the API, prints.

Each probe registers its commands from its own module (``COMMAND_MODULES``); errors of type
:class:`~nnprobe.errors.NNProbeError` are printed as one readable message, without a traceback.
"""

from __future__ import annotations

import importlib
import sys

import click

from nnprobe import __version__
from nnprobe.errors import NNProbeError

COMMAND_MODULES = [
    "nnprobe.cli.data",
    "nnprobe.cli.train",
    "nnprobe.cli.demo",
    "nnprobe.cli.margin",
    "nnprobe.cli.codes",
    "nnprobe.cli.gradnet",
    "nnprobe.cli.sweep",
    "nnprobe.cli.report",
    "nnprobe.cli.results",
]


class FriendlyGroup(click.Group):
    """A click group that turns :class:`NNProbeError` into a clean ``Error: ...`` and exit status 2."""

    def invoke(self, ctx):
        try:
            return super().invoke(ctx)
        except NNProbeError as exc:
            raise click.ClickException(str(exc)) from None


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


@click.group(cls=FriendlyGroup, help=HELP, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100})
@click.version_option(__version__, prog_name="nnprobe")
def main():
    pass


@main.group(cls=FriendlyGroup)
def reproduce():
    """Re-run a paper's reference experiments and write a report (add --quick for a CPU-sized run)."""


for _name in COMMAND_MODULES:
    importlib.import_module(_name).register(main, reproduce)


def run() -> None:  # pragma: no cover - console entry point alias
    sys.exit(main())
