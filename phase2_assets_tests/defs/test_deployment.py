"""Deployment by configuration: the local instance `phase2` writes, the cluster instance in
deploy/cluster/, the executor chosen by $PHASE2_EXECUTOR, pools and backfill policies.

No cluster here: the cluster's dagster.yaml is loaded into an InstanceRef, every configured class
is imported and its config validated (env-var credentials resolved), and nothing connects.
"""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
import uuid
import warnings
from pathlib import Path

import dagster as dg
import pytest
import yaml
from dagster._config import process_config, resolve_to_config_type
from dagster._core.instance.ref import InstanceRef

from phase2_assets.cli.instance import cli_run_tags, write_local_config
from phase2_assets.config import load_study
from phase2_assets.defs.build import build_definitions
from phase2_assets.defs.execution import executors as execution
from phase2_assets.defs.execution import pools
from phase2_assets.defs.execution.slots import HOST_TAG, PID_TAG, release_orphaned_slots
from phase2_assets.defs.graph import jobs
from phase2_assets.defs.storage.locations import STORAGE_ENV

CLUSTER = Path(__file__).resolve().parents[2] / "deploy" / "cluster"
PG_ENV = {
    "DAGSTER_PG_HOST": "postgres.test",
    "DAGSTER_PG_PORT": "5432",
    "DAGSTER_PG_USER": "dagster",
    "DAGSTER_PG_PASSWORD": "secret",
    "DAGSTER_PG_DB": "dagster",
    "DAGSTER_K8S_NAMESPACE": "dagster",
}
COMPONENTS = (
    "storage_data",
    "run_storage_data",
    "event_storage_data",
    "schedule_storage_data",
    "run_launcher_data",
    "run_coordinator_data",
    "compute_logs_data",
    "scheduler_data",
)
MEMORY_HEAVY_STEPS = {
    "float_ground_truth",
    "int8_index",
    "reference_metrics",
    "pq_index",
    "method_metrics",
    "corpus_size_ladder",
}


@pytest.fixture
def defs_for(monkeypatch, tmp_path):
    """build_definitions of the bundled demo study under the given environment."""

    def build(**env: str) -> dg.Definitions:
        for name in (execution.EXECUTOR_ENV, execution.MAX_CONCURRENT_ENV, STORAGE_ENV):
            monkeypatch.delenv(name, raising=False)
        for name, value in env.items():
            monkeypatch.setenv(name, value)
        return build_definitions(load_study("demo"), str(tmp_path / "data"))

    return build


# --- the local instance ---------------------------------------------------------------------


def test_local_instance_is_sqlite_with_pool_limits_and_a_run_queue(tmp_path):
    home = tmp_path / "dagster_home"
    write_local_config(home)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        assert instance.get_ref().storage_data.class_name == "DagsterSqliteStorage"
        config = instance.get_concurrency_config()
        assert config.pool_config.default_pool_limit == 1
        assert config.pool_config.pool_granularity.value == "op"
        assert config.run_queue_config.max_concurrent_runs == 2
        assert instance.run_monitoring_settings["free_slots_after_run_end_seconds"] == 60

        # The limit holds: a second step of the pool waits while the first holds the slot.
        storage = instance.event_log_storage
        assert storage.supports_global_concurrency_limits
        for pool in pools.POOLS:
            storage.initialize_concurrency_limit_to_default(pool)
            assert storage.get_concurrency_info(pool).slot_count == 1
        assert storage.claim_concurrency_slot(pools.MEMORY_HEAVY, "run-a", "pq_index").is_claimed
        waiting = storage.claim_concurrency_slot(pools.MEMORY_HEAVY, "run-b", "method_metrics")
        assert not waiting.is_claimed


def test_an_edited_instance_config_is_kept_and_an_empty_one_replaced(tmp_path):
    path = write_local_config(tmp_path)
    path.write_text("")
    write_local_config(tmp_path)
    assert "default_limit: 1" in path.read_text()
    path.write_text("concurrency:\n  pools:\n    default_limit: 3\n")
    write_local_config(tmp_path)
    assert path.read_text().endswith("default_limit: 3\n")


def test_slots_of_a_killed_phase2_process_are_freed_and_its_run_failed(tmp_path):
    write_local_config(tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default(pools.EMBEDDING)
        runs = {}
        for name, tags in {
            "killed": {PID_TAG: str(dead.pid), HOST_TAG: cli_run_tags()[HOST_TAG]},
            "alive": cli_run_tags(),  # this process: still running
            "daemon": {},  # launched by a daemon: left to its run monitoring
        }.items():
            run = dg.DagsterRun(
                job_name="pair_job",
                run_id=str(uuid.uuid4()),
                tags=tags,
                status=dg.DagsterRunStatus.STARTED,
            )
            instance.run_storage.add_run(run)
            storage.claim_concurrency_slot(pools.EMBEDDING, run.run_id, f"embeddings-{name}")
            runs[name] = run.run_id

        freed = release_orphaned_slots(instance)

        assert len(freed) == 2 and all(runs["killed"] in line for line in freed)
        assert instance.get_run_by_id(runs["killed"]).status == dg.DagsterRunStatus.FAILURE
        assert instance.get_run_by_id(runs["alive"]).status == dg.DagsterRunStatus.STARTED
        assert storage.get_concurrency_run_ids() == {runs["alive"], runs["daemon"]}


# --- the cluster instance -------------------------------------------------------------------


@pytest.fixture
def cluster_ref(tmp_path) -> InstanceRef:
    (tmp_path / "dagster.yaml").write_text((CLUSTER / "dagster.yaml").read_text())
    return InstanceRef.from_dir(str(tmp_path))


def test_cluster_instance_names_postgres_and_the_k8s_run_launcher(cluster_ref):
    """Parsed against Dagster's instance schema; needs neither library."""
    assert cluster_ref.storage_data.module_name == "dagster_postgres"
    assert cluster_ref.storage_data.class_name == "DagsterPostgresStorage"
    assert cluster_ref.run_launcher_data.module_name == "dagster_k8s"
    assert cluster_ref.run_launcher_data.class_name == "K8sRunLauncher"
    assert cluster_ref.run_coordinator_data.class_name == "QueuedRunCoordinator"
    storage = yaml.safe_load(cluster_ref.storage_data.config_yaml)["postgres_db"]
    assert storage["password"] == {"env": "DAGSTER_PG_PASSWORD"}  # no credential in the file
    concurrency = cluster_ref.settings["concurrency"]
    assert concurrency["pools"]["granularity"] == "op"


def test_cluster_instance_classes_resolve_and_their_config_validates(cluster_ref, monkeypatch):
    pytest.importorskip("dagster_postgres", reason="the `cluster` extra is not installed")
    pytest.importorskip("dagster_k8s", reason="the `cluster` extra is not installed")
    for name, value in PG_ENV.items():
        monkeypatch.setenv(name, value)
    for component in COMPONENTS:
        data = getattr(cluster_ref, component)
        cls = getattr(importlib.import_module(data.module_name), data.class_name)
        result = process_config(
            resolve_to_config_type(cls.config_type()), yaml.safe_load(data.config_yaml) or {}
        )
        assert result.success, (component, result.errors)
    # Without the password in the environment the storage config does not resolve.
    monkeypatch.delenv("DAGSTER_PG_PASSWORD")
    storage = cluster_ref.storage_data
    cls = getattr(importlib.import_module(storage.module_name), storage.class_name)
    result = process_config(
        resolve_to_config_type(cls.config_type()), yaml.safe_load(storage.config_yaml)
    )
    assert not result.success and "DAGSTER_PG_PASSWORD" in str(result.errors)


def test_cluster_manifests_use_the_names_the_code_reads():
    env = yaml.safe_load((CLUSTER / "phase2-env.yaml").read_text())["data"]
    assert env[execution.EXECUTOR_ENV] == "k8s" and env[STORAGE_ENV].startswith("s3://")
    assert set(PG_ENV) - {"DAGSTER_PG_PASSWORD"} <= set(env)
    values = yaml.safe_load((CLUSTER / "helm-values.yaml").read_text())
    assert values["runLauncher"]["type"] == "K8sRunLauncher"
    (deployment,) = values["dagster-user-deployments"]["deployments"]
    assert deployment["dagsterApiGrpcArgs"] == ["-m", "phase2_assets.definitions"]
    workspace = yaml.safe_load((CLUSTER / "workspace.yaml").read_text())
    assert workspace["load_from"][0]["grpc_server"]["port"] == deployment["port"]


# --- executors and run layout ---------------------------------------------------------------


def _executor_config(executor: dg.ExecutorDefinition) -> dict:
    """The config a configured executor runs with."""
    return executor.config_schema.resolve_config({}).value["config"]


def test_default_is_multiprocess_for_embeddings_and_in_process_for_the_light_jobs(defs_for):
    defs = defs_for()
    for job in (jobs.PAIR_JOB, jobs.ADAPTER_JOB):
        assert defs.resolve_job_def(job).executor_def.name == "multiprocess", job
    for job in (jobs.DATASET_JOB, jobs.BITS_JOB, jobs.RESULTS_JOB):
        assert defs.resolve_job_def(job).executor_def.name == "in_process", job


def test_max_concurrent_comes_from_the_environment(defs_for):
    executor = defs_for(PHASE2_MAX_CONCURRENT="3").resolve_job_def(jobs.PAIR_JOB).executor_def
    assert executor.name == "multiprocess"
    assert _executor_config(executor)["max_concurrent"] == 3
    with pytest.raises(ValueError, match="PHASE2_MAX_CONCURRENT"):
        defs_for(PHASE2_MAX_CONCURRENT="lots")


def test_in_process_everywhere(defs_for):
    defs = defs_for(PHASE2_EXECUTOR="in_process")
    assert defs.resolve_job_def(jobs.PAIR_JOB).executor_def.name == "in_process"


def test_k8s_executor_resolves_with_step_pods_sized_by_pool(defs_for):
    pytest.importorskip("dagster_k8s", reason="the `cluster` extra is not installed")
    defs = defs_for(PHASE2_EXECUTOR="k8s", PHASE2_MAX_CONCURRENT="8")
    executor = defs.resolve_job_def(jobs.PAIR_JOB).executor_def
    assert executor.name == "k8s"
    config = _executor_config(executor)
    assert config["max_concurrent"] == 8
    steps = config["per_step_k8s_config"]
    for gpu_step in ("embeddings", "adapter_metrics"):
        limits = steps[gpu_step]["container_config"]["resources"]["limits"]
        assert limits["nvidia.com/gpu"] == "1"
    assert set(steps) == {"embeddings", "adapter_metrics"} | MEMORY_HEAVY_STEPS
    assert defs.resolve_job_def(jobs.BITS_JOB).executor_def.name == "in_process"


def test_k8s_without_the_library_names_the_package_and_the_extra(defs_for, monkeypatch):
    monkeypatch.setitem(sys.modules, "dagster_k8s", None)  # import fails as if not installed
    with pytest.raises(ImportError, match=r"dagster-k8s.*\[cluster\]"):
        defs_for(PHASE2_EXECUTOR="k8s")


def test_an_unknown_executor_is_refused_with_the_choices(defs_for):
    with pytest.raises(ValueError, match="PHASE2_EXECUTOR='slurm'.*multiprocess, in_process, k8s"):
        defs_for(PHASE2_EXECUTOR="slurm")


def test_celery_sends_every_jobs_steps_to_the_workers_with_late_acknowledgement(defs_for):
    pytest.importorskip("dagster_celery", reason="the `cluster` extra is not installed")
    with pytest.raises(ValueError, match="PHASE2_CELERY_BROKER"):
        defs_for(PHASE2_EXECUTOR="celery")
    defs = defs_for(PHASE2_EXECUTOR="celery", PHASE2_CELERY_BROKER="redis://127.0.0.1:1/0")
    for job in jobs.LEVEL_JOBS.values():  # none runs a step on the launching machine
        assert defs.resolve_job_def(job[0]).executor_def.name == "celery", job
    config = _executor_config(defs.resolve_job_def(jobs.BITS_JOB).executor_def)
    assert config["broker"] == config["backend"] == "redis://127.0.0.1:1/0"
    delivery = config["config_source"]
    assert delivery["task_acks_late"] and delivery["task_reject_on_worker_lost"]
    assert delivery["broker_transport_options"]["visibility_timeout"] == 12 * 3600
    assert delivery["worker_prefetch_multiplier"] == 1


def test_the_stack_instance_is_the_cluster_instance_but_for_the_run_launcher():
    """deploy/stack/ stands for the cluster on one machine: the same storage, queue, pools, run
    monitoring and retries; only where a run's process starts differs (and where steps run,
    which is $PHASE2_EXECUTOR, not the instance)."""
    cluster = yaml.safe_load((CLUSTER / "dagster.yaml").read_text())
    stack = yaml.safe_load((CLUSTER.parent / "stack" / "dagster.yaml").read_text())
    assert cluster.pop("run_launcher")["class"] == "K8sRunLauncher"
    assert stack.pop("run_launcher")["class"] == "DefaultRunLauncher"
    assert stack == cluster
    limits = cluster["concurrency"]["runs"]["tag_concurrency_limits"]
    assert limits == [
        {"key": "phase2/study", "value": {"applyLimitPerUniqueValue": True}, "limit": 8}
    ]


# --- pools and backfill policy --------------------------------------------------------------


def test_pools_mark_the_device_and_memory_heavy_steps(defs_for):
    by_step = execution.step_pools(defs_for().assets)
    device = {"embeddings": pools.EMBEDDING, "adapter_metrics": pools.EMBEDDING}
    assert by_step == device | dict.fromkeys(MEMORY_HEAVY_STEPS, pools.MEMORY_HEAVY)


def test_every_partitioned_asset_backfills_one_partition_per_run(defs_for):
    defs = defs_for()
    partitioned = [a for a in defs.assets if a.partitions_def]
    assert partitioned and all(
        a.backfill_policy == execution.ONE_PARTITION_PER_RUN for a in partitioned
    )
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # e.g. "materializes assets with varying BackfillPolicies"
        for job in (jobs.DATASET_JOB, jobs.PAIR_JOB, jobs.BITS_JOB, jobs.RESULTS_JOB):
            defs.resolve_job_def(job)


def test_storage_url_points_every_io_manager_at_the_store(defs_for, tmp_path):
    # fsspec's memory store stands in for s3:// (s3fs is not a dependency of the tests).
    defs = defs_for(PHASE2_STORAGE_URL="memory://bucket/prefix", PHASE2_STORAGE_ALLOW_MEMORY="1")
    for key, resource in defs.resources.items():
        if key.endswith("_io_manager"):
            assert resource.base_dir == "memory://bucket/prefix", key
            assert resource.cache_dir == str(tmp_path / "data" / ".cache"), key
    local = defs_for().resources["npy_io_manager"]
    assert local.base_dir == str(tmp_path / "data") and os.path.isabs(local.base_dir)
