"""``python -m nnprobe``: the ``nnprobe`` command line."""

from nnprobe.cli import main

main(prog_name="nnprobe")
