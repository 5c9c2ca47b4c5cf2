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

from ..errors import JobCancelled, InputError
from ..normalize import Adjustments, NormalizationStats, compute_stats, normalize_track
from ..pose.gaps import away_frames, gap_frames, true_runs
from ..pose.pipeline import PoseOptions, video_poses
from ..pose.track import PoseTrack
from ..progress import ProgressFn
from ..target.face import face_centers
from .target_spec import TargetSpec



def frame_range(source: Path, start: int, stop: int | None, frame_count: int) -> tuple[int, int]:
    """[start, stop) of a job within a source of ``frame_count`` frames (stop clamped to its
    end, as slicing); `InputError` when that is empty. Transfer and pose preview both."""
    end = frame_count if stop is None else min(stop, frame_count)
    if not start < end:
        raise InputError(source, f"frame range [{start}, {end}) is empty: the video has "
                                 f"{frame_count} frames")
    return start, end


@dataclass(frozen=True)
class SourceRange:
    """Frames [start, stop) of the source video, and how their poses are found."""

    path: Path
    start: int
    stop: int
    fps: float | None = None  # of an image-sequence folder
    options: PoseOptions = field(default_factory=PoseOptions)
    given: PoseTrack | None = None  # the frames' clean poses, instead of detecting them


@dataclass(frozen=True)
class PosePlacement:
    """How the source's poses are moved onto the target."""

    adjustments: Adjustments | None = None  # the user's per-frame scale and offsets
    source_stats: NormalizationStats | None = None  # instead of measuring the range's


@dataclass
class Watch:
    """How long work is watched: progress reports, a cancel flag and a bar on stderr."""

    report: ProgressFn | None = None
    cancel: threading.Event | None = None
    progress: bool = False

    def check(self, done: int, total: int) -> None:
        """Report progress; raise `JobCancelled` once cancel is set."""
        if self.cancel is not None and self.cancel.is_set():
            raise JobCancelled("cancelled during pose detection")
        if self.report is not None:
            self.report(done, total)


@dataclass
class FramePlan:
    source: PoseTrack  # the source's clean poses, source pixels
    normalized: PoseTrack  # moved onto the target: target video pixels
    boxes: np.ndarray  # (T, 4) face boxes in the canvas
    windows: np.ndarray | None = None  # (T, 4) person windows in the canvas (a model with one)
    warnings: list[str] = field(default_factory=list)
    # (T,) bool: no dancer (undetected for longer than the gaps that are filled); these frames
    # show no one (see `showing.Showing.empty`). None: a dancer in every frame.
    absent: np.ndarray | None = None

    def is_absent(self, i: int) -> bool:
        return self.absent is not None and bool(self.absent[i])

    def absent_ranges(self, first: int) -> list[tuple[int, int]]:
        """The (first, last) frame numbers of each stretch without a dancer, numbered from
        ``first`` (the source's number of the job's first frame)."""
        if self.absent is None:
            return []
        return [(first + a, first + b - 1) for a, b in true_runs(self.absent)]


def plan_frames(source: SourceRange, target: TargetSpec,
                placement: PosePlacement = PosePlacement(), watch: Watch = Watch()) -> FramePlan:
    """The poses of the source's frames, placed in the target's frame."""
    track = source.given if source.given is not None else video_poses(
        source.path, source.options, source.start, source.stop, progress=watch.progress,
        report=watch.check, fps=source.fps)
    if len(track) and not track.detected.any():
        raise InputError(source.path, f"no person was found in frames {source.start}.."
                                      f"{source.stop - 1}: there is no dance to transfer")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        measured = placement.source_stats if placement.source_stats is not None \
            else compute_stats(track)
        normalized = normalize_track(track, measured, target.stats, placement.adjustments)
    messages = list(dict.fromkeys(str(w.message) for w in caught))
    boxes = target.layout.face_boxes(face_centers(normalized), target.face_multiple)
    windows = None if target.window is None else target.window.regions(normalized, target.layout)
    filled = source.options.fill_gaps and np.isfinite(track.fps) and track.fps > 0
    absent = away_frames(track.detected,
                         gap_frames(track, source.options.max_gap_s) if filled else 0)
    return FramePlan(track, normalized, boxes, windows, messages,
                     absent if absent.any() else None)


def first_change(earlier: PoseTrack | None, plan: FramePlan, target: TargetSpec) -> int:
    """The first frame whose drawing inputs (normalized pose, face box, person window) differ
    from those an ``earlier`` normalized track of the same frames gave; ``len(plan)`` when
    none does. A frame's face box may come from a later frame (one without a head takes the
    nearest one's), so the boxes are compared too (a window depends only on the poses up to
    its frame, and is compared all the same)."""
    new = plan.normalized
    if earlier is None or len(earlier) != len(new) or earlier.size != new.size:
        return 0
    boxes = target.layout.face_boxes(face_centers(earlier), target.face_multiple)
    same = ((earlier.body == new.body).all(axis=(1, 2)) & (earlier.face == new.face).all(axis=(1, 2))
            & (earlier.hands == new.hands).all(axis=(1, 2, 3)) & (boxes == plan.boxes).all(axis=1))
    if plan.windows is not None and target.window is not None:
        same &= (target.window.regions(earlier, target.layout) == plan.windows).all(axis=1)
    changed = np.flatnonzero(~same)
    return int(changed[0]) if len(changed) else len(new)


def given_track(path: Path, source_path: Path, frame_count: int, size: tuple[int, int],
                start: int, stop: int) -> PoseTrack:
    """Frames [start, stop) of the pose track in ``path``: a track of the source's whole video
    (``frame_count`` entries, sliced here) or of exactly those frames, in its pixels (``size``)."""
    track = PoseTrack.load(path)
    if tuple(track.size) != tuple(size):
        guessed = track.detector.get("size_estimated")  # an OpenPose import without its video
        raise InputError(path, f"the poses are of a {track.size[0]}x{track.size[1]} video but "
                               f"{source_path} is {size[0]}x{size[1]}" + (
                                   f" (the size was guessed: import the poses again with "
                                   f"`poses JSON_DIR --video {source_path}`)" if guessed else ""))
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

