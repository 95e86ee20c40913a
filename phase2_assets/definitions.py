"""The code location Dagster loads: the study named by $PHASE2_STUDY (default: the full plan)."""

from phase2_assets.config import load_study
from phase2_assets.defs.build import build_definitions

defs = build_definitions(load_study())
