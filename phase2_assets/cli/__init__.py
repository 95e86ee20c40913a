"""``phase2``: the study's command line, and the runner it uses (a local instance, runs of the
code location executed in this process)."""

from phase2_assets.cli.commands import main

__all__ = ["main"]
