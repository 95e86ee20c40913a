"""Retrieval metrics from top-k id arrays only (never a queries x corpus matrix).

Definitions (docs/methodology.md#metrics):
- recall_at_k = |top-k(method) ∩ top-k(exact float)| / k, averaged over queries.
- overlap_at_10 = Jaccard |A ∩ B| / |A ∪ B| of the two top-10 sets.
- ndcg_at_10: task quality against qrels, linear gain rel, discount 1/log2(rank + 1), ideal from
  the query's judged relevances (pytrec_eval ``ndcg_cut_10``); queries with no positive judgement
  are not evaluated.
- ndcg_at_10_vs_float: fidelity nDCG@10 where doc d's gain is max(s(q, d), 0) if d is in the exact
  float top-10 (s = exact float cosine) and 0 otherwise; the ideal is the exact top-10 itself.

Every function takes integer corpus rows and refuses what cannot be a ranking: a corpus row twice
in one query's top-k (it would be counted twice: nDCG above the ideal, recall of one right row
repeated), an id below -1, and, where the exact top-k is given, fewer columns than the k it holds
(k is min(k, the truth's columns): the truth has fewer than k columns only when the corpus has
fewer than k passages). ``PAD`` (-1, faiss's "no result") is a missing result: never a hit, no
gain, no member of the top-k set.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

RECALL_KS = (1, 5, 10, 50, 100)


PAD = -1  # a missing result (faiss's "no result"): scored as a miss


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def _ranking(ids: np.ndarray, k: int, what: str) -> np.ndarray:
    """The first ``k`` columns of a (queries, ranks) array of corpus rows, refused if it is not
    a ranking: not 2-d, not integers, an id below ``PAD``, or a corpus row twice in one row."""
    ids = np.asarray(ids)
    if ids.ndim != 2:
        raise ValueError(f"{what} must be a 2-d (queries, ranks) array, got shape {ids.shape}")
    if not np.issubdtype(ids.dtype, np.integer):
        raise ValueError(f"{what} must be integer corpus rows, got dtype {ids.dtype}")
    head = ids[:, :k]
    if head.size == 0:
        return head
    if (bad := np.argwhere(head < PAD)).size:
        r, c = bad[0]
        raise ValueError(
            f"{what}: id {int(head[r, c])} at query row {r}, column {c} is not a corpus row "
            f"(ids are >= 0, or {PAD} for no result)"
        )
    order = np.sort(head, axis=1)
    twice = (order[:, 1:] == order[:, :-1]) & (order[:, 1:] != PAD)
    if twice.any():
        r = int(np.argwhere(twice)[0][0])
        value = int(order[r, 1:][twice[r]][0])
        cols = np.flatnonzero(head[r] == value)
        raise ValueError(
            f"{what}: corpus row {value} appears {cols.size} times in query row {r} (columns "
            f"{', '.join(map(str, cols.tolist()))}); a ranking holds each row at most once"
        )
    return head


def _against_truth(pred, truth, k: int, metric: str) -> tuple[np.ndarray, np.ndarray, int]:
    """(pred top-k, truth top-k, k_eff) with k_eff = min(k, the truth's columns), refused when
    the prediction has fewer columns than k_eff: k is never shrunk to what a method returned."""
    pred, truth = np.asarray(pred), np.asarray(truth)
    if pred.ndim != 2 or truth.ndim != 2:
        raise ValueError(
            f"{metric}: ids must be 2-d (queries, ranks), got {pred.shape} and {truth.shape}"
        )
    if pred.shape[0] != truth.shape[0]:
        raise ValueError(f"query counts differ: {pred.shape[0]} vs {truth.shape[0]}")
    k_eff = min(k, truth.shape[1])
    if pred.shape[1] < k_eff:
        raise ValueError(
            f"{metric}: the prediction has {pred.shape[1]} columns, the exact top-{k_eff} needs "
            f"{k_eff}; a method that returns fewer results pads its rows with {PAD}"
        )
    p = _ranking(pred, k, f"{metric}: predicted ids")
    t = _ranking(truth, k, f"{metric}: exact ids")
    return p, t, k_eff


def recall_at_k(pred: np.ndarray, truth: np.ndarray, k: int) -> float:
    """k-recall@k: mean fraction of the exact top-k found in the method's top-k."""
    p, t, k_eff = _against_truth(pred, truth, k, f"recall_at_{k}")
    if p.shape[0] == 0 or k_eff == 0:
        return float("nan")
    p, t = p[:, :k_eff], t[:, :k_eff]
    hits = [np.isin(t_row, p_row[p_row != PAD]).sum() for p_row, t_row in zip(p, t, strict=True)]
    return float(np.mean(hits) / k_eff)


def overlap_at_k(pred: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Mean Jaccard similarity of the two top-k sets."""
    p, t, _ = _against_truth(pred, truth, k, f"overlap_at_{k}")
    vals = []
    for p_row, t_row in zip(p, t, strict=True):
        a, b = set(p_row.tolist()) - {PAD}, set(t_row.tolist()) - {PAD}
        vals.append(len(a & b) / len(a | b) if a | b else 0.0)
    return float(np.mean(vals)) if vals else float("nan")


def ndcg_at_k(pred: np.ndarray, qrels: Sequence[Mapping[int, float]], k: int = 10) -> float:
    """Task nDCG@k against graded judgements; ``qrels[i]`` maps corpus row -> relevance."""
    ranked_ids = _ranking(pred, k, f"ndcg_at_{k}: predicted ids")
    if len(qrels) != ranked_ids.shape[0]:
        raise ValueError(f"{len(qrels)} qrels entries for {ranked_ids.shape[0]} queries")
    disc = _discounts(k)
    vals = []
    for ranked, judged in zip(ranked_ids, qrels, strict=True):
        ideal = sorted((r for r in judged.values() if r > 0), reverse=True)[:k]
        if not ideal:
            continue
        gains = np.array(
            [0.0 if d == PAD else max(judged.get(int(d), 0.0), 0.0) for d in ranked],
            dtype=np.float64,
        )
        dcg = float(gains @ disc[: len(gains)])
        idcg = float(np.asarray(ideal, dtype=np.float64) @ disc[: len(ideal)])
        vals.append(dcg / idcg)
    return float(np.mean(vals)) if vals else float("nan")


def ndcg_vs_float(
    pred: np.ndarray, truth_ids: np.ndarray, truth_scores: np.ndarray, k: int = 10
) -> float:
    """Fidelity nDCG@k with gains = exact float similarity of the exact top-k (clipped at 0)."""
    p, t, k_eff = _against_truth(pred, truth_ids, k, f"ndcg_at_{k}_vs_float")
    disc = _discounts(k)
    vals = []
    for ranked, t_ids, t_scores in zip(p, t, np.asarray(truth_scores)[:, :k_eff], strict=True):
        gain_of = {int(d): max(float(s), 0.0) for d, s in zip(t_ids, t_scores, strict=True)}
        gain_of.pop(PAD, None)
        ideal = np.array(sorted(gain_of.values(), reverse=True))
        idcg = float(ideal @ disc[: len(ideal)])
        if idcg <= 0:
            continue
        gains = np.array([gain_of.get(int(d), 0.0) for d in ranked], dtype=np.float64)
        vals.append(float(gains @ disc[: len(gains)]) / idcg)
    return float(np.mean(vals)) if vals else float("nan")


def retrieval_metrics(
    pred: np.ndarray,
    truth_ids: np.ndarray,
    truth_scores: np.ndarray,
    qrels: Sequence[Mapping[int, float]],
) -> dict[str, float]:
    """Every metric of the results table for one method's top-k ids."""
    row = {f"recall_at_{k}": recall_at_k(pred, truth_ids, k) for k in RECALL_KS}
    row["overlap_at_10"] = overlap_at_k(pred, truth_ids, 10)
    row["ndcg_at_10"] = ndcg_at_k(pred, qrels, 10)
    row["ndcg_at_10_vs_float"] = ndcg_vs_float(pred, truth_ids, truth_scores, 10)
    return row
