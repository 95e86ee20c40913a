"""faiss product quantisation at the same bytes per vector as the binary code."""

from phase2_assets.compute.analysis import sanity
from phase2_assets.compute.methods import quantizers
from phase2_assets.compute.methods.base import Built, Check, Memory, Method, Stored, register
from phase2_assets.compute.search.metrics import ndcg_at_k


@register
class PQ(Method):
    name = "pq"
    family = "pq"
    budget = "bits"
    description = "faiss IndexPQ, M = bits/8 sub-quantisers of 8 bits, asymmetric distance."
    peer = "faiss IndexPQ"
    code_bytes = "b/8"
    fits_when = "b/8 divides d"
    also_counted = "codebooks 4·256·d"

    follows = "pq"
    in_plan = True
    stored = Stored(
        asset="pq_index",
        format="faiss",
        experiments=("E3", "E6"),
        description=(
            "faiss product quantiser at the same memory as the binary code: M = bits/8 "
            "sub-quantisers of {pq_nbits} bits, inner-product metric, trained on a seeded sample "
            "of up to {pq_train_size} corpus vectors (seed pq_train = {pq_seed}). Skipped where "
            "the tiers do not ask for this PQ size."
        ),
        seeds=(("pq_train", "pq_seed"),),
        index_checks=(
            Check(
                "enough_training_data",
                "faiss wants at least 39 x 256 training points per 8-bit sub-quantiser; fewer "
                "makes PQ an unfairly weak baseline. Warning only (small corpora such as SciFact "
                "train on every vector).",
                warn_only=True,
            ),
        ),
        row_checks=(
            Check(
                "between_random_and_float",
                "PQ recall_at_10 beats a random ranking (k / n_docs) and its task nDCG@10 is not "
                "above float32's by more than the configured slack: a PQ baseline outside these "
                "bounds is broken, not strong or weak.",
            ),
        ),
    )

    def fits(self, dim, bits):
        return dim % (bits // 8) == 0

    def requirement(self, n_docs, dim, bits, settings):
        return quantizers.kmeans_requirement(
            n_docs, settings.pq_train_size, settings.pq_nbits, "PQ"
        )

    def code_bits(self, dim, bits):
        return bits

    def memory(self, dim, bits):
        m = bits // 8
        return Memory(float(m), 4 * dim * 256)  # M codebooks of 256 centroids of dim/M floats

    def build(self, corpus, bits, settings):
        return Built(
            *quantizers.build_pq(
                corpus,
                bits // 8,
                nbits=settings.pq_nbits,
                train_size=settings.pq_train_size,
                seed=settings.pq_seed,
                block=settings.corpus_block,
                progress=settings.progress,
            )
        )

    def search(self, built, queries, k, bits, settings):
        index = built.index
        return quantizers.index_topk(
            index, queries, k, query_block=settings.query_block, progress=settings.progress
        )

    def index_metadata(self, built, bits, settings):
        return {"M": bits // 8, "nbits": settings.pq_nbits}

    def check_index(self, built, corpus, bits, settings):
        report = built.training
        meta = {"n_train": report.n_train, "recommended": report.recommended_min_train}
        if report.warning:
            meta["warning"] = report.warning
        return {"enough_training_data": sanity.Outcome(not report.undertrained, meta)}

    def check_row(self, row, refs, settings):
        return {
            "between_random_and_float": sanity.quantiser_within_bounds(
                row["recall_at_10"],
                refs.n_docs,
                row["ndcg_at_10"],
                ndcg_at_k(refs.truth_ids, refs.qrels, 10),
                settings.check_thresholds["pq_float_ndcg_slack"],
            )
        }
