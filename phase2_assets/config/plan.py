"""What runs next: one plan of the study, read by ``phase2``, the tier sensors, the tests and the
benchmark alike.

A tier is a partition set of the level jobs. It runs level by level: its datasets, then its
(dataset, model) pairs, then its bit partitions, then the kill-switch tables (the results table,
geometry, BFI, regression and the kill-switches, which the gates read). The tiers after the
first (expansion tiers) wait until the core tier's kill-switch tables have judged F1 and F2, and
stop if one fired (a switch that cannot be evaluated, for want of 512-bit rows say, never fires
and does not hold them back). The exploratory tier (``tier3``, the plan's name for X3) trains the
adapter on the first adapter pair (where K2 is judged), then on the others unless K2 fired, and
skips the adapter while K1 has fired; it ends with every study-wide table (adapter table, ledger,
verdict, memo, report).

Pure: the caller says what is done (``phase2``: what it ran in this invocation; a sensor: the
runs in the instance) and passes the gate file's states; the plan says which runs are next, or
why none. The gates' messages are written here once.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from phase2_assets.config.study import Study, split_pair

LEVELS = ("dataset", "pair", "bits", "adapter")
EXPANSION_SWITCHES = ("F1", "F2")
EXPLORATORY_SWITCHES = ("K1", "K2")
# The study-wide tables that the kill-switches are computed from, and the kill-switches.
GATE_TABLES = ("retrieval_metrics", "geometry", "bfi", "regression", "kill_switches")
EXPLORATORY_TIER = "tier3"  # "x3" when the study has a tier of its own named tier3


@dataclass(frozen=True)
class Request:
    """One run: a level's job on one partition, or (level "results") the study-wide tables."""

    level: str  # dataset | pair | bits | adapter | results
    key: str | None = None  # the partition key in Dagster's string form; None for results
    tables: tuple[str, ...] | None = None  # results: these tables only; None: every table

    @property
    def label(self) -> str:
        if self.level == "results":
            return "results (kill-switches)" if self.tables else "results"
        return f"{self.level} {self.key}"


@dataclass(frozen=True)
class Next:
    """What a tier does now: ``requests`` to run, or none and the reason."""

    tier: str
    requests: tuple[Request, ...]
    reason: str
    state: str  # run | wait (something else must finish first) | stopped | complete


def exploratory_tier(study: Study) -> str:
    return EXPLORATORY_TIER if EXPLORATORY_TIER not in study.tiers else "x3"


def tier_order(study: Study) -> list[str]:
    """The core tier, the expansion tiers in config order, then the exploratory tier."""
    return [*study.tiers, exploratory_tier(study)]


def bits_key(pair: str, bits: int) -> str:
    """A (pair, bits) partition key as Dagster's CLI and tags write it (dimensions by name)."""
    return f"{bits}|{pair}"


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
        keys += [bits_key(pair, b) for b in study.all_bits() if b in planned]
    return keys


def fired(gates: Mapping[str, dict], names: tuple[str, ...]) -> list[dict]:
    return [gates[n] for n in names if gates.get(n, {}).get("fired")]


def stopped_by(hits: list[dict], what: str) -> str:
    """The one sentence for work that fired switches stop: which, their rules and numbers."""
    label = ", ".join(s["name"] for s in hits)
    rules = "; ".join(f"{s['name']}: {s['rule']} ({s['numbers']})" for s in hits)
    return f"Blocked by kill-switch {label}: {what} is stopped. {rules}"


def _run(tier: str, requests: list[Request], reason: str) -> Next:
    return Next(tier, tuple(requests), reason, "run")


def next_runs(
    study: Study,
    tier: str,
    done: Callable[[Request], bool],
    gates: Mapping[str, dict],
) -> Next:
    """The runs due now for ``tier``, or why none is."""
    if tier == exploratory_tier(study):
        return _exploratory(study, tier, done, gates)
    if tier not in study.tiers:
        raise ValueError(f"tier {tier!r} is not in study {study.name!r}")
    if tier != study.core_tier:
        if not all(n in gates for n in EXPANSION_SWITCHES):
            return Next(
                tier,
                (),
                f"{tier} is an expansion tier: waiting for the core tier's kill-switch tables to "
                f"judge F1 and F2 (run the {study.core_tier} tier first)",
                "wait",
            )
        hits = fired(gates, EXPANSION_SWITCHES)
        if hits:
            return Next(tier, (), stopped_by(hits, tier), "stopped")
    for level in ("dataset", "pair", "bits"):
        missing = [
            Request(level, key)
            for key in partition_keys(study, level, tier)
            if not done(Request(level, key))
        ]
        if missing:
            return _run(tier, missing, f"{tier}: {len(missing)} {level} partitions")
    gate_pass = Request("results", None, GATE_TABLES)
    if not done(gate_pass):
        return _run(tier, [gate_pass], f"{tier}: the kill-switch tables")
    return Next(tier, (), f"{tier} is complete", "complete")


def _exploratory(study, tier, done, gates) -> Next:
    expansion_stopped = fired(gates, EXPANSION_SWITCHES)
    pairs = [
        p
        for p in partition_keys(study, "adapter")
        if not (expansion_stopped and study.is_expansion_pair(p))  # never to be embedded
    ]
    pending = [p for p in pairs if not done(Request("adapter", p))]
    stopped = fired(gates, EXPLORATORY_SWITCHES)
    if pending and not stopped:
        unembedded = [p for p in pairs if not done(Request("pair", p))]
        if unembedded:
            return Next(tier, (), f"X3 waits for the embeddings of {', '.join(unembedded)}", "wait")
        first = pending[:1] if pairs[0] in pending else pending  # K2 is judged on the first pair
        return _run(tier, [Request("adapter", p) for p in first], f"X3: the adapter on {first}")
    # The study-wide tables come last: with every tier's sensor on at once, the earlier tiers
    # may still be running (walked in order, as ``follow`` does, they are already complete).
    unfinished = [
        t for t in study.tiers if next_runs(study, t, done, gates).state in ("run", "wait")
    ]
    if unfinished:
        return Next(
            tier,
            (),
            f"the study-wide tables wait for {', '.join(unfinished)} to complete",
            "wait",
        )
    final = Request("results")
    if not done(final):
        note = f"{stopped_by(stopped, 'X3')}; then " if stopped and pending else ""
        return _run(tier, [final], f"{note}every study-wide table")
    return Next(tier, (), f"{tier} is complete", "complete")


def follow(
    study: Study,
    read_gates: Callable[[], Mapping[str, dict]],
    execute: Callable[[Request], bool],
    say: Callable[[str], None] = lambda _: None,
) -> list[Request]:
    """Walk every tier in order, executing its requests as they come due; re-read the gates
    after each batch. Stops at the first request ``execute`` reports failed; returns the failed
    ones (empty when everything ran). What this walk executed counts as done."""
    executed: set[Request] = set()
    for tier in tier_order(study):
        while True:
            nxt = next_runs(study, tier, executed.__contains__, read_gates())
            if nxt.state != "complete":
                say(nxt.reason)
            if not nxt.requests:
                break
            for request in nxt.requests:
                if not execute(request):
                    return [request]
                executed.add(request)
    return []


def planned_result_rows(
    study: Study, tiers: list[str] | None = None, *, core_only: bool = False
) -> set[tuple[str, str, str, int]]:
    """(dataset, model, method, bits) rows the tiers plan, asked of the method registry: every
    registered method at each planned budget where it applies (``methods.extra`` chooses among
    those beyond the plan); ``core_only``: the plan's own rows (float32, int8, binary, PQ)."""
    from phase2_assets.compute.methods import METHODS, Plan

    rows = set()
    for name, tier in study.tiers.items():
        if tiers is not None and name not in tiers:
            continue
        plan_ = Plan(frozenset(tier.bits), frozenset(tier.pq_bytes))
        budgets = sorted({*tier.bits, *(8 * m for m in tier.pq_bytes)})
        for method in METHODS.values():
            chosen = study.methods.extra is None or method.name in study.methods.extra
            if not (method.in_plan or (chosen and not core_only)):
                continue
            for dataset in tier.datasets:
                for model in tier.models:
                    dim = study.models[model].dim
                    for b in [None] if method.budget == "reference" else budgets:
                        if method.applies(dim, b, plan_):
                            rows.add((dataset, model, method.name, method.code_bits(dim, b)))
    return rows
