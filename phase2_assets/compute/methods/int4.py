"""4-bit scalar quantisation: every dimension in half a byte (faiss SQ4), between int8 and binary.

Why: after int8, the next rung of per-dimension quantisation that vector stores and libraries offer
(faiss ``QT_4bit``; 4-bit "nibble" codes) keeps every dimension but only 16 levels per dimension,
at d/2 bytes per vector: 4x smaller than float32 and still 4x the bytes of a d-bit sign code. The
per-dimension range is the corpus's min/max (as the int8 reference), trained from a streaming
min/max so it equals training on the whole corpus.
"""

from __future__ import annotations

import faiss

from phase2_assets.compute.methods.base import Memory, register
from phase2_assets.compute.methods.reference import ScalarQuantized


@register
class Int4(ScalarQuantized):
    name = "int4"
    family = "scalar"
    qtype = faiss.ScalarQuantizer.QT_4bit
    description = "faiss SQ4: 16 levels per dimension on the corpus min/max range, inner product."
    peer = "faiss SQ4"
    code_bytes = "d/2"
    also_counted = "ranges 2·4·d"

    def code_bits(self, dim, bits):
        return 4 * dim

    def memory(self, dim, bits):
        return Memory(dim / 2, 2 * 4 * dim)  # the per-dimension minimum and width, float32
