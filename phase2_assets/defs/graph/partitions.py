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

import warnings
from dataclasses import dataclass

import dagster as dg

from phase2_assets.config import Study


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


def partitioned_check(
    name: str, *, asset, partitions: dg.PartitionsDefinition, **kwargs
) -> dg.AssetCheckSpec:
    """A check partitioned like its asset, so each result records (and the UI shows) the
    partition it judged. Dagster 1.13 calls check partitions a preview; the dependency pins
    1.13.x, the UI test reads the partition back, and the warning is silenced here alone."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=dg.PreviewWarning)
        return dg.AssetCheckSpec(name, asset=asset, partitions_def=partitions, **kwargs)
