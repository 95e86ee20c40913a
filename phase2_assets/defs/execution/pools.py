"""Concurrency pools: how many steps of a kind may run at once across all runs of an instance.

Two kinds of step would overload a machine if several ran together, whichever runs they are in:

- ``embedding`` — torch on the device (the GPU, or every CPU core): the ``embeddings`` step
  and the X3 adapter's training (``adapter_metrics``). One per device; on a cluster, the
  number of GPUs.
- ``memory_heavy`` — steps that hold a whole corpus of float vectors plus a working copy or a
  trained quantiser: ``float_ground_truth``, ``int8_index``, ``reference_metrics``, ``pq_index``
  and ``method_metrics`` (PQ, OPQ, ITQ, PCA training). On a 2-core, 24 GiB machine one at a time.

Limits live in the instance, not in code: the ``dagster.yaml`` that ``phase2`` writes sets every
pool to 1 (``concurrency: pools: default_limit``); ``dagster instance concurrency set POOL N``
(or the UI's Concurrency page) changes one pool. Other steps belong to no pool and are limited
only by the executor and the run queue.
"""

EMBEDDING = "embedding"
MEMORY_HEAVY = "memory_heavy"
POOLS = (EMBEDDING, MEMORY_HEAVY)

# The Celery queue of a pool's steps (``PHASE2_EXECUTOR=celery``, see ``celery_workers``): the
# embedding steps go to the GPU box's workers; every other step to Dagster's default queue.
QUEUE_TAG = "dagster-celery/queue"
QUEUE_OF_POOL = {EMBEDDING: EMBEDDING}


def step_tags(pool: str) -> dict[str, str]:
    """Op tags of a step of ``pool``: its Celery queue, when the pool has one of its own."""
    return {QUEUE_TAG: QUEUE_OF_POOL[pool]} if pool in QUEUE_OF_POOL else {}
