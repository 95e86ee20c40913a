"""Retrieval metrics from top-k id arrays only (never a queries x corpus matrix).

Definitions (STUDY.md §4, also in the README):
- recall_at_k = |top-k(method) ∩ top-k(exact float)| / k, averaged over queries.
- overlap_at_10 = Jaccard |A ∩ B| / |A ∪ B| of the two top-10 sets.
- ndcg_at_10: task quality against qrels, linear gain rel, discount 1/log2(rank + 1), ideal from
  the query's judged relevances (pytrec_eval ``ndcg_cut_10``); queries with no positive judgement
  are not evaluated.
- ndcg_at_10_vs_float: fidelity nDCG@10 where doc d's gain is max(s(q, d), 0) if d is in the exact
  float top-10 (s = exact float cosine) and 0 otherwise; the ideal is the exact top-10 itself.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

RECALL_KS = (1, 5, 10, 50, 100)


def _discounts(k: int) -> np.ndarray:
    return 1.0 / np.log2(np.arange(2, k + 2, dtype=np.float64))


def recall_at_k(pred: np.ndarray, truth: np.ndarray, k: int) -> float:
    """k-recall@k: mean fraction of the exact top-k found in the method's top-k."""
    if pred.shape[0] != truth.shape[0]:
        raise ValueError(f"query counts differ: {pred.shape[0]} vs {truth.shape[0]}")
    k_eff = min(k, pred.shape[1], truth.shape[1])
    hits = [
        np.intersect1d(p[:k_eff], t[:k_eff], assume_unique=True).size
        for p, t in zip(pred, truth, strict=True)
    ]
    return float(np.mean(hits) / k_eff) if hits else float("nan")


def overlap_at_k(pred: np.ndarray, truth: np.ndarray, k: int = 10) -> float:
    """Mean Jaccard similarity of the two top-k sets."""
    vals = []
    for p, t in zip(pred, truth, strict=True):
        a, b = set(p[:k].tolist()), set(t[:k].tolist())
        vals.append(len(a & b) / len(a | b))
    return float(np.mean(vals)) if vals else float("nan")


def ndcg_at_k(pred: np.ndarray, qrels: Sequence[Mapping[int, float]], k: int = 10) -> float:
    """Task nDCG@k against graded judgements; ``qrels[i]`` maps corpus row -> relevance."""
    if len(qrels) != pred.shape[0]:
        raise ValueError(f"{len(qrels)} qrels entries for {pred.shape[0]} queries")
    disc = _discounts(k)
    vals = []
    for ranked, judged in zip(pred, qrels, strict=True):
        ideal = sorted((r for r in judged.values() if r > 0), reverse=True)[:k]
        if not ideal:
            continue
        gains = np.array([max(judged.get(int(d), 0.0), 0.0) for d in ranked[:k]])
        dcg = float(gains @ disc[: len(gains)])
        idcg = float(np.asarray(ideal, dtype=np.float64) @ disc[: len(ideal)])
        vals.append(dcg / idcg)
    return float(np.mean(vals)) if vals else float("nan")


def ndcg_vs_float(
    pred: np.ndarray, truth_ids: np.ndarray, truth_scores: np.ndarray, k: int = 10
) -> float:
    """Fidelity nDCG@k with gains = exact float similarity of the exact top-k (clipped at 0)."""
    disc = _discounts(k)
    vals = []
    for ranked, t_ids, t_scores in zip(pred, truth_ids, truth_scores, strict=True):
        gain_of = {int(d): max(float(s), 0.0) for d, s in zip(t_ids[:k], t_scores[:k], strict=True)}
        ideal = np.array(sorted(gain_of.values(), reverse=True))
        idcg = float(ideal @ disc[: len(ideal)])
        if idcg <= 0:
            continue
        gains = np.array([gain_of.get(int(d), 0.0) for d in ranked[:k]])
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
