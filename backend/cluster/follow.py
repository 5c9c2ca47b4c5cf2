"""The caller's side of a job on the cluster: submit, relay progress, cancel, check.

Progress comes from the job folder's status.json (the truth, written by the task as by any
run), read every `POLL_S` seconds and passed on as ``report(stage, done, total)`` and a bar.
A cancel (the event set, or Ctrl-C) is `ray.cancel`: Ray raises KeyboardInterrupt in the
task, which the run takes as its own cancel (status "cancelled", frames kept, resumable).
"""

from __future__ import annotations

import functools
import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import BackendError, JobCancelled
from ..transfer import JobFolder, TransferJob, TransferResult
from ..transfer.layers import TARGET, TRANSPARENT
from ..transfer.status import Report
from .connect import Cluster, connect, require_ray
from .remote import run_job
from .visibility import Token

POLL_S = 0.25  # how often status.json is read while the task runs
# Runs of a task whose worker process or node died (the job resumes from its folder each time).
MAX_RETRIES = 3
STAGES = ("poses", "generate")


def run_on_cluster(job: TransferJob, address: str, report: Report | None = None,
                   cancel: threading.Event | None = None, progress: bool = False
                   ) -> TransferResult:
    """`run_transfer` of ``job`` as a task of the Ray cluster at ``address`` ("local": this
    machine); raises as it would (`JobCancelled`, `InputError`, ...)."""
    cluster = connect(address)
    job = with_absolute_paths(job)
    with Token.beside(job.output_dir) as token:
        ref = submit(cluster, job, token)
        with StatusRelay(JobFolder(job.output_dir), report, progress) as relay:
            cancelled = wait(ref, relay, cancel or threading.Event())
        result = collect(ref, job, cancelled)
    check_done_here(job, result)
    if report is not None:
        report("finish", 1, 1)
    return result


def with_absolute_paths(job: TransferJob) -> TransferJob:
    """``job`` with absolute paths: a node has its own working folder."""
    def absolute(path: Path | None) -> Path | None:
        return None if path is None else path.expanduser().absolute()

    background = job.background
    if background not in (TARGET, TRANSPARENT):
        background = str(absolute(Path(background)))
    return replace(job, source=absolute(job.source), model=absolute(job.model),
                   output_dir=absolute(job.output_dir), nearest_run=absolute(job.nearest_run),
                   poses=absolute(job.poses), reuse=absolute(job.reuse), background=background)


def submit(cluster: Cluster, job: TransferJob, token: Token) -> Any:
    """Start the job's task; its object reference."""
    task = _remote_run_job().options(
        name=f"retarget {job.output_dir.name}", max_retries=MAX_RETRIES,
        **cluster.task_resources(job.device))
    return task.remote(job, token, cluster.describe())


@functools.cache
def _remote_run_job() -> Any:
    """`run_job` as a Ray remote function (made once: Ray exports it to the cluster)."""
    return require_ray().remote(run_job)


def wait(ref: Any, relay: "StatusRelay", cancel: threading.Event) -> bool:
    """Relay progress until the task ends; cancel it once ``cancel`` is set (or on Ctrl-C).
    Whether it was cancelled."""
    ray = require_ray()
    cancelled = False
    try:
        while not ray.wait([ref], timeout=POLL_S)[0]:
            relay.poll()
            if cancel.is_set() and not cancelled:
                ray.cancel(ref)
                cancelled = True
    except KeyboardInterrupt:
        ray.cancel(ref)
        raise
    relay.poll()
    return cancelled


def collect(ref: Any, job: TransferJob, cancelled: bool) -> TransferResult:
    """The task's result, or its failure as the project's own error."""
    ray = require_ray()
    from ray import exceptions

    folder = JobFolder(job.output_dir)
    try:
        return ray.get(ref)
    except exceptions.TaskCancelledError:
        written = folder.frames_done()
        raise JobCancelled(f"{folder.root}: cancelled with {written} frames written; run the same "
                        f"job again to continue") from None
    except exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, KeyboardInterrupt) or (cancelled and cause is None):
            raise JobCancelled(f"{folder.root}: cancelled with {folder.frames_done()} frames "
                            f"written; run the same job again to continue") from None
        if isinstance(cause, BaseException):
            raise cause from None
        raise BackendError(f"{folder.root}: the job's task failed on the cluster: {exc}") from None
    except (exceptions.WorkerCrashedError, exceptions.NodeDiedError,
            exceptions.ObjectLostError) as exc:
        raise BackendError(f"{folder.root}: the job's task died {MAX_RETRIES + 1} times on the "
                           f"cluster ({type(exc).__name__}); its {folder.frames_done()} frames "
                           f"are kept: run the same job again to continue") from None
    except exceptions.RayError as exc:  # Ray's own trouble (memory, the cluster gone)
        raise BackendError(f"{folder.root}: the Ray cluster could not run the job's task: "
                           f"{type(exc).__name__}: {exc}; its {folder.frames_done()} frames are "
                           f"kept") from None


def check_done_here(job: TransferJob, result: TransferResult) -> None:
    """The task says the job is done: this machine must see it so (never take a folder the
    node wrote elsewhere for a finished job)."""
    folder = JobFolder(job.output_dir)
    written, state = folder.frames_done(), folder.read_status().get("state")
    if written != result.frame_count or state != "done":
        raise BackendError(f"{folder.root}: the task on the cluster finished {result.frame_count} "
                           f"frames, but this folder holds {written} (state {state}): the node "
                           f"wrote somewhere this machine does not see")


class StatusRelay:
    """status.json -> ``report(stage, done, total)`` and a progress bar, on each change."""

    def __init__(self, folder: JobFolder, report: Report | None, progress: bool) -> None:
        self.folder, self.report, self.progress = folder, report, progress
        self.last: tuple[str, int, int] | None = None
        self.bar: Any = None

    def __enter__(self) -> "StatusRelay":
        return self

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()

    def poll(self) -> None:
        status = self.folder.read_status()
        stage, done, total = status.get("stage"), status.get("done"), status.get("total")
        if (status.get("state") != "running" or stage not in STAGES
                or not isinstance(done, int) or not isinstance(total, int)):
            return
        now = (stage, done, total)
        if now == self.last:
            return
        if self.progress:
            self._show(now)
        self.last = now
        if self.report is not None:
            self.report(stage, done, total)

    def _show(self, now: tuple[str, int, int]) -> None:
        from tqdm import tqdm

        stage, done, total = now
        if self.bar is None or self.last is None or self.last[0] != stage:
            if self.bar is not None:
                self.bar.close()
            self.bar = tqdm(total=total, desc=f"{stage} (cluster)", unit="frame", leave=False,
                            dynamic_ncols=True)
        self.bar.update(done - self.bar.n)
