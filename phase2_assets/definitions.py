"""The code location Dagster loads (``dg``, ``dagster dev``, ``dagster job launch``): the study
named by $PHASE2_STUDY (default: the full plan). Importing it does nothing else."""

import dagster as dg

from phase2_assets.config import load_study
from phase2_assets.defs.build import build_definitions


@dg.definitions
def defs() -> dg.Definitions:
    return build_definitions(load_study())
