"""One stack for the session's stack tests (starting it takes about half a minute): the tiny
study's deployment in a temporary folder, stopped at the end.

Its object store is moto's server behind the fault-injecting proxy of ``testing/s3.py``: every
process of the stack reaches S3 through the proxy (forwarded byte for byte), so a test can hold
or refuse one object's PUT in the middle of a run."""

from __future__ import annotations

import time
from dataclasses import dataclass

import dagster as dg
import pytest

from phase2_assets.stack import launcher
from phase2_assets.testing import stack as st
from phase2_assets.testing.s3 import new_bucket, refusing_proxy, s3_server
from phase2_assets.testing.tiny import write_tiny_study

BUCKET = "phase2-stack-tests"

# The daemon looks every second instead of every 30; a step is handed out again after 120 s, not
# 12 hours: longer than any step of the tiny study (a worker's first, which loads the code, took
# 19 s alone), with room for the cores being shared with the rest of the suite.
FAST = {"PHASE2_SENSOR_INTERVAL_SECONDS": "1", "PHASE2_CELERY_VISIBILITY_TIMEOUT": "120"}


@pytest.hookimpl(wrapper=True)  # around pytest-xdist's own hook, which tags the groups
def pytest_collection_modifyitems(config, items):
    """The stack tests first, their faults last: the hands-off study and its UI are checked on
    the clean stack before any fault. Under pytest-xdist the stack tests are one group (one
    worker runs them all on one stack) and the demo's another; both go out first, so the
    longest waits start at once and the rest of the suite fills the workers around them.

    After the other hooks, every stack test must carry its group: a pytest that xdist cannot
    tag (pytest 9.2, pytest-dev/pytest-xdist#1386) would silently start one stack per worker
    and make the suite twice as long, so it stops here instead."""

    def order(item) -> tuple[int, bool]:
        stack = _is_stack_test(item)
        e2e = "test_end_to_end.py" in item.nodeid
        return (0 if stack else 1 if e2e else 2), "stack/test_faults.py" in item.nodeid

    items.sort(key=order)
    for item in items:
        if _is_stack_test(item):
            item.add_marker(pytest.mark.xdist_group("stack"))
    result = yield
    if getattr(config.option, "loadgroup", False):  # set on pytest-xdist's workers
        untagged = [i.nodeid for i in items if _is_stack_test(i) and "@stack" not in i.nodeid]
        if untagged:
            raise pytest.UsageError(
                f"pytest-xdist did not group {len(untagged)} stack tests (e.g. {untagged[0]}): "
                "this pytest and pytest-xdist do not work together for --dist loadgroup; "
                "install the versions pyproject.toml pins"
            )
    return result


_STACKS: list[launcher.Stack] = []  # the session's stack, stopped after the last stack test


def _is_stack_test(item) -> bool:
    return item is not None and "phase2_assets_tests/stack/" in item.nodeid


def pytest_runtest_teardown(item, nextitem):
    """Stop the stack once its last test is done, not at the session's end: its daemon keeps
    ticking, and the tests after it should have the cores."""
    if _is_stack_test(item) and not _is_stack_test(nextitem):
        for running in _STACKS:
            running.down()


@dataclass
class RunningStack:
    stack: launcher.Stack
    instance: dg.DagsterInstance
    started_s: float
    proxy: object  # testing.s3.RefusingProxy: hold_puts / refuse_puts


@pytest.fixture(scope="session")
def stack_study(tmp_path_factory, tiny_beir, tiny_model):
    root = tmp_path_factory.mktemp("stack_study")
    return write_tiny_study(root / "tiny.yaml", tiny_beir, tiny_model, **st.STACK_STUDY)


@pytest.fixture(scope="session")
def stack(tmp_path_factory, stack_study):
    """The running stack. Its environment (instance, broker, store) is this process's only
    inside the stack tests (``_stack_environment``): the session's other tests never see it."""
    st.require_stack()
    folder = tmp_path_factory.mktemp("stack")
    with s3_server() as s3, refusing_proxy(s3["AWS_ENDPOINT_URL"]) as proxy:
        new_bucket(s3, BUCKET)
        with st.environment({**FAST, **s3, "AWS_ENDPOINT_URL": proxy.endpoint}):
            t0 = time.perf_counter()
            running = launcher.up(folder, str(stack_study), storage_url=f"s3://{BUCKET}/tiny")
            started = time.perf_counter() - t0
        _STACKS.append(running)
        try:
            with st.environment(running.env):
                instance = dg.DagsterInstance.get()
            yield RunningStack(running, instance, started, proxy)
        finally:
            running.down()


@pytest.fixture(autouse=True)
def _stack_environment(request):
    """The stack's environment for the duration of a test that uses it."""
    if "stack" not in request.fixturenames:
        yield
        return
    with st.environment(request.getfixturevalue("stack").stack.env):
        yield


@dataclass(frozen=True)
class HandsOff:
    """The hands-off study: when the sensors were switched on, when its last run ended."""

    switched_on: float
    done: float

    @property
    def seconds(self) -> float:
        return self.done - self.switched_on

    def runs(self, instance: dg.DagsterInstance) -> list[dg.DagsterRun]:
        """The runs the sensors made for it (later tests add their own)."""
        return [
            record.dagster_run
            for record in instance.get_run_records()
            if self.switched_on <= record.create_timestamp.timestamp() <= self.done
            and record.dagster_run.tags.get("dagster/sensor_name")
        ]


@pytest.fixture(scope="session")
def hands_off(stack) -> HandsOff:
    """Switch every sensor on and wait for the study's last run (the study-wide tables)."""
    instance = stack.instance
    with st.environment(stack.stack.env):
        t0 = time.time()
        launcher.start_study(stack.stack)
        st.wait_for(
            lambda: st.study_done(instance, stack.stack.env["PHASE2_STUDY"]),
            1200,
            lambda: f"the study to finish; runs: {st.runs_summary(instance)}",
        )
    return HandsOff(t0, time.time())
