"""Running one job request: checks, progress, the reply.

`execute` turns a `Run` into a transfer job (or a `Preview` into a pose preview), runs it
and returns the one reply the client gets for it: `Done`, `Error` or `Cancelled`. It never
raises.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Callable

from backend.errors import BackendError, FolderTaken, JobCancelled
from backend.oserrors import as_backend_error

from .protocol import (Cancelled, Done, Error, Message, Preview, Progress, ProtocolError, Request,
                       Run)

if TYPE_CHECKING:  # the heavy modules are imported when a job runs, not when the worker starts
    from backend.transfer import TransferJob
    from backend.transfer.model_cache import ModelCache

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.25  # at most ~4 progress messages a second (plus first/last of a stage)

Send = Callable[[Message], object]


@dataclass(frozen=True)
class WorkerSettings:
    """How this worker runs every job (chosen once, on the ``serve`` command line).

    ``serve`` resolves ``device`` before the first job ("auto" becomes "cuda", "mps" or
    "cpu"), except with a cluster, where each node resolves it for itself.
    """

    device: str = "auto"  # "auto", "cpu", "cuda", "cuda:N" or "mps"
    precision: str = "auto"
    threads: int = 0  # per network operation on the CPU (0: chosen per job)
    cluster: str | None = None  # run transfers on this Ray cluster (see backend.cluster)
    log_level: str = "INFO"
    progress_interval: float = PROGRESS_INTERVAL_S


def to_transfer_job(run: Run, settings: WorkerSettings) -> TransferJob:
    """The transfer job of ``run`` on this worker (`transfer.request.transfer_job`)."""
    from backend.transfer.request import RunsOn, transfer_job

    return transfer_job(run, RunsOn(device=settings.device, precision=settings.precision,
                                    threads=settings.threads))


class ProgressThrottle:
    """``report(stage, done, total)`` for the transfer, sending rate-limited `Progress`.

    The first report of a stage and the last one (done == total) always go out, so the
    client sees every stage begin and end; in between at most one per ``interval`` seconds.
    """

    def __init__(self, send: Send, job_id: str, interval: float = PROGRESS_INTERVAL_S,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self._send, self._job_id, self._interval, self._clock = send, job_id, interval, clock
        self._stage: str | None = None
        self._last = -math.inf

    def __call__(self, stage: str, done: int, total: int) -> None:
        now = self._clock()
        boundary = stage != self._stage or done >= total
        if not boundary and now - self._last < self._interval:
            return
        self._stage, self._last = stage, now
        self._send(Progress(job_id=self._job_id, stage=stage, done=int(done), total=int(total)))


def _out_of_memory(exc: BaseException) -> bool:
    import torch

    return isinstance(exc, (MemoryError, torch.cuda.OutOfMemoryError))


def execute(request: Request, cancel, send: Send, cache: ModelCache,
            settings: WorkerSettings) -> Message:
    """Run ``request`` to its end and return its reply (`Done`, `Error` or `Cancelled`).

    ``cancel`` is a `threading.Event`; once set, the job stops at its next frame (a transfer
    leaves its folder resumable). Progress goes out through ``send`` while the job runs.
    """
    started = time.monotonic()
    job_id = request.job_id
    try:
        if cancel.is_set():
            raise JobCancelled("cancelled before it started")
        report = ProgressThrottle(send, job_id, settings.progress_interval)
        if isinstance(request, Preview):
            reply = _preview(request, report, cancel)
        else:
            reply = _transfer(request, report, cancel, cache, settings)
    except JobCancelled:
        log.info("job %s cancelled after %.1f s", job_id, time.monotonic() - started)
        return Cancelled(job_id=job_id)
    except ProtocolError as exc:
        return Error(code="bad_message", message=str(exc), job_id=job_id)
    except (BackendError, OSError) as exc:
        error = as_backend_error(exc)  # a full disk, a name too long: the user's to fix
        if error is None:
            return _unexpected(exc, job_id, cache, settings)
        if isinstance(error, FolderTaken):
            error = error.plain()  # the protocol has no --overwrite
        log.info("job %s failed: %s", job_id, error)
        return Error(code=error.code, message=str(error), job_id=job_id)
    except Exception as exc:  # noqa: BLE001 - any failure must become a reply, not a dead worker
        return _unexpected(exc, job_id, cache, settings)
    log.info("job %s done: %d frames in %.1f s", job_id, reply.frame_count,
             time.monotonic() - started)
    return reply


def _transfer(run: Run, report: ProgressThrottle, cancel, cache: ModelCache,
              settings: WorkerSettings) -> Done:
    from backend.transfer import run_transfer

    # Checked here (`transfer_job`: the values, then the folders). The networks are loaded
    # (or found in the cache) by the transfer, which knows the backend: PyTorch on the
    # worker's device, or on the CPU the job's backend.
    job = to_transfer_job(run, settings)
    if settings.cluster is not None:
        from backend.cluster import run_on_cluster

        result = run_on_cluster(job, settings.cluster, report=report, cancel=cancel)
    else:
        result = run_transfer(job, report=report, cancel=cancel, models=cache, progress=False)
    return Done(job_id=run.job_id, frames_dir=str(result.frames_dir),
                frame_count=result.frame_count,
                video=None if result.video is None else str(result.video),
                side_by_side=None if result.side_by_side is None else str(result.side_by_side),
                warnings=list(result.warnings))


def _preview(preview: Preview, report: ProgressThrottle, cancel) -> Done:
    """Draw the pose preview's frames and return its `Done` (errors are raised, as the
    transfer's)."""
    from backend.pose_preview import run_pose_preview
    from backend.transfer.request import preview_job

    result = run_pose_preview(preview_job(preview), report=report, cancel=cancel)
    return Done(job_id=preview.job_id, frames_dir=str(result.frames_dir),
                frame_count=result.frame_count,
                video=None if result.video is None else str(result.video))


def _unexpected(exc: Exception, job_id: str, cache: ModelCache, settings: WorkerSettings) -> Error:
    """The reply to a failure that is not the user's: out of memory, or a bug."""
    if _out_of_memory(exc):
        cache.clear()
        log.warning("job %s ran out of memory: %s", job_id, exc)
        return Error(code="out_of_memory", job_id=job_id,
                     message=f"The {settings.device.upper()} ran out of memory while running "
                             f"the job. Close other programs using it, or use a smaller "
                             f"model or the CPU. ({exc})")
    log.exception("job %s failed unexpectedly", job_id)
    return Error(code="internal", job_id=job_id,
                 message=f"Unexpected {type(exc).__name__}: {exc} (details in the worker log)")
