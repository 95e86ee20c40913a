"""Steps on Celery workers (``PHASE2_EXECUTOR=celery``): the one Celery app that the run's
executor submits to and the workers consume, so both read the broker and the delivery rules
from the same place.

A worker is a machine (or a process standing for one) that can import this package and reach
the instance's database, the broker and the object store; it never needs the launching
machine's files. Start one with::

    celery -A phase2_assets.defs.execution.celery_workers worker -Q dagster -c 1
    celery -A phase2_assets.defs.execution.celery_workers worker -Q embedding -c 1  # the GPU box

Queues: a step of a pool listed in ``pools.QUEUE_OF_POOL`` goes to that pool's queue (the
``embedding`` steps to the GPU box); every other step to Dagster's default queue ``dagster``.
Pool limits are claimed by the run, in the instance, before a step is submitted, so they hold
whichever worker takes the step.

Delivery: a step's task is acknowledged only when it has finished (``task_acks_late``), so a
worker that dies mid-step (killed, out of memory, its machine gone) does not lose it. When only
the worker's child process dies, the task is handed back at once (``task_reject_on_worker_lost``);
when the whole worker dies, Redis hands it to the next worker of its queue once the visibility
timeout has passed. A step that runs longer than that timeout would be handed out twice, so it
must exceed the longest step: ``$PHASE2_CELERY_VISIBILITY_TIMEOUT`` seconds, default 12 hours.
A step that is handed out again runs from the start: every step writes its outputs whole or not
at all, so a rerun finds nothing half-written.
"""

from __future__ import annotations

import os

from phase2_assets.defs.steps.runtime import whole_number_env

BROKER_ENV = "PHASE2_CELERY_BROKER"
BACKEND_ENV = "PHASE2_CELERY_BACKEND"
VISIBILITY_TIMEOUT_ENV = "PHASE2_CELERY_VISIBILITY_TIMEOUT"
DEFAULT_VISIBILITY_TIMEOUT_S = 12 * 3600


def _visibility_timeout() -> int:
    seconds = whole_number_env(VISIBILITY_TIMEOUT_ENV, "whole seconds")
    return DEFAULT_VISIBILITY_TIMEOUT_S if seconds is None else seconds


def celery_settings() -> dict:
    """The ``celery_executor``'s config: broker and result backend (``$PHASE2_CELERY_BROKER``,
    e.g. ``redis://host:6379/0``; the backend defaults to the broker) and the delivery rules."""
    broker = os.environ.get(BROKER_ENV, "").strip()
    if not broker:
        raise ValueError(
            f"PHASE2_EXECUTOR=celery needs {BROKER_ENV}, the Celery broker every worker "
            "consumes (e.g. redis://127.0.0.1:6379/0); see docs/running-at-scale.md"
        )
    timeout = _visibility_timeout()
    return {
        "broker": broker,
        "backend": os.environ.get(BACKEND_ENV, "").strip() or broker,
        "config_source": {
            "task_acks_late": True,
            "task_reject_on_worker_lost": True,
            "worker_prefetch_multiplier": 1,
            "broker_transport_options": {"visibility_timeout": timeout},
            "result_backend_transport_options": {"visibility_timeout": timeout},
            "worker_hijack_root_logger": False,
        },
    }


def make_worker_app():
    """The Celery app of the workers, with Dagster's step task registered on it: the same
    settings the executor submits with."""
    from dagster_celery.executor import CeleryExecutor
    from dagster_celery.make_app import make_app
    from dagster_celery.tasks import create_task

    settings = celery_settings()
    executor = CeleryExecutor.for_cli(**settings)
    worker_app = make_app(executor.app_args())
    create_task(worker_app)
    return worker_app


def __getattr__(name: str):
    # `celery -A phase2_assets.defs.execution.celery_workers` looks up `app` (or `celery`);
    # built on first use, so importing this module for its settings needs no broker.
    if name in ("app", "celery"):
        global app
        app = make_worker_app()
        return app
    raise AttributeError(name)
