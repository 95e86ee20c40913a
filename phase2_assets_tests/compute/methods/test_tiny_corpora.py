"""Every registered method on tiny corpora: it builds and searches, or says beforehand why it
cannot (``requirement``), so no library is handed what it refuses. Generated over the registry:
a new method is covered without being listed."""

from __future__ import annotations

import numpy as np
import pytest

from phase2_assets.compute.methods import METHODS, Settings

DIM = 96
BUDGETS = (None, 64, 128, 256, 512)
SETTINGS = Settings(corpus_block=64, query_block=16)


def _corpus(n: int) -> np.ndarray:
    """Unit vectors in a narrow cone with exact duplicates: empty k-means clusters are likely."""
    rng = np.random.default_rng(n)
    x = 0.3 * rng.standard_normal((n, DIM)) + 1.0
    x[n // 2 :] = x[: n - n // 2]  # the second half repeats the first
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


@pytest.mark.parametrize("n", [50, 257, 320])
@pytest.mark.parametrize("name", sorted(m for m in METHODS if m != "float32"))
def test_every_method_builds_on_a_tiny_corpus_or_says_why_not(name, n):
    method, corpus = METHODS[name], _corpus(n)
    for bits in BUDGETS:
        if (bits is None) != (method.budget == "reference") or not method.fits(DIM, bits):
            continue
        reason = method.requirement(n, DIM, bits, SETTINGS)
        if reason is not None:
            assert f"{n:,}" in reason  # says what the corpus has
            with pytest.raises(Exception):  # noqa: B017 -- the library's own refusal, any type
                method.build(corpus, bits, SETTINGS)
            continue
        built = method.build(corpus, bits, SETTINGS)
        ids = method.search(built, corpus[:7], 10, bits, SETTINGS)
        assert ids.shape == (7, 10) and ((ids >= 0) & (ids < n)).all()


def test_the_trained_methods_say_why_fifty_passages_are_too_few():
    for name, bits in (("pq", 64), ("opq", 64), ("pca_int8", 512)):
        reason = METHODS[name].requirement(50, 384, bits, Settings())
        assert reason is not None and "50" in reason
    assert METHODS["pq"].requirement(320, 384, 64, Settings()) is None
