"""Shared fixtures: a tiny random BERT, a tiny BEIR collection and a study over both
(built by ``phase2_assets.testing.tiny``)."""

from __future__ import annotations

from pathlib import Path

import pytest

from phase2_assets.testing.tiny import write_tiny_beir, write_tiny_model, write_tiny_study


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tiny_beir(tmp_path_factory) -> Path:
    return write_tiny_beir(tmp_path_factory.mktemp("beir") / "tiny")


@pytest.fixture
def tiny_study(tmp_path, tiny_beir, tiny_model) -> Path:
    return write_tiny_study(tmp_path / "tiny.yaml", tiny_beir, tiny_model)
