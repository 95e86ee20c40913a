"""The instrument: frozen bytes (golden file), an independent re-implementation, Hamming top-k."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from phase2_assets.compute.methods import instrument

GOLDEN = Path(__file__).parent / "golden" / "instrument_v1.json"


def _golden() -> dict:
    return json.loads(GOLDEN.read_text(encoding="utf-8"))


def _hand_encode(x: np.ndarray, bits: int, seed: int) -> np.ndarray:
    """The documented layout, written from the docstring without calling the module."""
    r = np.random.Generator(np.random.PCG64(seed)).standard_normal((bits, x.shape[1]))
    r = r.astype(np.float32)
    signs = (np.asarray(x, dtype=np.float32) @ r.T) > 0
    return np.packbits(signs, axis=1, bitorder="little")


def _naive_topk(q: np.ndarray, c: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Hamming distance bit by bit in pure Python; order by (distance, row)."""
    ids, dists = [], []
    for qrow in q:
        d = [
            sum(bin(int(a) ^ int(b)).count("1") for a, b in zip(qrow, crow, strict=True))
            for crow in c
        ]
        order = sorted(range(len(c)), key=lambda j: (d[j], j))[:k]
        ids.append(order)
        dists.append([d[j] for j in order])
    return np.array(ids, dtype=np.int64), np.array(dists, dtype=np.int32)


# ---- golden: the bytes are frozen --------------------------------------------------------------


def test_golden_file_version_matches_instrument_version():
    assert instrument.INSTRUMENT_VERSION == _golden()["instrument_version"]


@pytest.mark.parametrize("bits", [8, 16, 64])
def test_golden_codes_byte_for_byte(bits):
    g = _golden()
    vectors = np.array(g["vectors"], dtype=np.float64)
    assert vectors.shape == (6, 16)
    codes = instrument.encode(vectors, bits, g["seed"])
    assert codes.dtype == np.uint8
    assert codes.shape == (6, bits // 8)
    assert [row.tobytes().hex() for row in codes] == g["codes"][str(bits)]


def test_golden_file_is_self_consistent_with_documented_layout():
    # The frozen hex must also be what the documented algorithm gives (guards the fixture itself).
    g = _golden()
    vectors = np.array(g["vectors"], dtype=np.float64)
    for bits in (8, 16, 64):
        hand = _hand_encode(vectors, bits, g["seed"])
        assert [row.tobytes().hex() for row in hand] == g["codes"][str(bits)]


# ---- independent re-implementation -------------------------------------------------------------


@pytest.mark.parametrize(("dim", "bits", "seed"), [(16, 8, 0), (32, 64, 42), (24, 136, 7)])
def test_encode_matches_hand_implementation(dim, bits, seed):
    x = np.random.default_rng(123).standard_normal((40, dim)).astype(np.float32)
    np.testing.assert_array_equal(instrument.encode(x, bits, seed), _hand_encode(x, bits, seed))


def test_encode_is_independent_of_chunking_and_fills_out():
    x = np.random.default_rng(5).standard_normal((17, 12)).astype(np.float32)
    whole = instrument.encode(x, 32, 3)
    out = np.zeros((17, 4), dtype=np.uint8)
    res = instrument.encode(x, 32, 3, chunk=4, out=out)
    assert res is out
    np.testing.assert_array_equal(out, whole)


def test_encode_rejects_bad_out_array():
    x = np.ones((3, 4), dtype=np.float32)
    with pytest.raises(ValueError, match="uint8"):
        instrument.encode(x, 16, 0, out=np.zeros((3, 3), dtype=np.uint8))


def test_exact_zero_projection_gives_bit_zero():
    codes = instrument.encode(np.zeros((2, 8), dtype=np.float32), 64, 1)
    assert not codes.any()


def test_unpack_inverts_packing_bit_order():
    # bit 0 -> LSB of byte 0, bit 9 -> second-lowest bit of byte 1.
    bits = np.zeros((1, 16), dtype=np.uint8)
    bits[0, [0, 9]] = 1
    packed = np.packbits(bits, axis=1, bitorder="little")
    assert packed.tolist() == [[0b00000001, 0b00000010]]
    np.testing.assert_array_equal(instrument.unpack(packed, 16), bits)


def test_projection_matrix_shape_dtype_and_seed():
    r = instrument.projection_matrix(10, 24, 9)
    assert r.shape == (24, 10)
    assert r.dtype == np.float32
    expected = np.random.Generator(np.random.PCG64(9)).standard_normal((24, 10))
    np.testing.assert_array_equal(r, expected.astype(np.float32))


# ---- nesting and seeds ---------------------------------------------------------------------------


def test_codes_are_nested_across_bit_lengths():
    x = np.random.default_rng(1).standard_normal((25, 20)).astype(np.float32)
    c64 = instrument.encode(x, 64, 42)
    c128 = instrument.encode(x, 128, 42)
    np.testing.assert_array_equal(c128[:, :8], c64)
    np.testing.assert_array_equal(instrument.unpack(c128, 128)[:, :64], instrument.unpack(c64, 64))


def test_same_seed_same_bytes_other_seed_other_bytes():
    x = np.random.default_rng(2).standard_normal((30, 16)).astype(np.float32)
    a = instrument.encode(x, 64, 42)
    b = instrument.encode(x.copy(), 64, 42)
    c = instrument.encode(x, 64, 43)
    assert a.tobytes() == b.tobytes()
    assert a.tobytes() != c.tobytes()
    # Not merely different somewhere: about half of all bits differ between independent seeds.
    frac = np.bitwise_count(a ^ c).sum() / (64 * len(x))
    assert 0.35 < frac < 0.65


@pytest.mark.parametrize("bits", [0, -8, 7, 12, 63])
def test_bits_not_positive_multiple_of_8_raises(bits):
    with pytest.raises(ValueError, match="multiple of 8"):
        instrument.encode(np.ones((2, 4), dtype=np.float32), bits, 0)


def test_encode_rejects_1d_input():
    with pytest.raises(ValueError, match="2-d"):
        instrument.encode(np.ones(4, dtype=np.float32), 8, 0)


# ---- Hamming search ------------------------------------------------------------------------------


def test_hamming_distances_hand_values():
    q = np.array([[0b00000000, 0b11111111]], dtype=np.uint8)
    c = np.array([[0b00000000, 0b11111111], [0b00000111, 0b11111110], [0xFF, 0x00]], dtype=np.uint8)
    assert instrument.hamming_distances(q, c).tolist() == [[0, 4, 16]]


def test_hamming_distances_width_mismatch_raises():
    with pytest.raises(ValueError, match="widths differ"):
        instrument.hamming_distances(np.zeros((1, 2), np.uint8), np.zeros((1, 3), np.uint8))


@pytest.mark.parametrize("nbytes", [3, 16])  # byte path and uint64-word path
@pytest.mark.parametrize(("query_block", "corpus_block"), [(3, 5), (256, 65536), (1, 1)])
def test_hamming_topk_matches_naive_with_ties(nbytes, query_block, corpus_block):
    rng = np.random.default_rng(nbytes)
    base = rng.integers(0, 256, size=(8, nbytes), dtype=np.uint8)
    # Each distinct code appears three times (rows i, i+8, i+16): ties are certain.
    corpus = np.concatenate([base, base, base, rng.integers(0, 256, (5, nbytes), dtype=np.uint8)])
    queries = np.concatenate([base[:3], rng.integers(0, 256, (4, nbytes), dtype=np.uint8)])
    k = 10
    ids, dists = instrument.hamming_topk(
        queries, corpus, k, query_block=query_block, corpus_block=corpus_block
    )
    exp_ids, exp_d = _naive_topk(queries, corpus, k)
    assert ids.dtype == np.int64 and dists.dtype == np.int32
    np.testing.assert_array_equal(ids, exp_ids)
    np.testing.assert_array_equal(dists, exp_d)
    # A query equal to base[0] finds rows 0, 8, 16 at distance 0, in that order.
    assert ids[0, :3].tolist() == [0, 8, 16]
    assert dists[0, :3].tolist() == [0, 0, 0]


@pytest.mark.parametrize("k", [1, 5, 40])
def test_hamming_topk_exact_when_tie_groups_outrun_the_search_margin(k):
    # 1-byte codes over 3,000 rows: hundreds of codes share each distance, so faiss's own
    # top-(k + margin) cannot hold the k-th tie group and the range-search path must decide.
    rng = np.random.default_rng(k)
    corpus = rng.integers(0, 256, size=(3000, 1), dtype=np.uint8)
    queries = rng.integers(0, 256, size=(37, 1), dtype=np.uint8)
    ids, dists = instrument.hamming_topk(queries, corpus, k, query_block=10)
    exp_ids, exp_d = _naive_topk(queries, corpus, k)
    np.testing.assert_array_equal(dists, exp_d)
    np.testing.assert_array_equal(ids, exp_ids)


def test_hamming_topk_ties_prefer_lower_row_across_blocks():
    # Six identical codes; k=4 must return rows 0..3 whatever the block layout.
    corpus = np.tile(np.array([[0xAB, 0xCD]], dtype=np.uint8), (6, 1))
    for cb in (1, 2, 4, 5, 100):
        ids, dists = instrument.hamming_topk(corpus[:1], corpus, 4, corpus_block=cb)
        assert ids.tolist() == [[0, 1, 2, 3]]
        assert dists.tolist() == [[0, 0, 0, 0]]


def test_identical_codes_distance_zero_and_full_recall():
    from phase2_assets.compute.search.metrics import recall_at_k

    x = np.random.default_rng(4).standard_normal((20, 16)).astype(np.float32)
    codes = instrument.encode(x, 128, 42)
    ids, dists = instrument.hamming_topk(codes, codes, 1, query_block=3, corpus_block=5)
    assert ids[:, 0].tolist() == list(range(20))
    assert not dists.any()
    ids5, _ = instrument.hamming_topk(codes, codes, 5)
    assert recall_at_k(ids5, ids5, 5) == 1.0


def test_hamming_topk_clips_k_to_corpus_size():
    corpus = np.array([[1], [3], [0]], dtype=np.uint8)
    ids, dists = instrument.hamming_topk(np.array([[1]], dtype=np.uint8), corpus, 10)
    assert ids.shape == (1, 3)
    assert ids.tolist() == [[0, 1, 2]]  # distances 0, 1, 1: tie between rows 1 and 2
    assert dists.tolist() == [[0, 1, 1]]


def test_hamming_topk_empty_corpus_raises():
    with pytest.raises(ValueError, match="empty corpus"):
        instrument.hamming_topk(np.zeros((1, 8), np.uint8), np.zeros((0, 8), np.uint8), 3)


def test_hamming_topk_refuses_codes_of_different_widths():
    """Query codes made at 128 bits never search a 256-bit corpus (a stale or mixed partition)."""
    with pytest.raises(ValueError, match="code widths differ: 16 vs 32 bytes"):
        instrument.hamming_topk(np.zeros((2, 16), np.uint8), np.zeros((5, 32), np.uint8), 1)
