"""Retarget jobs and their queue (no bpy).

A job is one ``run`` message for the backend plus where its result goes in Blender (the
scene, channel and frame decided when it was submitted). Jobs run one at a time, in order,
in one worker that keeps the model loaded. States::

    pending -> running -> done
                       -> failed     (the worker's error, or the worker died)
                       -> cancelled
    failed / cancelled -> pending    (retry: the job folder is resumable)

The queue only changes state; starting the worker and sending messages is `runner.JobRunner`'s.
Messages from the worker are applied by type name, so this module imports nothing.
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass, field
from enum import Enum
from typing import Any


class JobState(str, Enum):
    PENDING = "pending"
    RUNNING = "running"
    DONE = "done"
    FAILED = "failed"
    CANCELLED = "cancelled"

    @property
    def finished(self) -> bool:
        return self in (JobState.DONE, JobState.FAILED, JobState.CANCELLED)


RESULT, PREVIEW = "result", "preview"  # what a job's strip shows: generated frames, or poses


@dataclass(frozen=True)
class Placement:
    """Where the job's strip goes: decided at submission, used when the job is done.

    ``job_frames[k]`` is the job frame (0-based; image ``k + 1``) shown on timeline frame
    ``frame_start + k``. ``source`` names the strip the job was made from: the strip of an
    earlier job of the same ``role`` for that source gets the new frames in place.
    """

    scene: str
    channel: int
    frame_start: int
    job_frames: tuple[int, ...]
    name: str
    file_generation: int = 0  # which opened .blend file the job belongs to (see session)
    source: str = ""
    role: str = RESULT  # RESULT or PREVIEW
    image_ext: str = "png"  # of the job's frames (a preview's are JPEGs)
    transparent: bool = False  # RGBA frames of the dancer alone: the strip blends Alpha Over


@dataclass
class Job:
    """One retarget job: its message for the worker, its placement and its live state."""

    id: str
    label: str  # what the user knows it by: the source strip's name
    run: Any  # protocol.Run
    placement: Placement
    state: JobState = JobState.PENDING
    stage: str = ""
    done: int = 0
    total: int = 0
    message: str = ""
    result: Any = None  # protocol.Done once finished
    cancel_requested: bool = False
    placed: bool = False  # the result strip was created

    @property
    def progress(self) -> float:
        """0..1 within the current stage (1 when done)."""
        if self.state is JobState.DONE:
            return 1.0
        return self.done / self.total if self.total > 0 else 0.0

    def status_text(self) -> str:
        """One line for the queue panel."""
        if self.state is JobState.RUNNING:
            if self.cancel_requested:
                return "cancelling..."
            if self.total:
                return f"{self.stage} {self.done}/{self.total}"
            return self.stage or "starting..."
        if self.state is JobState.FAILED:
            return f"failed: {self.message}"
        if self.state is JobState.DONE and self.result is not None:
            done = f"done: {self.result.frame_count} frames"
            return f"{done}; {self.message}" if self.message else done
        return self.state.value


_ids = itertools.count(1)


def new_job_id(label: str) -> str:
    """A job id unique in this session and readable in folder names."""
    safe = "".join(c if c.isalnum() or c in "-_" else "_" for c in label)[:40] or "job"
    return f"{safe}-{int(time.time())}-{next(_ids)}"


class JobQueue:
    """The jobs of this Blender session, oldest first."""

    def __init__(self) -> None:
        self.jobs: list[Job] = []

    # --- looking up -------------------------------------------------------------------------

    def get(self, job_id: str) -> Job | None:
        return next((j for j in self.jobs if j.id == job_id), None)

    def running(self) -> Job | None:
        return next((j for j in self.jobs if j.state is JobState.RUNNING), None)

    def all_running(self) -> list[Job]:
        """The jobs sent to the worker (several where it hands them to a cluster)."""
        return [j for j in self.jobs if j.state is JobState.RUNNING]

    def next_pending(self) -> Job | None:
        return next((j for j in self.jobs if j.state is JobState.PENDING), None)

    def active(self) -> bool:
        """Whether anything is running or waiting."""
        return any(j.state in (JobState.PENDING, JobState.RUNNING) for j in self.jobs)

    # --- user actions -----------------------------------------------------------------------

    def add(self, job: Job) -> Job:
        if self.get(job.id) is not None:
            raise ValueError(f"job {job.id} is already queued")
        self.jobs.append(job)
        return job

    def cancel(self, job_id: str) -> bool:
        """Cancel a job. True when the worker must be told (the job is running)."""
        job = self._require(job_id)
        if job.state is JobState.PENDING:
            job.state = JobState.CANCELLED
            job.message = "cancelled before it started"
            return False
        if job.state is JobState.RUNNING:
            job.cancel_requested = True
            return True
        return False

    def retry(self, job_id: str) -> Job:
        """Queue a failed or cancelled job again (the worker resumes its job folder)."""
        job = self._require(job_id)
        if job.state not in (JobState.FAILED, JobState.CANCELLED):
            raise ValueError(f"only a failed or cancelled job can be retried, "
                             f"not a {job.state.value} one")
        job.state, job.stage, job.done, job.total = JobState.PENDING, "", 0, 0
        job.message, job.result, job.cancel_requested, job.placed = "", None, False, False
        return job

    def remove(self, job_id: str) -> Job:
        """Forget a job that is not running (its files stay on disk)."""
        job = self._require(job_id)
        if job.state is JobState.RUNNING:
            raise ValueError("a running job cannot be removed; cancel it first")
        self.jobs.remove(job)
        return job

    def clear_finished(self) -> int:
        before = len(self.jobs)
        self.jobs = [j for j in self.jobs if not j.state.finished]
        return before - len(self.jobs)

    # --- the runner's side ------------------------------------------------------------------

    def start(self, job_id: str, at_once: int = 1) -> Job:
        """Mark a pending job running; at most ``at_once`` jobs run together."""
        job = self._require(job_id)
        if job.state is not JobState.PENDING:
            raise ValueError(f"job {job_id} is {job.state.value}, not pending")
        if len(self.all_running()) >= at_once:
            raise ValueError("another job is running")
        job.state, job.stage, job.done, job.total = JobState.RUNNING, "starting", 0, 0
        return job

    def fail(self, job_id: str, message: str) -> Job:
        job = self._require(job_id)
        job.state, job.message = JobState.FAILED, message
        return job

    def apply(self, message: Any) -> Job | None:
        """Apply a worker message (progress, done, error, cancelled) to its job.

        Returns the job it changed; None for messages about no known running job (a late
        progress line after a cancel, say), which are ignored.
        """
        kind = getattr(message, "type", "")
        job = self.get(getattr(message, "job_id", None) or "")
        if job is None or job.state is not JobState.RUNNING:
            return None
        if kind == "progress":
            job.stage, job.done, job.total = message.stage, message.done, message.total
        elif kind == "done":
            job.state, job.result = JobState.DONE, message
            job.stage, job.done = "done", job.total
            job.message = "; ".join(getattr(message, "warnings", None) or [])
        elif kind == "error":
            job.state, job.message = JobState.FAILED, message.message
        elif kind == "cancelled":
            job.state, job.message = JobState.CANCELLED, "cancelled"
        else:
            return None
        return job

    def _require(self, job_id: str) -> Job:
        job = self.get(job_id)
        if job is None:
            raise KeyError(f"no job {job_id}")
        return job
