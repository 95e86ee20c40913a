"""The instrument's codes as a shortlist, re-ranked with the exact float32 inner product.

Why: a sign code ranks the corpus coarsely (Hamming distances are small integers, so many
candidates tie, and the code loses the magnitude of every projection), but the true neighbours
usually sit somewhere in the first few multiples of k. Re-scoring a shortlist of r x k candidates
with the float vectors recovers most of the float ranking at the memory cost of the codes, plus
float vectors that are read only for the shortlist and so can stay on disk. This is the standard
"compressed search, then re-rank" pipeline (Jégou, Tavenard, Douze & Amsaleg, "Searching in one
billion vectors: re-rank with source coding", ICASSP 2011), and the shortlist-then-rescore
pattern for binary text embeddings (Shakir, Aarsen & Lee, "Binary and Scalar Embedding
Quantization for Significantly Faster & Cheaper Retrieval", Hugging Face blog, 2024), which
rescores with the float query against binary or int8 documents; here the documents' own float32
vectors are used, so the order within the shortlist is exact. Its memory is reported honestly:
the floats appear in ``external_bytes_per_vector``, not in the in-memory index.

:func:`shortlist_recall` measures the ceiling of the method: the fraction of the exact top-k
that the Hamming shortlist contains, which no re-ranking can exceed.

Search, per query block: Hamming top-(r x k) with ties by lower row (``instrument.hamming_topk``),
then the candidates' float vectors are gathered (unique rows in ascending order, so a memmap is
read forwards) and scored with one batched float32 product, and the best k are kept by
(score desc, row asc). At most ``settings.corpus_block`` candidate vectors are held at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from phase2_assets.compute import exact_products
from phase2_assets.compute.methods import instrument
from phase2_assets.compute.methods.base import (
    Built,
    Memory,
    Method,
    Settings,
    hamming_search,
    register,
)
from phase2_assets.compute.search.exact_search import merge_topk


@dataclass(frozen=True)
class RerankIndex:
    """The packed codes in memory and the float corpus kept by reference (a memmap stays one)."""

    codes: np.ndarray  # (n, bits/8) uint8, exactly the instrument's codes
    corpus: np.ndarray  # (n, d) float vectors, read only for shortlisted rows
    bits: int


def _check(index: RerankIndex, queries: np.ndarray, bits: int | None) -> None:
    if bits is not None and bits != index.bits:
        raise ValueError(f"index built at {index.bits} bits, searched at {bits}")
    if queries.ndim != 2 or queries.shape[1] != index.corpus.shape[1]:
        raise ValueError(f"queries of shape {queries.shape} for a {index.corpus.shape[1]}-d corpus")


class RerankParams(BaseModel):
    """``methods.binary_rerank`` in the study config."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    factor: int = Field(4, ge=1, description="the Hamming shortlist holds factor x depth rows")
    depth: int = Field(10, ge=1, description="k of the re-ranking operating point")


def _shortlist(
    index: RerankIndex, queries: np.ndarray, k: int, settings: Settings, depth: int | None = None
) -> np.ndarray:
    """(nq, min(max(r x k, depth), n)) Hamming ranking, best first, ties by lower row."""
    factor = settings.params(BinaryRerank).factor
    q_codes = instrument.encode(
        queries, index.bits, settings.projection_seed, chunk=settings.query_block
    )
    return hamming_search(q_codes, index.codes, max(factor * k, depth or 0), settings)


def rerank(
    corpus: np.ndarray, queries: np.ndarray, cand: np.ndarray, k: int, max_rows: int
) -> np.ndarray:
    """Top-k of each row of ``cand`` by the inner product of the float32 query with the stored
    vectors (float32; or int8 values, as sentence-transformers rescores), ties by lower row."""
    m, s = cand.shape
    out = np.empty((m, min(k, s)), dtype=np.int64)
    step = max(1, max_rows // s)  # at most ~max_rows candidate vectors gathered at once
    for a in range(0, m, step):
        sub = cand[a : a + step]
        q = np.ascontiguousarray(queries[a : a + step], dtype=np.float32)
        rows, inverse = np.unique(sub, return_inverse=True)
        vecs = np.asarray(corpus[rows], dtype=np.float32)
        gathered = vecs[inverse.reshape(sub.shape)]  # (len(sub), s, d)
        pairs = np.repeat(q, s, axis=0), gathered.reshape(-1, gathered.shape[2])
        scores = exact_products.row_dots(*pairs).reshape(sub.shape)
        _, out[a : a + len(sub)] = merge_topk(scores, sub, k)
    return out


def rescore_shortlist(
    vectors: np.ndarray,
    queries: np.ndarray,
    ranked: np.ndarray,
    shortlist: int,
    k: int,
    settings: Settings,
) -> np.ndarray:
    """Top-k: each ranking's first ``shortlist`` rows re-scored against ``vectors``
    (``rerank``), then the rest of the ranking in its own order, as a system that only
    re-scores its shortlist returns deeper ranks."""
    out = np.empty((queries.shape[0], k), dtype=np.int64)
    for qs in range(0, queries.shape[0], settings.query_block):
        qe = qs + settings.query_block
        head = rerank(
            vectors, queries[qs:qe], ranked[qs:qe, :shortlist], shortlist, settings.corpus_block
        )
        out[qs:qe] = np.concatenate([head, ranked[qs:qe, shortlist:]], axis=1)[:, :k]
    return out


def shortlist_recall(
    index: RerankIndex, queries: np.ndarray, truth_ids: np.ndarray, k: int, settings: Settings
) -> float:
    """Mean over queries of |shortlist(r x k) ∩ exact top-k| / k: what re-ranking can reach."""
    _check(index, queries, None)
    if truth_ids.shape[0] != queries.shape[0]:
        raise ValueError(f"{truth_ids.shape[0]} truth rows for {queries.shape[0]} queries")
    k_eff = min(k, truth_ids.shape[1], index.codes.shape[0])
    short = _shortlist(index, queries, k_eff, settings)
    hits = [
        np.intersect1d(s, t[:k_eff], assume_unique=True).size
        for s, t in zip(short, truth_ids, strict=True)
    ]
    return float(np.mean(hits) / k_eff) if hits else float("nan")


@register
class BinaryRerank(Method):
    name = "binary_rerank"
    budget = "bits"
    Params = RerankParams
    description = (
        "The instrument's Hamming top-(r x k) shortlist re-scored with exact float32 inner "
        "products (floats stay on disk: external bytes)."
    )
    peer = "binary shortlist + float32 re-ranking"
    code_bytes = "b/8"
    also_counted = "projection 4·b·d; floats on disk: 4·d external bytes / vector"

    def code_bits(self, dim, bits):
        return bits

    def memory(self, dim, bits):
        # The projection is regenerable from its seed but reported; the float vectors are read
        # only for the shortlist, so they are external (on disk), not part of the index.
        return Memory(bits / 8, 4 * bits * dim, external_bytes_per_vector=4.0 * dim)

    def build(self, corpus, bits, settings):
        codes = instrument.encode(
            corpus, bits, settings.projection_seed, chunk=settings.corpus_block
        )
        return Built(RerankIndex(codes=codes, corpus=corpus, bits=bits))

    def search(self, built, queries, k, bits, settings):
        """Re-rank a shortlist of r x ``depth`` (the operating point, 10 by
        default: recall_at_10 and ndcg_at_10 measure that system); deeper ranks, needed for
        recall_at_50/100, continue in Hamming order after the re-ranked shortlist, as a real
        system that only re-scores its shortlist would return them."""
        index = built.index
        _check(index, queries, bits)
        n = index.codes.shape[0]
        k = min(k, n)
        params = settings.params(self)
        depth = min(params.depth, k)
        ranked = _shortlist(index, queries, depth, settings, depth=k)
        s = min(params.factor * depth, n)
        return rescore_shortlist(index.corpus, queries, ranked, s, k, settings)

    def diagnostics(self, built, queries, truth_ids, settings):
        index = built.index
        depth = settings.params(self).depth
        return {
            f"shortlist_recall_at_{depth}": shortlist_recall(
                index, queries, truth_ids, depth, settings
            )
        }
