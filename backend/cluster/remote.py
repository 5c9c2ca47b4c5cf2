"""What runs on a node of the cluster: one transfer job, in its job folder.

`run_job` is a plain function; `follow` submits it as a Ray task. It checks that the node
sees the job folder, then runs the job as any run does (`run_transfer`), so it resumes from
what the folder holds: a task that Ray runs again after its worker died continues where the
dead one stopped. The job's log.txt says where each run ran. A Ray worker process runs one
task at a time and lives on after it, so it keeps the last model loaded for the next job, as
the worker of `python -m backend serve` does (`ModelCache`). A long source's pose detection
runs its chunks as tasks of the cluster too (`pose_tasks`).
"""

from __future__ import annotations

import functools
import os

from ..pose.processes import tasks_elsewhere
from ..transfer import JobFolder, TransferJob, TransferResult, run_transfer
from ..transfer.model_cache import ModelCache
from .pose_tasks import RayChunks
from .visibility import Token


@functools.cache
def models() -> ModelCache:
    """This worker process's model cache."""
    return ModelCache()


def where_this_runs(cluster: str) -> str:
    """"Ray cluster ADDRESS (WHICH), node ID (ip IP), worker pid PID" for this task's process
    (``cluster``: `Cluster.describe`)."""
    import ray

    node = ray.get_runtime_context().get_node_id()
    return (f"Ray cluster {cluster}, node {node} (ip {ray.util.get_node_ip_address()}), "
            f"worker pid {os.getpid()}")


def run_job(job: TransferJob, token: Token, cluster: str) -> TransferResult:
    """Run ``job`` (or continue it) here (``cluster``: `Cluster.describe`); a cancel arrives
    as KeyboardInterrupt (`ray.cancel`), which the run turns into its own cancel: the folder
    stays resumable."""
    where = where_this_runs(cluster)
    token.check(job.output_dir, where)
    logged = False

    def report(stage: str, done: int, total: int) -> None:
        nonlocal logged  # the first report comes once the run has claimed its folder
        if not logged:
            JobFolder(job.output_dir).log(f"running on {where}")
            logged = True

    with tasks_elsewhere(RayChunks(JobFolder(job.output_dir).log)):  # pose chunks: on the cluster
        return run_transfer(job, report=report, progress=False, models=models())
