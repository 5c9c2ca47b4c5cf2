"""Running one job request: checks, the model kept between jobs, progress, the reply.

`execute` turns a `Run` into a transfer job (or a `Preview` into a pose preview, see
`preview_job`), runs it and returns the one reply the client gets for it: `Done`, `Error` or
`Cancelled`. It never raises.
"""

from __future__ import annotations

import logging
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Callable

from backend.errors import BackendError, FolderTaken
from backend.errors import Cancelled as JobCancelled
from backend.oserrors import as_backend_error

from .checks import to_adjustments
from .protocol import (Cancelled, Done, Error, Message, Preview, Progress, ProtocolError, Request,
                       Run)

if TYPE_CHECKING:  # the heavy modules are imported when a job runs, not when the worker starts
    from backend.models import Bundle
    from backend.onnx import CpuNetworks
    from backend.transfer import TransferJob

log = logging.getLogger(__name__)

PROGRESS_INTERVAL_S = 0.25  # at most ~4 progress messages a second (plus first/last of a stage)

Send = Callable[[Message], object]


@dataclass(frozen=True)
class JobSettings:
    """How this worker runs every job (chosen once, on the ``serve`` command line)."""

    device: str = "cpu"  # already resolved ("cuda", "cuda:1", "mps" or "cpu")
    precision: str = "auto"
    threads: int = 0  # per network operation on the CPU (0: chosen per job)
    progress_interval: float = PROGRESS_INTERVAL_S
    cluster: str | None = None  # run transfers on this Ray cluster (see backend.cluster)


def to_transfer_job(run: Run, settings: JobSettings) -> TransferJob:
    from backend.normalize import NormalizationStats
    from backend.pose.detector import HolisticConfig
    from backend.pose.pipeline import PoseOptions
    from backend.transfer import TransferJob

    return TransferJob(
        source=Path(run.source), model=Path(run.model), output_dir=Path(run.output_dir),
        frame_start=run.frame_start, frame_stop=run.frame_stop, fps=run.fps,
        adjustments=to_adjustments(run), face=run.face, side_by_side=run.side_by_side,
        method=run.method, device=settings.device, precision=settings.precision,
        threads=settings.threads,
        nearest_run=None if run.nearest_run is None else Path(run.nearest_run),
        source_stats=None if run.source_stats is None else NormalizationStats.load(run.source_stats),
        background=run.background,
        reuse=None if run.reuse is None else Path(run.reuse),
        pose_options=PoseOptions(detector=HolisticConfig(workers=run.pose_workers)),
    )


# --------------------------------------------------------------------------------------------
# The model kept between jobs
# --------------------------------------------------------------------------------------------


class ModelCache:
    """The most recently used model bundle, kept loaded for the next job.

    It implements the transfer's ``ModelSource``: ``get`` hands out the bundle's PyTorch
    networks on a device, ``cpu_networks`` its CPU networks (ONNX Runtime sessions, or the
    PyTorch modules of the bundle loaded on the CPU), each loaded once and then reused, so a
    second job with the same bundle loads nothing. A bundle is identified by its resolved
    folder and its manifest's modification time (saving a bundle rewrites the manifest, so a
    re-exported bundle is loaded afresh). One bundle at a time: a GPU rarely holds two
    generators comfortably. ``loads`` counts the loads (a test's window into the cache).
    """

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._bundle: Bundle | None = None
        self._device: str | None = None  # where _bundle's networks are
        self._cpu: dict[str, CpuNetworks] = {}  # ONNX Runtime's sessions
        self.loads = 0

    @staticmethod
    def _key_of(folder: Path) -> tuple:
        folder = folder.expanduser().resolve()
        try:
            mtime = (folder / "manifest.json").stat().st_mtime_ns
        except OSError:
            mtime = None  # load_bundle will say what is wrong with the folder
        return str(folder), mtime

    def _select(self, folder: Path) -> str:
        """Forget the kept model unless it is ``folder``'s; the folder's name for the log."""
        key = self._key_of(folder)
        if key != self._key:
            self.clear()  # free the old model before loading the new one
            self._key = key
        return key[0]

    def get(self, folder: Path, device: str) -> Bundle:
        """The bundle at ``folder`` with its networks on ``device``."""
        from backend.models import load_bundle

        name = self._select(folder)
        if self._bundle is None or self._device != str(device):
            log.info("loading model bundle %s on %s", name, device)
            started = time.monotonic()
            self._bundle, self._device = load_bundle(folder, device=device), str(device)
            self.loads += 1
            log.info("model bundle loaded in %.2f s", time.monotonic() - started)
        else:
            log.info("reusing the loaded model bundle %s", name)
        return self._bundle

    def cpu_networks(self, folder: Path, backend: str) -> CpuNetworks:
        """The CPU networks of the bundle at ``folder`` on ``backend`` ("onnx" or "torch")."""
        from backend.onnx import load_cpu_networks

        if backend == "torch":  # the bundle's own modules, on the CPU
            return load_cpu_networks(self.get(folder, "cpu"), "torch")
        name = self._select(folder)
        if backend in self._cpu:
            log.info("reusing the loaded model bundle %s (%s)", name, backend)
            return self._cpu[backend]
        log.info("loading model bundle %s for %s on the CPU", name, backend)
        started = time.monotonic()
        # A bundle already loaded on the CPU spares loading its weights again should the
        # networks need exporting; otherwise only the (cached) ONNX files are read.
        source = self._bundle if self._bundle is not None and self._device == "cpu" else folder
        self._cpu[backend] = load_cpu_networks(source, backend)
        self.loads += 1
        log.info("model bundle loaded in %.2f s", time.monotonic() - started)
        return self._cpu[backend]

    def clear(self) -> None:
        self._bundle, self._device, self._key = None, None, None
        self._cpu = {}
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()


# --------------------------------------------------------------------------------------------
# Progress and the job itself
# --------------------------------------------------------------------------------------------


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
            settings: JobSettings) -> Message:
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
            from .preview_job import run_preview

            reply = run_preview(request, report, cancel)
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
              settings: JobSettings) -> Done:
    from backend.models import read_manifest
    from backend.output_paths import check_output_folder
    from backend.transfer import run_transfer

    # The model first: a missing or incompatible bundle is reported before anything else.
    # Its networks are loaded (or found in the cache) by the transfer, which knows the
    # backend: PyTorch on the worker's device, or on the CPU the job's backend.
    if run.method == "generator":
        read_manifest(Path(run.model))
    check_output_folder(Path(run.output_dir))
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


def _unexpected(exc: Exception, job_id: str, cache: ModelCache, settings: JobSettings) -> Error:
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
