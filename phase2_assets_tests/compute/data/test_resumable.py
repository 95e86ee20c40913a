"""A crashed embedding run resumes from its last complete chunk and gives identical vectors."""

from __future__ import annotations

import numpy as np
import pytest

from phase2_assets.compute.data import resumable


class CountingModel:
    """A deterministic stand-in encoder that counts the texts it encodes (and can crash)."""

    device = "cpu"

    def __init__(self, dim: int = 8, crash_after: int | None = None):
        self.dim, self.crash_after, self.encoded, self.calls = dim, crash_after, 0, 0

    def encode(self, texts, **kwargs):
        if self.crash_after is not None and self.calls >= self.crash_after:
            raise KeyboardInterrupt("simulated kill")
        self.calls += 1
        self.encoded += len(texts)
        seeds = [sum(map(ord, t)) for t in texts]
        vecs = np.stack([np.random.default_rng(s).standard_normal(self.dim) for s in seeds])
        return (vecs / np.linalg.norm(vecs, axis=1, keepdims=True)).astype(np.float32)


TEXTS = [f"passage number {i}" for i in range(23)]


def _run(model, path, texts=TEXTS, model_id="m"):
    return resumable.encode_resumable(
        model, texts, path, dim=8, batch_size=4, chunk=5, model_id=model_id
    )


def test_resume_after_crash_reuses_complete_chunks_and_matches(tmp_path):
    clean, _ = _run(CountingModel(), tmp_path / "clean.npy")
    staged = tmp_path / "staged.npy"
    with pytest.raises(KeyboardInterrupt):
        _run(CountingModel(crash_after=3), staged)  # chunks 0-2 complete, chunk 3 not
    again = CountingModel()
    out, reused = _run(again, staged)
    assert reused == 3
    assert again.encoded == 23 - 15  # only chunks 3 and 4
    np.testing.assert_array_equal(np.asarray(out), np.asarray(clean))


def test_changed_inputs_start_over(tmp_path):
    staged = tmp_path / "staged.npy"
    with pytest.raises(KeyboardInterrupt):
        _run(CountingModel(crash_after=2), staged)
    other = CountingModel()
    _, reused = _run(other, staged, model_id="another-model")
    assert reused == 0 and other.encoded == 23
    with pytest.raises(KeyboardInterrupt):
        _run(CountingModel(crash_after=2), staged)
    edited = CountingModel()
    _, reused = _run(edited, staged, texts=[*TEXTS[:-1], "an edited passage"])
    assert reused == 0 and edited.encoded == 23


def test_corrupt_journal_starts_over(tmp_path):
    staged = tmp_path / "staged.npy"
    with pytest.raises(KeyboardInterrupt):
        _run(CountingModel(crash_after=2), staged)
    resumable.journal_path(staged).write_text("{not json")
    model = CountingModel()
    _, reused = _run(model, staged)
    assert reused == 0 and model.encoded == 23
