"""The study as a ``dg`` component: its ``defs.yaml`` names a study config, and the component
builds that study's whole graph (assets, checks, jobs, sensors, resources) from it.

A component rather than a module-level ``Definitions``: ``dg list components`` shows it with its
schema, ``dg check yaml`` validates the file, and the study a code location serves is one line
of YAML instead of an import. Which config it reads, in order: ``config`` in the YAML, else
``$PHASE2_STUDY``, else the bundled full plan (``study``); the data folder likewise (``data_dir``,
else ``$PHASE2_DATA_DIR``, else ``./data``); the store its files live in likewise
(``storage_url``, else ``$PHASE2_STORAGE_URL``, else the data folder).

A deployment that serves a second study gives it a code location of its own, whose location
file is two lines (``study_location``)::

    from phase2_assets.components.study import study_location
    defs = study_location("/abs/study_b.yaml", storage_url="s3://bucket/b")
"""

from __future__ import annotations

import dagster as dg

from phase2_assets.config import load_study
from phase2_assets.defs.build import build_definitions


class StudyComponent(dg.Component, dg.Model, dg.Resolvable):
    """Every asset, check, job and sensor of one binary-retrieval study, built from its config
    (a bundled study name such as ``demo`` or a path to a study YAML).

    ``storage_url``: the store this study's files live in (any fsspec URL, e.g.
    ``s3://bucket/study_b``): every asset file, the gate file, the study-wide tables, the
    figures and the study stamp. It wins over ``$PHASE2_STORAGE_URL``, so that one deployment
    (one daemon, Celery workers that run the steps of every location in one process) holds
    several studies, each in its own store; it is checked as that variable is. Left out: the
    variable, else the data folder."""

    config: str | None = None
    data_dir: str | None = None
    storage_url: str | None = None

    def build_defs(self, context: dg.ComponentLoadContext) -> dg.Definitions:
        return study_location(self.config, storage_url=self.storage_url, data_dir=self.data_dir)


def study_location(
    config: str | None, *, storage_url: str | None = None, data_dir: str | None = None
) -> dg.Definitions:
    """One study's code location: its definitions, built from ``config`` (a bundled name or a
    path to a study YAML; None: ``$PHASE2_STUDY``, else the full plan), its files kept in
    ``storage_url`` (else ``$PHASE2_STORAGE_URL``, else the data folder)."""
    return build_definitions(load_study(config), data_dir, storage_url)
