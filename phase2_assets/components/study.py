"""The study as a ``dg`` component: its ``defs.yaml`` names a study config, and the component
builds that study's whole graph (assets, checks, jobs, sensors, resources) from it.

A component rather than a module-level ``Definitions``: ``dg list components`` shows it with its
schema, ``dg check yaml`` validates the file, and the study a code location serves is one line
of YAML instead of an import. Which config it reads, in order: ``config`` in the YAML, else
``$PHASE2_STUDY``, else the bundled full plan (``study``); the data folder likewise (``data_dir``,
else ``$PHASE2_DATA_DIR``, else ``./data``).
"""

from __future__ import annotations

import dagster as dg

from phase2_assets.config import load_study
from phase2_assets.defs.build import build_definitions


class StudyComponent(dg.Component, dg.Model, dg.Resolvable):
    """Every asset, check, job and sensor of one binary-retrieval study, built from its config
    (a bundled study name such as ``demo`` or a path to a study YAML)."""

    config: str | None = None
    data_dir: str | None = None

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return build_definitions(load_study(self.config), self.data_dir)
