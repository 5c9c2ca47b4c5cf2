"""From a request to a job: the one way a `TransferJob` (or a `PosePreviewJob`) is made.

Every entry builds the same request, `backend.worker.protocol.Run` (or ``Preview``): the
command line from its flags (`backend.commands.retarget`), the worker from a JSON line, the
add-on from a strip. `transfer_job` checks it (`Run.validate`, the one check of its values)
and turns it into the job the pipeline runs; what is not the request's but the process's
(the device, threads, the CPU backend: `RunsOn`) or only the command line's (a pose track,
pose settings, ``--overwrite``: `LocalInputs`) comes beside it.

What the request names must also be there: `check_folders` (the model, the earlier job to
reuse, the output folder) runs next, in the same function, before anything is written.

Adding a field to a job: a field of ``Run`` (with its check in ``protocol.validate``), its
flag in ``commands/retarget.py`` (same name), and its line here. ``precision`` is such a
field: ``--precision``, the request's ``precision``, ``TransferJob.precision``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..folders import TRANSFER_JOB, kind_of
from ..models import read_manifest
from ..normalize import NormalizationStats
from ..output_paths import check_output_folder
from ..pose.detector import HolisticConfig
from ..pose.pipeline import PoseOptions
from ..worker.protocol import Preview, Run
from .job import TransferJob


@dataclass(frozen=True)
class RunsOn:
    """How this process runs jobs: the command line's flags, the worker's ``serve`` options."""

    device: str = "auto"
    precision: str = "auto"  # what a request's "auto" precision means here
    threads: int = 0  # per network operation on the CPU (0: chosen per job)
    cpu_backend: str = "auto"  # on the CPU at fp32: "auto", "onnx" or "torch"


@dataclass(frozen=True)
class LocalInputs:
    """What only the command line gives a job (a worker's client has no such options)."""

    poses: Path | None = None  # a pose track instead of detecting the source's poses
    pose_options: PoseOptions | None = None  # None: the defaults, with the request's workers
    overwrite: bool = False  # discard another job found in the folder


def transfer_job(run: Run, runs_on: RunsOn = RunsOn(),
                 local: LocalInputs = LocalInputs()) -> TransferJob:
    """The `TransferJob` of ``run``, checked first: its values (`Run.validate`: `ProtocolError`,
    a `RequestError`), then what its folders hold (`check_folders`: `InputError`)."""
    run.validate()
    check_folders(run)
    return TransferJob(
        source=Path(run.source), model=_path(run.model), output_dir=Path(run.output_dir),
        frame_start=run.frame_start, frame_stop=run.frame_stop, fps=run.fps,
        adjustments=run.adjustments, face=run.face, side_by_side=run.side_by_side,
        method=run.method, device=runs_on.device,
        precision=runs_on.precision if run.precision == "auto" else run.precision,
        cpu_backend=runs_on.cpu_backend, threads=runs_on.threads,
        nearest_run=_path(run.nearest_run),
        pose_options=_pose_options(run.pose_workers, local),
        source_stats=_stats(run.source_stats), poses=local.poses, background=run.background,
        overwrite=local.overwrite, reuse=_path(run.reuse))


def check_folders(run: Run) -> None:
    """Refuse ``run`` before anything is written when a folder it names cannot serve
    (`InputError` naming the path): the model bundle (read first, so that a missing or
    incompatible one is the first thing reported), the earlier job to start from, the output
    folder. The one check of these for the command line and the worker alike."""
    if run.method == "generator" and run.model is not None:
        read_manifest(Path(run.model))
    if run.reuse is not None:
        reuse = Path(run.reuse)
        if not reuse.is_dir():
            raise InputError(reuse, "--reuse (run.reuse) needs an earlier job folder, and "
                                    "there is none here")
        if kind_of(reuse) != TRANSFER_JOB:
            raise InputError(reuse, "--reuse (run.reuse) needs an earlier job folder, and this "
                                    "one holds no transfer job (no job.json); give the output "
                                    "folder of an earlier retarget of this source, or leave it "
                                    "out")
    check_output_folder(Path(run.output_dir))


def preview_job(preview: Preview, local: LocalInputs = LocalInputs()):
    """The `PosePreviewJob` of ``preview``, checked first (`ProtocolError`)."""
    from ..pose_preview import PosePreviewJob

    preview.validate()
    return PosePreviewJob(
        source=Path(preview.source), model=Path(preview.model),
        output_dir=Path(preview.output_dir), frame_start=preview.frame_start,
        frame_stop=preview.frame_stop, fps=preview.fps, adjustments=preview.adjustments,
        pose_options=_pose_options(None, local), video=preview.video,
        frame_format=preview.frame_format, source_stats=_stats(preview.source_stats))


def _path(text: str | None) -> Path | None:
    return None if text is None else Path(text)


def _stats(path: str | None) -> NormalizationStats | None:
    return None if path is None else NormalizationStats.load(path)


def _pose_options(workers: int | None, local: LocalInputs) -> PoseOptions:
    if local.pose_options is not None:
        return local.pose_options
    return PoseOptions(detector=HolisticConfig(workers=workers))
