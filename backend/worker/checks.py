"""Checks done when a job request arrives, so that a bad one is answered at once (with
``bad_message``), not when its turn comes; and the request's adjustments as the backend's."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import PurePath, PureWindowsPath
from typing import TYPE_CHECKING

from backend.checks import FPS, FRAME, FRAME_STOP, WORKERS, Number

from .protocol import MAX_JOB_ID_CHARS, ProtocolError, Request, Run, quote

if TYPE_CHECKING:
    from backend.normalize import Adjustments

METHODS = ("generator", "nearest")
PREVIEW_FORMATS = ("jpg", "png")  # backend.pose_preview.run.FRAME_FORMATS (not imported: heavy)


# What each numeric field may be (the command line's flags say the same: backend/checks.py).
NUMBERS: dict[str, Number] = {"frame_start": FRAME, "frame_stop": FRAME_STOP, "fps": FPS,
                              "pose_workers": WORKERS}
PATHS = ("source", "model", "output_dir", "source_stats", "nearest_run", "reuse")
BACKGROUND_WORDS = ("target", "transparent")  # a run's background, when not a path


def check_request(request: Request) -> None:
    """Raise `ProtocolError` for a ``run`` or ``preview`` whose fields are well-typed but make
    no sense (the message names the field, the value and what is allowed)."""
    kind = request.type
    if not request.job_id.strip():
        raise ProtocolError(f"{kind}.job_id must not be empty")
    if len(request.job_id) > MAX_JOB_ID_CHARS:
        raise ProtocolError(f"{kind}.job_id has {len(request.job_id)} characters; at most "
                            f"{MAX_JOB_ID_CHARS} are allowed")
    for name in ("source", "model", "output_dir"):
        if not getattr(request, name).strip():
            raise ProtocolError(f"{kind}.{name} must not be empty")
    for name in PATHS:
        _check_path(kind, name, getattr(request, name, None))
    if isinstance(request, Run) and request.background not in BACKGROUND_WORDS:
        _check_path(kind, "background", request.background)
    for name, number in NUMBERS.items():
        value = getattr(request, name, None)
        if value is not None and not number.accepts(value):
            raise ProtocolError(f"{kind}.{name} must be {number.allowed()}, got {quote(value)}")
    if request.frame_stop is not None and request.frame_stop <= request.frame_start:
        raise ProtocolError(f"{kind}.frame_stop ({quote(request.frame_stop)}) must be greater "
                            f"than {kind}.frame_start ({quote(request.frame_start)})")
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


def _check_path(kind: str, name: str, path: str | None) -> None:
    """A path the worker is given: absolute (the worker's own folder means nothing to its
    client) and without NUL characters (no file system takes them)."""
    if path is None:
        return
    if "\0" in path:
        raise ProtocolError(f"{kind}.{name} contains a NUL character, which no path can hold")
    if not PurePath(path).is_absolute() and not PureWindowsPath(path).is_absolute():
        raise ProtocolError(f"{kind}.{name} must be an absolute path, got {quote(path)}")


def _check_method(run: Run) -> None:
    if run.method not in METHODS:
        raise ProtocolError(f"run.method must be one of {list(METHODS)}, got {quote(run.method)}")
    if run.method == "nearest" and not (run.nearest_run or "").strip():
        raise ProtocolError("run.nearest_run (a prepared training run folder) is needed by "
                            "method 'nearest'")
    if run.method == "generator" and run.nearest_run is not None:
        raise ProtocolError("run.nearest_run is for method 'nearest'; the generator draws from "
                            "run.model alone (leave nearest_run out)")


def to_adjustments(request: Request) -> Adjustments:
    """The request's ``adjust`` as `Adjustments`; `ProtocolError` when the values are unusable."""
    from backend.normalize import Adjustments

    try:
        return Adjustments(**asdict(request.adjust))
    except ValueError as exc:
        raise ProtocolError(f"{request.type}.adjust: {exc}") from None
