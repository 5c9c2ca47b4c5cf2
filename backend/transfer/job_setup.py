"""What a transfer run settles about its job before it claims the folder: the adjustments
checked against the source's range, the target it draws, the runtime and backend (given what
made the frames so far), and the job's identity, what decides its frames (see `job`)."""

from __future__ import annotations

import json
from pathlib import Path

from ..models.bundle import Bundle, read_manifest
from ..pose.cache import file_identity, video_identity
from ..runtime import Runtime
from ..target.prepared import PreparedRun
from .inference import BackendConflict, choose_backend, transfer_runtime
from .job import TransferJob, bundle_identity
from .job_state import Made
from .plan import SourceRange
from .target_spec import TargetSpec


def check_adjustments(job: TransferJob, n: int) -> None:
    """The adjustments against the ``n`` frames the job's range has in its source (known
    once the source is read): `RequestError`, as any refused request, otherwise."""
    if job.adjustments is not None:
        job.adjustments.check(n, "run.adjustments")


def load_target(job: TransferJob, bundle: Bundle | None) -> TargetSpec:
    """What the job draws: from the model bundle's manifest and/or the prepared target run
    (the networks are loaded by `TransferRun`)."""
    prepared = PreparedRun.open(job.nearest_run) if job.method == "nearest" else None
    if bundle is not None:
        return TargetSpec.load(bundle.manifest, bundle.folder, prepared)
    manifest = read_manifest(job.model) if job.model is not None else None
    return TargetSpec.load(manifest, job.model, prepared)


def choose_runtime(job: TransferJob, made: Made | None) -> tuple[Runtime, str | None]:
    """The runtime (device, precision) and the backend that runs the networks (None for the
    baseline), given what made the job's frames so far (``made``; None: no frames): a job
    continues at its precision ("auto" continues with it) and on its backend
    (`inference.choose_backend`); `BackendConflict` when the request asks for another."""
    precision = job.precision
    if made is not None and precision not in ("auto", made.precision):
        raise BackendConflict(
            f"its frames so far were made at {made.precision}; continuing at {precision} "
            f"would change every frame from here on (each frame conditions the next)",
            f"run it with --precision {made.precision} (or auto) to continue, or --overwrite "
            f"to start again at {precision}",
            f"run it at {made.precision} (or auto) to continue, or use another output folder")
    runtime = (Runtime.resolve(job.device, made.precision) if made is not None
               else transfer_runtime(job.device, precision, job.cpu_backend))
    if job.method != "generator":
        return runtime, None
    return runtime, choose_backend(job.cpu_backend, runtime,
                                   made.backend if made is not None else None)


def job_identity(job: TransferJob, source: SourceRange, fps: float, target: TargetSpec,
                 model: Path | None) -> dict:
    """What decides the job's frames (see `job`), as plain JSON values; ``model`` is the
    bundle folder."""
    start, stop = source.start, source.stop
    uses_face = bool(job.face and job.method == "generator" and target.manifest is not None
                     and target.manifest.face_generator is not None)
    identity = {
        "source": video_identity(job.source), "range": [start, stop], "fps": fps,
        "method": job.method,
        "model": None if model is None else bundle_identity(model),
        "target_frames": None if target.prepared is None else target.prepared.fingerprint,
        "face": uses_face, "resolution": list(target.resolution),
        "adjustments": None if job.adjustments is None else job.adjustments.to_dict(),
        "poses": job.pose_options.to_dict() if job.poses is None else None,
        "pose_track": None if job.poses is None else file_identity(job.poses),
        "source_stats": None if job.source_stats is None else job.source_stats.to_dict(),
    }
    return json.loads(json.dumps(identity))  # as it reads back from job.json
