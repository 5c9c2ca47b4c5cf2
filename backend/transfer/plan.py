"""The pose pass: what every frame of the job will show, before any frame is drawn.

Source frames -> pose detection (cached per video, settings and range) -> gap filling and
smoothing -> global pose normalization onto the target -> per-frame user adjustments.

Why this is a pass of its own and not a thread running a few frames ahead of generation:
gap filling and smoothing would only need a look-ahead of half a second, but normalization
needs the *source's* statistics (its close and far ankle positions and body heights, paper
appendix 8.5), which are measured over the whole range; before every frame is detected, no
frame can be placed. The pass is cheap where it matters: its result is cached, so rerunning
a job (resuming it, or after changing the adjustments, the common loop in an editor) does
not detect again, and the preview that an editor shows first fills that cache. The track of
T frames is small (about 2 KB a frame); frames themselves are streamed.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import Cancelled, InputError
from ..normalize import Adjustments, NormalizationStats, compute_stats, normalize_track
from ..pose.pipeline import PoseOptions, video_poses
from ..pose.track import PoseTrack
from ..progress import ProgressFn
from .canvas import CanvasLayout, face_centers


@dataclass
class FramePlan:
    source: PoseTrack  # the source's clean poses, source pixels
    normalized: PoseTrack  # moved onto the target: target video pixels
    boxes: np.ndarray  # (T, 4) face boxes in the canvas
    warnings: list[str] = field(default_factory=list)


def plan_frames(source_path: Path, start: int, stop: int, fps: float | None,
                options: PoseOptions, target_stats: NormalizationStats,
                adjustments: Adjustments | None, layout: CanvasLayout, face_multiple: int,
                source_stats: NormalizationStats | None = None, report: ProgressFn | None = None,
                cancel: threading.Event | None = None, progress: bool = False,
                given: PoseTrack | None = None) -> FramePlan:
    """The poses of frames [start, stop) of the source, placed in the target's frame.

    ``source_stats`` replaces the statistics measured on these frames (a user override);
    ``given`` is the frames' clean pose track, used instead of detecting it (see
    `given_track`)."""

    def detect_report(done: int, total: int) -> None:
        if cancel is not None and cancel.is_set():
            raise Cancelled("cancelled during pose detection")
        if report is not None:
            report(done, total)

    track = given if given is not None else video_poses(
        source_path, options, start, stop, progress=progress, report=detect_report, fps=fps)
    if len(track) and not track.detected.any():
        raise InputError(source_path, f"no person was found in frames {start}..{stop - 1}: "
                                      f"there is no dance to transfer")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        measured = source_stats if source_stats is not None else compute_stats(track)
        normalized = normalize_track(track, measured, target_stats, adjustments)
    messages = list(dict.fromkeys(str(w.message) for w in caught))
    boxes = layout.face_boxes(face_centers(normalized), face_multiple)
    return FramePlan(track, normalized, boxes, messages)


def given_track(path: Path, source_path: Path, frame_count: int, size: tuple[int, int],
                start: int, stop: int) -> PoseTrack:
    """Frames [start, stop) of the pose track in ``path``: a track of the source's whole video
    (``frame_count`` entries, sliced here) or of exactly those frames, in its pixels (``size``)."""
    track = PoseTrack.load(path)
    if tuple(track.size) != tuple(size):
        raise InputError(path, f"the poses are of a {track.size[0]}x{track.size[1]} video but "
                               f"{source_path} is {size[0]}x{size[1]}")
    if len(track) == frame_count:
        return track.slice(start, stop)
    if len(track) == stop - start:
        return track
    raise InputError(path, f"has poses for {len(track)} frames, but the job has {stop - start} "
                           f"(frames {start}..{stop - 1}) and {source_path} {frame_count}")


def saved_track(path: Path, n_frames: int) -> PoseTrack | None:
    """The source's poses that an earlier run of the same job saved in its folder (``path``),
    or None when absent, unreadable or not of ``n_frames`` frames.

    A resumed job goes on with these rather than detecting again: detection is cached, but the
    cache may have been cleared, and the split into worker processes follows the machine's
    cores (see `pose.chunks`), which can move a keypoint by detector noise; frames made before
    and after the interruption must come from the same poses."""
    try:
        track = PoseTrack.load(path)
    except InputError:
        return None
    return track if len(track) == n_frames else None
