"""Each step runs with its share of the cores, the libraries really use it, and it is recorded."""

import dagster as dg
import faiss
import pytest
from threadpoolctl import threadpool_info

from phase2_assets.compute import threads
from phase2_assets.defs.execution import cpu_share
from phase2_assets.defs.execution.cpu_share import with_cpu_share

SEEN: dict[str, object] = {}


@dg.asset
@with_cpu_share
def probe(context: dg.AssetExecutionContext):
    import torch

    SEEN["faiss"] = faiss.omp_get_max_threads()
    SEEN["torch"] = torch.get_num_threads()
    SEEN["pools"] = {p["internal_api"]: p["num_threads"] for p in threadpool_info()}
    return dg.Output(1, metadata={"own": "kept"})


@dg.asset
@with_cpu_share
def probe_generator(context: dg.AssetExecutionContext, probe):
    yield dg.Output(probe + 1)


def _materialize(**kwargs):
    result = dg.materialize([probe, probe_generator], **kwargs)
    assert result.success
    return {
        e.asset_key.to_user_string(): e.step_materialization_data.materialization.metadata
        for e in result.get_asset_materialization_events()
    }


def test_an_in_process_run_takes_every_core_and_says_why(monkeypatch):
    for name in (cpu_share.THREADS_ENV, *cpu_share.CAP_ENVS):
        monkeypatch.delenv(name, raising=False)
    cores = threads.available_cores()
    meta = _materialize()
    for asset in ("probe", "probe_generator"):
        assert meta[asset]["threads"].value == cores
        assert meta[asset]["threads_reason"].value == f"{cores} cores / (1 runs x 1 steps at once)"
    assert meta["probe"]["own"].value == "kept"  # the body's own metadata stays
    assert SEEN["faiss"] == SEEN["torch"] == cores


def test_the_machine_or_the_run_can_fix_the_share(monkeypatch):
    monkeypatch.setenv(cpu_share.THREADS_ENV, "1")
    meta = _materialize()
    assert meta["probe"]["threads"].value == 1
    assert meta["probe"]["threads_reason"].value == "PHASE2_THREADS"
    # Inside the step every library is limited: faiss, torch, BLAS and OpenMP pools.
    assert SEEN["faiss"] == SEEN["torch"] == 1 and set(SEEN["pools"].values()) == {1}
    monkeypatch.delenv(cpu_share.THREADS_ENV)
    meta = _materialize(tags={cpu_share.THREADS_TAG: "1"})
    assert meta["probe"]["threads_reason"].value == "run tag phase2/threads"
    assert meta["probe"]["threads"].value == 1


def test_omp_num_threads_caps_the_share(monkeypatch):
    """OMP_NUM_THREADS=1 phase2 demo runs every library on one thread, as the user asked."""
    for name in (cpu_share.THREADS_ENV, *cpu_share.CAP_ENVS):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    meta = _materialize()
    assert meta["probe"]["threads"].value == 1
    assert meta["probe"]["threads_reason"].value == "OMP_NUM_THREADS=1 caps the share"
    assert SEEN["faiss"] == SEEN["torch"] == 1 and set(SEEN["pools"].values()) == {1}


def test_a_bad_thread_count_names_its_source(monkeypatch):
    monkeypatch.setenv(cpu_share.THREADS_ENV, "two")
    result = dg.materialize([probe], raise_on_error=False)
    assert not result.success
    failure = result.get_step_failure_events()[0].step_failure_data.error
    assert "PHASE2_THREADS='two': expected a whole number of threads" in str(failure)


@pytest.mark.parametrize("raw", ["99999999999999999999", "100000"])
def test_more_threads_than_cores_is_lowered_to_the_cores_and_says_so(monkeypatch, raw):
    """Before: 99999999999999999999 raised OverflowError inside faiss, naming no setting, and
    any count above the cores was used as given."""
    for name in (cpu_share.THREADS_ENV, *cpu_share.CAP_ENVS):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv(cpu_share.THREADS_ENV, raw)
    cores = threads.available_cores()
    result = dg.materialize([probe], raise_on_error=False)
    assert result.success
    (event,) = result.get_asset_materialization_events()
    meta = event.step_materialization_data.materialization.metadata
    assert meta["threads"].value == cores and SEEN["faiss"] == SEEN["torch"] == cores
    why = f"PHASE2_THREADS={raw} is more than the {cores} cores this process may use"
    assert meta["threads_reason"].value.startswith(why)
    monkeypatch.delenv(cpu_share.THREADS_ENV)
    meta = _materialize(tags={cpu_share.THREADS_TAG: raw})
    assert meta["probe"]["threads"].value == cores
    assert meta["probe"]["threads_reason"].value.startswith(f"run tag phase2/threads={raw} is")


@pytest.mark.parametrize("raw", ["0", "-1", "2.5", "\u00b2", "1e3"])
def test_a_thread_count_that_is_not_a_whole_number_is_refused_by_name(monkeypatch, raw):
    monkeypatch.setenv(cpu_share.THREADS_ENV, raw)
    result = dg.materialize([probe], raise_on_error=False)
    assert not result.success
    failure = str(result.get_step_failure_events()[0].step_failure_data.error)
    assert f"PHASE2_THREADS={raw!r}: expected a whole number of threads, >= 1" in failure


def test_limits_are_restored_after_the_step():
    before = faiss.omp_get_max_threads()
    with threads.limited(1):
        assert faiss.omp_get_max_threads() == 1
    assert faiss.omp_get_max_threads() == before


@pytest.mark.parametrize(
    ("cores", "steps", "expected"), [(2, 1, 2), (2, 2, 1), (2, 4, 1), (16, 3, 5)]
)
def test_share(cores, steps, expected):
    assert threads.share(cores, steps) == expected


def test_steps_beside_a_step_are_those_neither_upstream_nor_downstream():
    @dg.op
    def a():
        return 1

    @dg.op
    def b(x):
        return x

    @dg.op
    def c(x):
        return x

    @dg.op
    def d(x, y):
        return x

    @dg.job
    def diamond():
        x = a()
        d(b(x), c(x))

    beside = cpu_share._unrelated_steps
    assert beside(diamond, "a", None) == 0  # everything waits for a
    assert beside(diamond, "b", None) == 1  # c may run beside b
    assert beside(diamond, "d", None) == 0
    assert beside(diamond, "b", {"b"}) == 0  # a run of b alone
