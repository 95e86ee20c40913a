"""Partitions derived from the study config.

The study is indexed by (dataset, model, bits), but Dagster's MultiPartitionsDefinition takes
exactly two dimensions. Encoding: the (dataset, model) pair is one dimension, keyed
``dataset__model`` (e.g. ``scifact__minilm``), and ``bits`` is the second. Three levels follow:

- ``dataset``   — BEIR collections (corpus, queries, qrels): one per dataset.
- ``pair``      — embeddings, float ground truth, int8 index: one per (dataset, model).
- ``pair_bits`` — binary codes, PQ index and their metrics: one per (dataset, model, bits).
- ``adapter_pair`` — the X3 adapter: the pairs of ``exploratory.adapter_pairs`` (same keys).

Lineage stays readable: pair -> dataset is a StaticPartitionMapping built from the config, and
(pair, bits) -> pair maps on the shared ``pair`` dimension, which Dagster infers by itself.
"""

from __future__ import annotations

from dataclasses import dataclass

import dagster as dg

from phase2_assets.config import Study
from phase2_assets.config.study import split_pair


@dataclass(frozen=True)
class StudyPartitions:
    dataset: dg.StaticPartitionsDefinition
    pair: dg.StaticPartitionsDefinition
    pair_bits: dg.MultiPartitionsDefinition
    pair_to_dataset: dg.StaticPartitionMapping
    adapter_pair: dg.StaticPartitionsDefinition  # the pairs X3 trains on (a subset of pair)


def build_partitions(study: Study) -> StudyPartitions:
    pair = dg.StaticPartitionsDefinition(study.pairs())
    bits = dg.StaticPartitionsDefinition([str(b) for b in study.all_bits()])
    return StudyPartitions(
        dataset=dg.StaticPartitionsDefinition(study.dataset_names()),
        pair=pair,
        pair_bits=dg.MultiPartitionsDefinition({"pair": pair, "bits": bits}),
        pair_to_dataset=dg.StaticPartitionMapping(_pairs_by_dataset(study)),
        adapter_pair=dg.StaticPartitionsDefinition(study.adapter_pairs()),
    )


def _pairs_by_dataset(study: Study) -> dict[str, set[str]]:
    """StaticPartitionMapping is keyed by the upstream (dataset) partition."""
    out: dict[str, set[str]] = {}
    for pair, dataset in study.pair_to_dataset().items():
        out.setdefault(dataset, set()).add(pair)
    return out


def pair_bits_key(pair: str, bits: int) -> dg.MultiPartitionKey:
    return dg.MultiPartitionKey({"pair": pair, "bits": str(bits)})


def split_pair_bits(key: dg.MultiPartitionKey | str) -> tuple[str, int]:
    """(pair, bits) of a partition key; also its string form ``bits|pair`` (Dagster orders the
    dimensions by name), which is what a run launched with only a ``dagster/partition`` tag
    (``dagster job launch --tags``) carries."""
    if isinstance(key, dg.MultiPartitionKey):
        dims = key.keys_by_dimension
        return dims["pair"], int(dims["bits"])
    bits, sep, pair = str(key).partition("|")
    if not sep or not bits.isdigit() or not pair:
        raise ValueError(
            f"expected a (bits, pair) partition key like '256|scifact__minilm', got {key!r}"
        )
    return pair, int(bits)


LEVELS = ("dataset", "pair", "bits", "adapter")


def partition_keys(study: Study, level: str, tier: str | None = None) -> list[str]:
    """The partition keys of one level, for one tier or the whole study, in the string form
    Dagster's CLI takes (``dagster job backfill --partitions``, the ``dagster/partition`` tag).

    A tier is a partition set: its datasets, its (dataset, model) pairs, and the bit partitions
    where it plans a binary code or a PQ size. ``adapter`` is X3's pairs (the plan's Tier 3).
    """
    if level not in LEVELS:
        raise ValueError(f"level {level!r}: expected one of {', '.join(LEVELS)}")
    if tier is not None and tier not in study.tiers:
        raise ValueError(f"tier {tier!r} is not in study {study.name!r} ({', '.join(study.tiers)})")
    if level == "adapter":
        return list(study.adapter_pairs())
    names = [tier] if tier else list(study.tiers)
    pairs = [p for p in study.pairs() if set(study.tier_of_pair(p)) & set(names)]
    if level == "pair":
        return pairs
    if level == "dataset":
        return sorted({split_pair(p)[0] for p in pairs})
    keys = []
    for pair in pairs:
        chosen = [study.tiers[n] for n in study.tier_of_pair(pair) if n in names]
        planned = {b for t in chosen for b in [*t.bits, *(8 * m for m in t.pq_bytes)]}
        keys += [str(pair_bits_key(pair, b)) for b in study.all_bits() if b in planned]
    return keys
