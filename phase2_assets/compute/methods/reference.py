"""Reference rows: float32 (the exact ranking itself) and int8 (faiss SQ8)."""

from typing import ClassVar

import faiss

from phase2_assets.compute.analysis import sanity
from phase2_assets.compute.methods import quantizers
from phase2_assets.compute.methods.base import Built, Check, Memory, Method, Stored, register


@register
class Float32(Method):
    name = "float32"
    family = "reference"
    budget = "reference"
    in_plan = True
    description = "Exact inner product on the float32 vectors: the ground truth itself."
    peer = "exact search (the ground truth)"
    code_bytes = "4·d"

    def code_bits(self, dim, bits):
        return 32 * dim

    def memory(self, dim, bits):
        return Memory(4.0 * dim, 0)


class ScalarQuantized(Method):
    """A faiss scalar quantiser of every dimension (SQ8, SQ4, fp16) on the corpus min/max
    ranges, searched exhaustively by inner product: int8 here, float16 and int4 beside it.
    The scan is faiss's done as matrix products (``quantizers.index_topk``, ``search.decoded``)."""

    budget = "reference"
    qtype: ClassVar[int]

    def build(self, corpus, bits, settings):
        return Built(
            *quantizers.build_scalar(
                corpus, self.qtype, block=settings.corpus_block, progress=settings.progress
            )
        )

    def search(self, built, queries, k, bits, settings):
        return quantizers.index_topk(
            built.index,
            queries,
            k,
            query_block=settings.query_block,
            corpus_block=settings.corpus_block,
            progress=settings.progress,
        )


@register
class Int8(ScalarQuantized):
    name = "int8"
    family = "scalar"
    qtype = faiss.ScalarQuantizer.QT_8bit
    in_plan = True
    description = "faiss SQ8: one byte per dimension, per-dimension min/max ranges."
    peer = "faiss SQ8 (sentence-transformers `int8` uses the same min/max ranges)"
    code_bytes = "d"
    also_counted = "ranges 2·4·d"
    stored = Stored(
        asset="int8_index",
        format="faiss",
        experiments=("E3", "E4-E6"),
        description=(
            "faiss 8-bit scalar quantiser (SQ8): one byte per dimension with per-dimension "
            "min/max ranges from the whole corpus. The high-memory baseline (8·d bits)."
        ),
        row_checks=(
            Check(
                "int8_near_float",
                "int8 keeps recall_at_10 at or above the configured bound (checks."
                "int8_min_recall_at_10, 0.95 by default) against float32: at 8 bits per "
                "dimension quantisation noise should barely move the ranking. Warning only.",
                warn_only=True,
            ),
        ),
    )

    def code_bits(self, dim, bits):
        return 8 * dim

    def memory(self, dim, bits):
        return Memory(float(dim), 2 * 4 * dim)

    def check_row(self, row, refs, settings):
        bound = settings.check_thresholds["int8_min_recall_at_10"]
        recall = row["recall_at_10"]
        return {
            "int8_near_float": sanity.Outcome(
                recall >= bound, {"int8_recall_at_10": recall, "threshold": bound}
            )
        }
