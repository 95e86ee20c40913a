"""Configuration layer: the study file a researcher edits, validated, and what derives from it."""

from phase2_assets.config.study import (
    Study,
    StudyConfigError,
    load_study,
    pair_key,
    split_pair,
)

__all__ = ["Study", "StudyConfigError", "load_study", "pair_key", "split_pair"]
