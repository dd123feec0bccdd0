"""``nnprobe report DIR``: one self-contained HTML page for a run directory or a sweep directory."""

from __future__ import annotations

import click

from nnprobe import report


@click.command("report")
@click.argument("directory", type=click.Path(file_okay=False, exists=True))
@click.option(
    "--out",
    type=click.Path(file_okay=False),
    default=None,
    help="Where to write overview.html / overview.md [default: DIRECTORY].",
)
def command(directory: str, out: str | None) -> None:
    """Turn DIRECTORY (a run: config.json, metrics.jsonl, result JSON, PNGs; or a sweep: results.sqlite)
    into overview.html (figures embedded) and overview.md.

    \b
    Examples:
      nnprobe train --out runs/digits && nnprobe report runs/digits
      nnprobe report runs/sweeps/codes_width
    """
    md, page = report.report_directory(directory, out)
    click.echo(f"wrote {page} and {md}")
