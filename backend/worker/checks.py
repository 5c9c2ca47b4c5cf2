"""Checks done when a job request arrives, so that a bad one is answered at once (with
``bad_message``), not when its turn comes; and the request's adjustments as the backend's."""

from __future__ import annotations

import math
from dataclasses import asdict
from typing import TYPE_CHECKING

from .protocol import MAX_JOB_ID_CHARS, ProtocolError, Request, Run, quote

if TYPE_CHECKING:
    from backend.normalize import Adjustments

METHODS = ("generator", "nearest")
PREVIEW_FORMATS = ("jpg", "png")  # backend.pose_preview.run.FRAME_FORMATS (not imported: heavy)


def check_request(request: Request) -> None:
    """Raise `ProtocolError` for a ``run`` or ``preview`` whose fields are well-typed but make
    no sense (the message names the field)."""
    kind = request.type
    if not request.job_id.strip():
        raise ProtocolError(f"{kind}.job_id must not be empty")
    if len(request.job_id) > MAX_JOB_ID_CHARS:
        raise ProtocolError(f"{kind}.job_id has {len(request.job_id)} characters; at most "
                            f"{MAX_JOB_ID_CHARS} are allowed")
    for name in ("source", "model", "output_dir"):
        if not getattr(request, name).strip():
            raise ProtocolError(f"{kind}.{name} must not be empty")
    if request.frame_start < 0:
        raise ProtocolError(f"{kind}.frame_start must be >= 0, got {quote(request.frame_start)}")
    if request.frame_stop is not None and request.frame_stop <= request.frame_start:
        raise ProtocolError(f"{kind}.frame_stop ({quote(request.frame_stop)}) must be greater "
                            f"than {kind}.frame_start ({quote(request.frame_start)})")
    if request.fps is not None and not (math.isfinite(request.fps) and request.fps > 0):
        raise ProtocolError(f"{kind}.fps must be a positive number, got {quote(request.fps)}")
    if isinstance(request, Run):
        _check_method(request)
    elif request.frame_format not in PREVIEW_FORMATS:
        raise ProtocolError(f"preview.frame_format must be one of {list(PREVIEW_FORMATS)}, got "
                            f"{quote(request.frame_format)}")
    n_frames = to_adjustments(request).n_frames
    if n_frames is not None and request.frame_stop is not None \
            and n_frames != request.frame_stop - request.frame_start:
        raise ProtocolError(f"{kind}.adjust has {n_frames} values per field, but the job has "
                            f"{request.frame_stop - request.frame_start} frames")


def _check_method(run: Run) -> None:
    if run.pose_workers is not None and run.pose_workers < 1:
        raise ProtocolError(f"run.pose_workers must be at least 1, got {quote(run.pose_workers)}")
    if run.method not in METHODS:
        raise ProtocolError(f"run.method must be one of {list(METHODS)}, got {quote(run.method)}")
    if run.method == "nearest" and not (run.nearest_run or "").strip():
        raise ProtocolError("run.nearest_run (a prepared training run folder) is needed by "
                            "method 'nearest'")


def to_adjustments(request: Request) -> Adjustments:
    """The request's ``adjust`` as `Adjustments`; `ProtocolError` when the values are unusable."""
    from backend.normalize import Adjustments

    try:
        return Adjustments(**asdict(request.adjust))
    except ValueError as exc:
        raise ProtocolError(f"{request.type}.adjust: {exc}") from None
