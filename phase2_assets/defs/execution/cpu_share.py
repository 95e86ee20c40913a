"""Each step's share of the machine's cores, set when the step starts and recorded on its outputs.

threads = cores // (runs at once x steps at once in a run), at least 1, where
- *runs at once*: a run that went through the instance's run queue (the UI, ``dagster job
  launch``, backfills, the tier sensors) may have ``max_concurrent_runs`` runs beside it; a run
  executed in its caller's process (``dagster asset materialize``, tests) counts 1, and so does a
  run tagged ``phase2/runs_at_once`` 1 (``phase2``, which runs them one at a time), and so does
  every step of the Kubernetes and Celery executors, which run in a pod or worker of their own
  (several workers on one machine: set ``$PHASE2_THREADS`` on each);
- *steps at once in a run*: 1 with the in-process executor, with Kubernetes (a pod per step,
  whose cores are its own) and with Celery (a worker takes one step at a time, ``-c 1``); with
  the multiprocess executor, its ``max_concurrent`` (run config,
  ``$PHASE2_MAX_CONCURRENT``, else one per core), but never more than the steps of the run that
  could run beside this one (those neither upstream nor downstream of it): a run's embedding step
  has none.

Pools never add steps, so they only leave cores idle, never oversubscribe them. ``$PHASE2_THREADS``
(the machine) or the run tag ``phase2/threads`` (one run) fixes the number instead, at most the
cores this process may use (a larger number is lowered to them, with a warning that names it).
Results do not depend on it; only seconds do.
"""

from __future__ import annotations

import functools
import inspect
import os
import re
from collections.abc import Callable
from dataclasses import dataclass

import dagster as dg

from phase2_assets.compute import threads as threads_lib
from phase2_assets.defs.execution.executors import max_concurrent_from_env

THREADS_ENV = "PHASE2_THREADS"
# The OpenMP/BLAS variables a user sets to limit every library: they cap the share, as they would
# cap the libraries themselves if phase2 did not set the thread counts.
CAP_ENVS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
THREADS_TAG = "phase2/threads"
RUNS_AT_ONCE_TAG = "phase2/runs_at_once"  # set by a launcher that knows (phase2: 1)


@dataclass(frozen=True)
class StepShare:
    threads: int
    cores: int
    runs_at_once: int
    steps_at_once: int
    fixed_by: str | None = None  # PHASE2_THREADS or the run tag, when set

    @property
    def metadata(self) -> dict:
        why = self.fixed_by or (
            f"{self.cores} cores / ({self.runs_at_once} runs x {self.steps_at_once} steps at once)"
        )
        return {"threads": self.threads, "threads_reason": why}


def _whole(raw: str) -> int | None:
    """A whole number written in ASCII digits (``str.isdigit`` also takes '²'), else None."""
    return int(raw) if re.fullmatch(r"\s*[0-9]+\s*", raw) else None


def _fixed(raw: str, where: str, cores: int) -> tuple[int, str]:
    """The fixed thread count and why; more than the cores this process may use is lowered to
    them (more threads than cores only makes OpenMP's threads wait on each other, and a number
    beyond a C int overflows faiss), and the reason says so."""
    n = _whole(raw)
    if n is None or n < 1:
        raise ValueError(f"{where}={raw!r}: expected a whole number of threads, >= 1")
    if n > cores:
        return cores, (
            f"{where}={raw.strip()} is more than the {cores} cores this process may use; "
            f"lowered to {cores}"
        )
    return n, where


def runs_at_once(run: dg.DagsterRun, instance: dg.DagsterInstance, cores: int) -> int:
    if (tagged := _whole(run.tags.get(RUNS_AT_ONCE_TAG, ""))) is not None:
        return max(1, tagged)
    if run.remote_job_origin is None:  # executed in the caller's process, not launched
        return 1
    limit = instance.get_concurrency_config().run_queue_config.max_concurrent_runs
    return limit if limit and limit > 0 else cores


def _unrelated_steps(job: dg.JobDefinition, node: str, selected: set[str] | None) -> int:
    """Steps of the run that neither feed this one nor are fed by it (they may run beside it)."""
    deps = job.dependency_structure
    upstream = {
        n.name: {o.node_name for o in deps.all_upstream_outputs_from_node(n.name)}
        for n in job.nodes
    }

    def closure(start: str, edges: dict[str, set[str]]) -> set[str]:
        seen, todo = set(), [start]
        while todo:
            for nxt in edges.get(todo.pop(), ()):
                if nxt not in seen:
                    seen.add(nxt)
                    todo.append(nxt)
        return seen

    downstream: dict[str, set[str]] = {}
    for child, parents in upstream.items():
        for parent in parents:
            downstream.setdefault(parent, set()).add(child)
    related = {node} | closure(node, upstream) | closure(node, downstream)
    steps = set(upstream) if selected is None else selected & set(upstream)
    return len(steps - related)


def steps_at_once(context, cores: int) -> int:
    executor = context.job_def.executor_def.name
    if executor != "multiprocess":  # in_process: one at a time; k8s: a pod (own cores) per step
        return 1
    config = (context.run.run_config.get("execution") or {}).get("config") or {}
    configured = config.get("max_concurrent") or (config.get("multiprocess") or {}).get(
        "max_concurrent"
    )
    limit = configured or max_concurrent_from_env() or cores
    selected = context.run.step_keys_to_execute
    beside = _unrelated_steps(context.job_def, context.op.name, set(selected) if selected else None)
    return max(1, min(limit, 1 + beside))


# Executors that run each step in a process of its own machine, pod or worker: the step's cores
# are that process's, not shared with the other runs of the queue.
OWN_CORES_EXECUTORS = ("k8s", "celery")


def step_share(context) -> StepShare:
    cores = threads_lib.available_cores()
    own_cores = context.job_def.executor_def.name in OWN_CORES_EXECUTORS
    runs = 1 if own_cores else runs_at_once(context.run, context.instance, cores)
    steps = steps_at_once(context, cores)
    for raw, where in (
        (os.environ.get(THREADS_ENV, ""), THREADS_ENV),
        (context.run.tags.get(THREADS_TAG, ""), f"run tag {THREADS_TAG}"),
    ):
        if raw.strip():
            threads, why = _fixed(raw, where, cores)
            if why != where:
                context.log.warning(why)
            return StepShare(threads, cores, runs, steps, fixed_by=why)
    threads = threads_lib.share(cores, runs * steps)
    caps = [(v, n) for n in CAP_ENVS if (v := _whole(os.environ.get(n, ""))) is not None]
    cap, name = min(caps, default=(0, ""))
    if 0 < cap < threads:
        return StepShare(cap, cores, runs, steps, fixed_by=f"{name}={cap} caps the share")
    return StepShare(threads, cores, runs, steps)


def _recorded(event, share: StepShare):
    if isinstance(event, dg.Output):
        return event.with_metadata({**event.metadata, **share.metadata})
    return event


def with_cpu_share(fn: Callable) -> Callable:
    """An asset body that runs within its step's share of the cores, recorded on its outputs."""

    if inspect.isgeneratorfunction(fn):

        @functools.wraps(fn)
        def generator(context, *args, **kwargs):
            share = step_share(context)
            with threads_lib.limited(share.threads):
                for event in fn(context, *args, **kwargs):
                    yield _recorded(event, share)

        return generator

    @functools.wraps(fn)
    def call(context, *args, **kwargs):
        share = step_share(context)
        with threads_lib.limited(share.threads):
            return _recorded(fn(context, *args, **kwargs), share)

    return call
