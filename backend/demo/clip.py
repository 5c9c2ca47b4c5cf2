"""Render a demo clip: the performer moving along a pose track, as an MP4 or PNG frames.

The clip comes with its exact ground truth, the very ``PoseTrack`` it was drawn from,
so tests and the demo pipeline know what a pose detector should find in every frame.
"""

from __future__ import annotations

from pathlib import Path

from ..errors import InputError
from ..pose.track import PoseTrack
from ..progress import ProgressFn, progress_bar
from ..video import Mp4Writer, PngSequenceWriter
from .motion import dance_motion, target_motion
from .performer import Appearance, render_performer

VIDEO_SUFFIXES = (".mp4", ".mov", ".m4v")
MOTIONS = {"dance": dance_motion, "target": target_motion}


def make_clip(out: str | Path, track: PoseTrack, appearance: Appearance = Appearance(),
              track_path: str | Path | None = None, progress: bool = True,
              report: ProgressFn | None = None) -> PoseTrack:
    """Draw the performer in every frame of ``track`` into ``out``; return ``track``.

    ``out`` ending in .mp4/.mov/.m4v is written as an H.264 video (at the track's fps),
    anything else is a folder of numbered PNGs (000001.png, ...). Frames are rendered and
    written one at a time, so any length fits in memory. ``track_path``, when given,
    receives the ground-truth track (.npz) once the clip is complete. A PNG folder must be
    new or empty, so that no frames of another clip are overwritten or left mixed in.
    """
    out = Path(out)
    is_video = out.suffix.lower() in VIDEO_SUFFIXES
    if not is_video and out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise InputError(out, "is not an empty folder; give a new or empty folder for the PNG frames "
                              "(or a .mp4 path for a video)")
    frames = progress_bar(range(len(track)), len(track), "demo clip", progress, report)
    if is_video:
        with Mp4Writer(out, track.fps, track.size) as writer:
            for i in frames:
                writer.write(render_performer(track.frame(i), track.size, appearance))
    else:
        writer = PngSequenceWriter(out)
        for i in frames:
            writer.write(render_performer(track.frame(i), track.size, appearance))
    if track_path is not None:
        track.save(track_path)
    return track


def make_demo_clip(out: str | Path, motion: str = "dance", n_frames: int = 300, fps: float = 30.0,
                   size: tuple[int, int] = (512, 512), seed: int = 0,
                   appearance: Appearance = Appearance(), progress: bool = True) -> PoseTrack:
    """A ready-made demo clip: ``motion`` is 'dance' (a source) or 'target' (a training video),
    of the performer's standard proportions (``make_clip`` draws any track)."""
    if motion not in MOTIONS:
        raise ValueError(f"unknown demo motion {motion!r}; choose one of {sorted(MOTIONS)}")
    track = MOTIONS[motion](n_frames, fps=fps, size=size, seed=seed)
    return make_clip(out, track, appearance, progress=progress)
