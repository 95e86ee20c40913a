"""A stored file that changed after its materialisation is refused before any step reads it."""

from __future__ import annotations

import dagster as dg
import pytest

from phase2_assets.defs.graph.partitions import pair_bits_key
from phase2_assets.testing.graph import materialize

PAIR, BITS = "tiny__tiny-bert", 32
METRICS = [dg.AssetKey("binary_metrics")]


@pytest.fixture
def materialised(tmp_path, tiny_study_run):
    """A copy of the session's tiny study, and an instance that holds what its runs recorded
    (the checksums)."""
    copy = tiny_study_run.copy_to(tmp_path)
    instance = dg.DagsterInstance.ephemeral()
    tiny_study_run.record_materialisations(instance)
    codes = copy.data_dir / "binary_codes" / PAIR / f"{BITS}.npy"
    return copy.defs, instance, codes


def test_the_copy_holds_the_recorded_checksums(materialised):
    """What the tests below rely on: the instance records the stored file's size and SHA-256."""
    from phase2_assets.compute.data import storage

    _, instance, codes = materialised
    record = instance.fetch_materializations(
        dg.AssetRecordsFilter(
            asset_key=dg.AssetKey("binary_codes"), asset_partitions=[pair_bits_key(PAIR, BITS)]
        ),
        limit=1,
    ).records[0]
    meta = {k: v.value for k, v in record.asset_materialization.metadata.items()}
    assert meta["sha256"] == storage.sha256_file(codes)
    assert meta["file_bytes"] == codes.stat().st_size


def _metrics(defs, instance):
    return dg.materialize(
        assets=list(defs.assets),
        selection=METRICS,
        partition_key=pair_bits_key(PAIR, BITS),
        resources=dict(defs.resources),
        instance=instance,
        raise_on_error=False,
    )


def _error(result) -> str:
    failure = result.failure_data_for_node("binary_metrics")
    return str(failure.error.cause.message if failure.error.cause else failure.error.message)


def test_a_flipped_byte_is_detected_naming_the_file_and_the_fix(materialised):
    defs, instance, codes = materialised
    raw = bytearray(codes.read_bytes())
    raw[-1] ^= 0xFF  # same size, different content
    codes.write_bytes(bytes(raw))
    result = _metrics(defs, instance)
    assert not result.success
    message = _error(result)
    assert str(codes) in message and "SHA-256 no longer matches" in message
    assert f"Re-materialise binary_codes [{BITS}|{PAIR}]" in message


def test_a_flipped_sign_bit_with_its_mtime_restored_is_detected(materialised, tmp_path):
    """As `cp -p`, rsync or a backup restore leave it: one sign bit of the corpus embeddings
    flipped and the old mtime put back. Before: only a later mtime triggered the re-hash, so
    binary_codes re-materialised from the corrupted vectors with exit 0."""
    import os

    import numpy as np

    defs, instance, _ = materialised
    vectors = tmp_path / "data" / "corpus_embeddings" / f"{PAIR}.npy"
    before = vectors.stat()
    raw = bytearray(vectors.read_bytes())
    raw[-1] ^= 0x80  # the sign bit of the last float32 (little-endian)
    vectors.write_bytes(bytes(raw))
    os.utime(vectors, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert vectors.stat().st_mtime_ns == before.st_mtime_ns
    assert np.load(vectors)[-1, -1] != 0  # a real value, now of the other sign
    result = dg.materialize(
        assets=list(defs.assets),
        selection=[dg.AssetKey("binary_codes")],
        partition_key=pair_bits_key(PAIR, BITS),
        resources=dict(defs.resources),
        instance=instance,
        raise_on_error=False,
    )
    assert not result.success
    failure = result.failure_data_for_node("binary_codes")
    message = str(failure.error.cause.message if failure.error.cause else failure.error.message)
    assert str(vectors) in message and "SHA-256 no longer matches" in message


def test_a_truncated_file_is_detected_by_its_size(materialised):
    defs, instance, codes = materialised
    codes.write_bytes(codes.read_bytes()[:-10])
    message = _error(_metrics(defs, instance))
    assert str(codes) in message and "bytes, but" in message


def test_rematerialising_repairs_it_and_untouched_files_load(materialised):
    defs, instance, codes = materialised
    assert _metrics(defs, instance).success  # untouched: loads without complaint
    codes.write_bytes(codes.read_bytes()[:-10])
    assert materialize(defs, "bits", pair_bits_key(PAIR, BITS), instance).success
    assert _metrics(defs, instance).success
