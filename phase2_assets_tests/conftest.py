"""Shared fixtures: a tiny random BERT, a tiny BEIR collection and a study over both (built by
``phase2_assets.testing.tiny``), and tiny studies materialised once per session
(``phase2_assets.testing.studies``) for the tests that only read them."""

from __future__ import annotations

from pathlib import Path

import pytest

from phase2_assets.testing.studies import MaterialisedStudy, materialise_tiny_study
from phase2_assets.testing.tiny import write_tiny_beir, write_tiny_model, write_tiny_study


@pytest.fixture(autouse=True)
def _static_images(request, monkeypatch):
    """The figures' PNGs (a headless Chromium per study-wide run) only for the tests that look
    at them, marked ``static_images``; the others run with ``PHASE2_STATIC_IMAGES=0``, and so
    do the processes they start. A session or module fixture takes the setting of the test that
    first needs it."""
    from phase2_assets.compute.report.images import STATIC_IMAGES_ENV

    if request.node.get_closest_marker("static_images"):
        monkeypatch.delenv(STATIC_IMAGES_ENV, raising=False)
    else:
        monkeypatch.setenv(STATIC_IMAGES_ENV, "0")


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory) -> Path:
    return write_tiny_model(tmp_path_factory.mktemp("tiny_model"))


@pytest.fixture(scope="session")
def tiny_beir(tmp_path_factory) -> Path:
    return write_tiny_beir(tmp_path_factory.mktemp("beir") / "tiny")


@pytest.fixture
def tiny_study(tmp_path, tiny_beir, tiny_model) -> Path:
    return write_tiny_study(tmp_path / "tiny.yaml", tiny_beir, tiny_model)


def _shared(built: MaterialisedStudy):
    """Yield a session study; at the end, fail if any test wrote into it (copy_to first)."""
    before = built.fingerprint()
    yield built
    after = built.fingerprint()
    changed = sorted(p for p in before.keys() | after.keys() if before.get(p) != after.get(p))
    assert not changed, (
        f"a test changed the shared study's files {changed[:5]}: "
        "a test that writes must work on study.copy_to(tmp_path)"
    )


@pytest.fixture(scope="session")
def tiny_study_run(tmp_path_factory, tiny_beir, tiny_model):
    """The tiny study (300 passages, 4 bit lengths, every method) with every run of its plan
    materialised once for the session. Read only: a test that writes into its data folder
    takes ``tiny_study_run.copy_to(tmp_path)``."""
    root = tmp_path_factory.mktemp("tiny_study_run")
    yield from _shared(materialise_tiny_study(root, tiny_beir, tiny_model))


@pytest.fixture(scope="session")
def small_corpus_run(tmp_path_factory, tiny_model):
    """The same study on 100 passages, too few for PQ's and OPQ's k-means (256 training
    vectors): every run materialised once for the session, PQ and OPQ rows skipped."""
    root = tmp_path_factory.mktemp("small_corpus_run")
    beir = write_tiny_beir(root / "beir" / "tiny", n_docs=100)
    yield from _shared(materialise_tiny_study(root / "study", beir, tiny_model))
