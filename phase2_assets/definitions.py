"""The code location Dagster loads: the study named by $PHASE2_STUDY (default: the full plan)."""

from phase2_assets.config import load_study
from phase2_assets.defs.build import build_definitions
from phase2_assets.defs.instance import sweep_on_load

# Every entry point loads this module before it runs anything: dead local runs are marked failed
# and their pool slots freed first, so no step waits on a slot a killed process held.
sweep_on_load()

defs = build_definitions(load_study())
