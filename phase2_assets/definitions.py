"""The code location Dagster loads (``dg``, ``dagster dev``, ``dagster job launch``): the
components under ``defs/`` — the study of ``defs/study/defs.yaml`` (by default the one named by
$PHASE2_STUDY, else the full plan). Importing it does nothing else."""

from pathlib import Path

import dagster as dg


@dg.definitions
def defs() -> dg.Definitions:
    return dg.load_from_defs_folder(path_within_project=Path(__file__).parent)
