"""``python -m bench [--quick]``: every target as ``TARGET name measured goal PASS|FAIL``.

Targets (issue 5), each a ratio against a baseline measured in this invocation:
- ``study_time_ratio``: post-embedding Core study through Dagster / the same faiss+numpy calls
  made bare (goal <= 1.3);
- ``study_peak_rss_ratio``: peak RSS of that study run / the float32 corpus matrix (goal <= 1.5);
- ``encode_throughput_ratio``: the embedding asset's encoder path at ``precision: bf16`` (fp16
  on CUDA) / bare float32 ``SentenceTransformer.encode`` at
  the same batch size, on real SciFact passages (goal >= 1.5), and ``encode_min_cosine``, the
  least cosine between the two sides' vectors (goal >= 0.9999);
- ``hamming_topk_ratio``: ``instrument.hamming_topk`` throughput / faiss ``IndexBinaryFlat`` on
  the same codes (goal >= 1.0);
- ``concurrent_training_ratio`` (issue 13): two runs training OPQ at once through ``dagster dev``,
  each step on its share of the cores / one such run alone on every core (goal <= 2.5);
- ``opq_train_time_ratio_<M>B`` / ``opq_recall_loss_<M>B`` (issue 13): OPQ's training seconds
  against PQ's at the same bytes (goal <= 3) and its recall_at_10 loss against faiss's 50-iteration
  OPQ (goal <= 0.01), on the vectors of a finished ``phase2 demo`` (``--data-dir``);
- ``ground_truth_peak_rss_ratio`` (issue 16): the float ground-truth step alone through Dagster,
  every method enabled, on the 1M x 768 partition: peak RSS / the float32 matrix (goal <= 1.5);
- ``contended_training_ratio`` (issue 24): OPQ's training and faiss's k-means on every core,
  each beside a busy process / alone, the worse of the two, OpenMP threads sleeping when idle
  (goal <= 3; ``bench/contention.py``, which also prints the spinning policy's ratios);
- ``method_time_ratio_<name>`` / ``method_peak_rss_ratio_<name>`` (issue 16): every registered
  method on a 500K x 768 partition, worst over its budgets of build + search seconds against PQ's
  at the same bytes (goal <= 3) and of peak RSS against the float32 matrix (goal <= 1.5), with a
  projection of the whole plan in hours (``bench/methods.py``);
- ``plan_hours_after_embedding`` (issue 28): that projection, the whole plan's hours on this
  machine after embedding, from the measured rows (``--only projection`` runs the same
  measurement and prints only it; goal <= 1.5);
- ``scan_speedup_<name>`` (issue 28): faiss's exhaustive scan / the study's for float16, int8,
  int4 (their own faiss index) and binary_asym (against faiss's SQ8 scan) at 500K x 768
  (``bench/scans.py``; goal >= 3).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
from pathlib import Path

from bench import child, concurrency, contention, encode, hamming, methods, opq_budget, scans

SIZES = {"full": (1_000_000, 768, 1000), "quick": (100_000, 384, 300)}
METHOD_SIZES = {"full": (500_000, 768, 1000), "quick": (20_000, 128, 100)}
TARGETS = [
    "study",
    "ground_truth",
    "encode",
    "hamming",
    "concurrency",
    "contention",
    "opq",
    "methods",
    "projection",
    "scans",
]


def _phase(*args: str) -> dict:
    """One phase of the Core study bench (``bench.study``) in a fresh interpreter."""
    return child("bench.study", *args)


def target(name: str, measured: float, goal: str) -> str:
    op, value = goal[:2], float(goal[2:])
    ok = measured <= value if op == "<=" else measured >= value
    shown = f"{measured:.5f}" if abs(value) >= 0.99 and value < 1 else f"{measured:.3f}"
    return f"TARGET {name} {shown} {goal} {'PASS' if ok else 'FAIL'}"


def machine() -> str:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
        mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    except (OSError, ValueError):
        mem = float("nan")
    return f"{cpu}, {os.cpu_count()} cores, {mem:.0f} GiB RAM, Python {platform.python_version()}"


def _flush_print(text: str) -> None:
    print(text, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="100K x 384 instead of 1M x 768")
    parser.add_argument("--workdir", help="keep the synthetic partition here (default: temp)")
    parser.add_argument("--only", nargs="*", choices=TARGETS, help="targets to run (default: all)")
    parser.add_argument(
        "--data-dir",
        default="data",
        help="a finished `phase2 demo` (SciFact x MiniLM vectors) for the opq target",
    )
    args = parser.parse_args()
    size = "quick" if args.quick else "full"
    n, dim, n_queries = SIZES[size]
    only = set(args.only or TARGETS)
    print(f"# bench ({size}): {machine()}", flush=True)
    lines, details = [], {}
    with tempfile.TemporaryDirectory(prefix="phase2-bench-", dir=args.workdir) as tmp:
        work = Path(tmp)
        if only & {"study", "hamming", "ground_truth"}:
            _phase("prepare", str(work), str(n), str(dim), str(n_queries))
        if "study" in only:
            bare = _phase("bare", str(work))
            ours = _phase("study", str(work))
            matrix = n * dim * 4
            details["study"] = {"bare": bare, "study": ours, "matrix_bytes": matrix}
            print(f"# study {ours['seconds']:.1f}s vs bare {bare['seconds']:.1f}s", flush=True)
            lines.append(target("study_time_ratio", ours["seconds"] / bare["seconds"], "<=1.3"))
            lines.append(target("study_peak_rss_ratio", ours["peak_rss_bytes"] / matrix, "<=1.5"))
            print(lines[-2], lines[-1], sep="\n", flush=True)
        if "ground_truth" in only:
            res = _phase("ground_truth", str(work))
            details["ground_truth"] = res
            ratio = res["peak_rss_bytes"] / (n * dim * 4)
            lines.append(target("ground_truth_peak_rss_ratio", ratio, "<=1.5"))
            print(lines[-1], flush=True)
        if "hamming" in only:
            res = hamming.compare(work, quick=args.quick)
            details["hamming"] = res
            lines.append(target("hamming_topk_ratio", res["ratio"], ">=1.0"))
            print(lines[-1], flush=True)
        if "concurrency" in only:
            res = concurrency.compare(work)
            details["concurrency"] = res
            lines.append(target("concurrent_training_ratio", res["ratio"], "<=2.5"))
            print(lines[-1], flush=True)
    if "contention" in only:
        res = contention.compare()
        details["contention"] = res
        lines.append(target("contended_training_ratio", res["ratio"], "<=3.0"))
        for name, row in res["by_workload"].items():
            print(
                f"# {name} beside a busy process / alone: "
                f"PASSIVE {row['PASSIVE']['ratio']:.2f}x, ACTIVE {row['ACTIVE']['ratio']:.2f}x",
                flush=True,
            )
        print(lines[-1], flush=True)
    if only & {"methods", "projection"}:
        with tempfile.TemporaryDirectory(prefix="phase2-bench-methods-", dir=args.workdir) as tmp:
            measured = methods.compare(Path(tmp), *METHOD_SIZES[size], log=_flush_print)
        projected = methods.projection(measured)
        details["methods"] = {**measured, "projection": projected}
        by_method: dict[str, list[dict]] = {}
        for row in measured["rows"]:
            by_method.setdefault(row["method"], []).append(row)
        for name, rows in by_method.items() if "methods" in only else ():
            worst_time = max(r["time_ratio"] for r in rows)
            worst_rss = max(r["rss_ratio"] for r in rows)
            lines.append(target(f"method_time_ratio_{name}", worst_time, "<=3.0"))
            lines.append(target(f"method_peak_rss_ratio_{name}", worst_rss, "<=1.5"))
            print(lines[-2], lines[-1], sep="\n", flush=True)
        print(methods.markdown(measured, projected), flush=True)
        for name, hours in projected["hours_by_method"].items():
            print(f"# plan hours {name}: {hours:.2f}", flush=True)
        lines.append(target("plan_hours_after_embedding", projected["hours"], "<=1.5"))
        print(lines[-1], flush=True)
    if "scans" in only:
        with tempfile.TemporaryDirectory(prefix="phase2-bench-scans-", dir=args.workdir) as tmp:
            res = scans.compare(Path(tmp), *METHOD_SIZES[size], log=_flush_print)
        details["scans"] = res
        for name, row in res["rows"].items():
            lines.append(target(f"scan_speedup_{name}", row["ratio"], ">=3.0"))
            print(lines[-1], flush=True)
    if "opq" in only:
        rows = opq_budget.compare(Path(args.data_dir))
        details["opq"] = rows
        for m, row in rows.items():
            lines.append(target(f"opq_train_time_ratio_{m}B", row["time_ratio"], "<=3.0"))
            lines.append(target(f"opq_recall_loss_{m}B", -row["recall_gap"], "<=0.01"))
            print(lines[-2], lines[-1], sep="\n", flush=True)
    if "encode" in only:
        res = encode.compare(quick=args.quick)
        details["encode"] = res
        lines.append(target("encode_throughput_ratio", res["ratio"], ">=1.5"))
        lines.append(target("encode_min_cosine", res["min_cosine"], ">=0.9999"))
        print(lines[-2], lines[-1], sep="\n", flush=True)
    print("# details " + json.dumps(details, default=str), flush=True)


if __name__ == "__main__":
    main()
