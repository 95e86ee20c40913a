"""Sign-code search, then the shortlist rescored with the float query against int8 documents.

Why: this is sentence-transformers' documented binary retrieval pipeline (Shakir, Aarsen & Lee,
"Binary and Scalar Embedding Quantization for Significantly Faster & Cheaper Retrieval", Hugging
Face blog, 2024; ``semantic_search_faiss(..., rescore_multiplier=4)``): the ``ubinary`` codes
(``sign``) stay in memory and give a Hamming shortlist of ``rescore_multiplier x k`` documents,
whose int8 vectors (kept on disk) are scored against the float32 query, and the best k returned.

The int8 vectors are sentence-transformers' ``int8`` quantisation with the corpus as calibration
set: per-dimension ranges [min, max] of the corpus, step (max - min) / 255, value
clip(floor((x - min) / step), 0, 255) - 128 (a test checks the bytes against
``quantize_embeddings``). As there, the score is the inner product of the float query with those
int8 values, not with dequantised vectors: per query it differs from q . x by a constant and a
per-dimension weighting 1 / step. The operating point is ``depth`` (10): its shortlist is
re-scored, deeper ranks follow in Hamming order (as ``binary_rerank``).

Memory: the sign code in memory (ceil(d/8) bytes); the int8 vectors are external bytes (d per
vector, on disk, read for the shortlist only); the ranges (2 x d float32) are fixed overhead.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from phase2_assets.compute.data.storage import row_blocks
from phase2_assets.compute.methods.base import Built, Memory, Method, hamming_search, register
from phase2_assets.compute.methods.binary_rerank import rescore_shortlist
from phase2_assets.compute.methods.sign import encode_sign, padded_bits


class RescoreParams(BaseModel):
    """``methods.sign_rescore`` in the study config."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    rescore_multiplier: int = Field(
        4, ge=1, description="the Hamming shortlist holds rescore_multiplier x depth documents"
    )
    depth: int = Field(10, ge=1, description="k of the rescoring operating point")


@dataclass(frozen=True)
class RescoreIndex:
    codes: np.ndarray  # (n, ceil(d/8)) uint8 sign codes
    int8: np.ndarray  # (n, d) int8 documents, read for the shortlist only
    ranges: np.ndarray  # (2, d) float32 per-dimension min and max of the corpus


def int8_ranges(vectors: np.ndarray, *, chunk: int = 65536) -> np.ndarray:
    """(2, d) float32 per-dimension min and max, streamed over blocks."""
    if len(vectors) == 0:
        raise ValueError("empty corpus: no int8 ranges")
    lo = np.full(vectors.shape[1], np.inf, dtype=np.float32)
    hi = np.full(vectors.shape[1], -np.inf, dtype=np.float32)
    for _, block in row_blocks(vectors, chunk, np.float32):
        lo, hi = np.minimum(lo, block.min(axis=0)), np.maximum(hi, block.max(axis=0))
    return np.stack([lo, hi])


def quantize_int8(vectors: np.ndarray, ranges: np.ndarray, *, chunk: int = 65536) -> np.ndarray:
    """sentence-transformers' int8: clip(floor((x - min) / step), 0, 255) - 128."""
    starts = ranges[0]
    steps = (ranges[1] - starts) / 255
    steps = np.where(steps == 0, 1, steps).astype(np.float32)
    out = np.empty(vectors.shape, dtype=np.int8)
    for start, block in row_blocks(vectors, chunk, np.float32):
        values = np.clip(np.floor((block - starts) / steps), 0, 255)
        out[start : start + len(block)] = (values - 128).astype(np.int8)
    return out


@register
class SignRescore(Method):
    name = "sign_rescore"
    budget = "reference"
    Params = RescoreParams
    description = (
        "sign's Hamming shortlist of rescore_multiplier x k, rescored with the float query "
        "against int8 documents (sentence-transformers' pipeline; int8 on disk: external bytes)."
    )
    peer = "sentence-transformers binary search + int8 rescoring (`rescore_multiplier`)"
    code_bytes = "⌈d/8⌉"
    also_counted = "ranges 2·4·d; int8 on disk: d external bytes / vector"

    def code_bits(self, dim, bits):
        return padded_bits(dim)

    def memory(self, dim, bits):
        return Memory(padded_bits(dim) / 8, 2 * 4 * dim, external_bytes_per_vector=float(dim))

    def build(self, corpus, bits, settings):
        ranges = int8_ranges(corpus, chunk=settings.corpus_block)
        return Built(
            RescoreIndex(
                codes=encode_sign(corpus, chunk=settings.corpus_block),
                int8=quantize_int8(corpus, ranges, chunk=settings.corpus_block),
                ranges=ranges,
            )
        )

    def search(self, built, queries, k, bits, settings):
        index = built.index
        n = len(index.codes)
        k = min(k, n)
        params = settings.params(self)
        depth = min(params.depth, k)
        shortlist = min(params.rescore_multiplier * depth, n)
        q_codes = encode_sign(queries, chunk=settings.query_block)
        ranked = hamming_search(q_codes, index.codes, max(shortlist, k), settings)
        return rescore_shortlist(index.int8, queries, ranked, shortlist, k, settings)
