"""Half precision: every dimension in 16 bits (faiss SQfp16), the lossless-in-practice reference.

Why: float16 storage is what most vector databases offer first ("halfvec" in pgvector, fp16 in
faiss and FAISS-backed stores). It halves float32's memory; its rounding error (relative 2^-11) is
far below the differences between neighbours, so it shows the price of the second half of float32's
bytes is nearly nothing. faiss's ``IndexScalarQuantizer`` with ``QT_fp16`` stores each coordinate as
an IEEE half and searches exhaustively by inner product on the decoded values.
"""

from __future__ import annotations

import faiss

from phase2_assets.compute.methods.base import Memory, register
from phase2_assets.compute.methods.reference import ScalarQuantized


@register
class Float16(ScalarQuantized):
    name = "float16"
    family = "scalar"
    qtype = faiss.ScalarQuantizer.QT_fp16
    description = "faiss SQfp16: every dimension as an IEEE half, exhaustive inner product."
    peer = "faiss SQfp16, pgvector `halfvec`"
    code_bytes = "2·d"

    def code_bits(self, dim, bits):
        return 16 * dim

    def memory(self, dim, bits):
        return Memory(2.0 * dim, 0)
