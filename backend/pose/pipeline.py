"""From a video (or an OpenPose JSON folder) to a clean pose track: detect, fill gaps, smooth.

This is the one place that chains stage 1's parts, so the command line, training's
``prepare`` and the transfer pipeline all see the same poses for the same settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..progress import ProgressFn
from .consistency import drop_stray_faces
from .detector import HolisticConfig, detect_video
from .gaps import DEFAULT_MAX_GAP_S, fill_gaps
from .smoothing import SmoothingConfig, smooth_track
from .track import PoseTrack

DEFAULT_OPENPOSE_FPS = 25.0  # OpenPose's JSON files do not say their video's frame rate


@dataclass(frozen=True)
class PoseOptions:
    """Everything that decides what poses a video gets. Defaults follow the official code."""

    detector: HolisticConfig = field(default_factory=HolisticConfig)
    fill_gaps: bool = True
    max_gap_s: float = DEFAULT_MAX_GAP_S  # longer holes hold the last pose instead
    smoothing: SmoothingConfig = field(default_factory=SmoothingConfig)

    def to_dict(self) -> dict:
        return {
            "detector": self.detector.settings(),
            "fill_gaps": self.fill_gaps,
            "max_gap_s": self.max_gap_s,
            "smoothing": self.smoothing.to_dict(),
        }


def is_openpose_folder(path: str | Path) -> bool:
    path = Path(path)
    return path.is_dir() and any(path.glob("*_keypoints.json"))


def clean_track(raw: PoseTrack, options: PoseOptions) -> PoseTrack:
    """Gap filling and smoothing as ``options`` say, then faces far from the body's head
    dropped (`consistency`: a face interpolated across a turn of the head ends up there);
    frame count and flags unchanged."""
    track = fill_gaps(raw, options.max_gap_s) if options.fill_gaps else raw
    track = drop_stray_faces(smooth_track(track, options.smoothing))
    track.detector = {**raw.detector, "post": options.to_dict()}
    return track


def video_poses(
    path: str | Path,
    options: PoseOptions = PoseOptions(),
    start: int = 0,
    stop: int | None = None,
    progress: bool = True,
    report: ProgressFn | None = None,
    fps: float | None = None,
    size: tuple[int, int] | None = None,
) -> PoseTrack:
    """The clean pose track of frames [start, stop) of a video, image folder or OpenPose folder.

    Detection is cached (see `cache`), so asking again for the same video costs nothing.
    ``fps`` is the frame rate of an image or OpenPose folder (movies use their own; an
    OpenPose folder without one gets 25), ``size`` the (width, height) of an OpenPose
    folder's video (estimated from the keypoints without it).
    """
    if is_openpose_folder(path):
        from .openpose_json import load_openpose_folder

        raw = load_openpose_folder(path, size, fps or DEFAULT_OPENPOSE_FPS,
                                   options.detector.subject_hint)
        raw = raw.slice(start, stop if stop is not None else 10**12)
    else:
        raw = detect_video(path, options.detector, start, stop, progress=progress, report=report, fps=fps)
    return clean_track(raw, options)
