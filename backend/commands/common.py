"""Command-line options shared by several commands, and their conversion to configs."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from ..normalize import Adjustments
from ..output_paths import check_output_file, refuse_foreign_file
from ..pose.detector import HolisticConfig
from ..pose.gaps import DEFAULT_MAX_GAP_S
from ..pose.pipeline import PoseOptions
from ..pose.smoothing import METHODS, SmoothingConfig
from ..pose.track import PoseTrack
from ..checks import FPS, FRAME, FRAME_STOP, MAX_GAP_S, SMOOTH_WINDOW
from .parsing import parse_point
from .workers import add_workers_argument


def add_range_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--start", type=FRAME.parse, default=0,
                        help="first frame (0-based, default 0)")
    parser.add_argument("--stop", type=FRAME_STOP.parse, default=None,
                        help="frame after the last one (default: the end)")
    parser.add_argument("--fps", type=FPS.parse, default=None,
                        help="frame rate of an image-sequence or OpenPose folder (movies use their own)")


def add_pose_arguments(parser: argparse.ArgumentParser) -> None:
    """Detector, gap-filling and smoothing flags (defaults follow the official code)."""
    g = parser.add_argument_group("pose detection")
    g.add_argument("--subject", type=parse_point, default=None, metavar="X,Y",
                   help="with several people in view, follow the one nearest this pixel "
                        "(default: the largest, most central person)")
    g.add_argument("--no-face-refine", action="store_true",
                   help="skip MediaPipe's iris landmarks (the pupils of the 70-point face)")
    g.add_argument("--max-gap", type=MAX_GAP_S.parse, default=DEFAULT_MAX_GAP_S, metavar="SECONDS",
                   help=f"interpolate holes up to this long; longer ones hold the last pose "
                        f"(default {DEFAULT_MAX_GAP_S})")
    g.add_argument("--no-fill-gaps", action="store_true", help="leave undetected frames empty")
    g.add_argument("--smooth", choices=METHODS, default="median",
                   help="temporal filter: the official 7-frame median (default), one_euro (keeps "
                        "fast moves), savgol, or none")
    g.add_argument("--smooth-window", type=SMOOTH_WINDOW.parse, default=7, metavar="FRAMES",
                   help="window of median/savgol in frames (odd, default 7)")
    add_workers_argument(g)


def pose_options_from_args(args: argparse.Namespace) -> PoseOptions:
    detector = HolisticConfig(
        refine_face_landmarks=not args.no_face_refine,
        subject_hint=args.subject,
        workers=args.workers,
    )
    smoothing = SmoothingConfig(method=args.smooth, window=args.smooth_window)
    return PoseOptions(detector=detector, fill_gaps=not args.no_fill_gaps,
                       max_gap_s=args.max_gap, smoothing=smoothing)


def add_progress_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def add_job_arguments(parser: argparse.ArgumentParser, output_help: str, frames: str) -> None:
    """What a retarget and a pose preview take alike: the source, the folder to write, the
    adjustments and the source's statistics (measured otherwise on ``frames``)."""
    parser.add_argument("--source", type=Path, required=True,
                        help="the dancer's video (movie file or image-sequence folder)")
    add_output_dir_argument(parser, output_help)
    add_adjust_argument(parser)
    parser.add_argument("--source-stats", type=Path, default=None, metavar="STATS.json",
                        help="the source's normalization statistics (from `stats`) instead of "
                             f"those measured on {frames}")


def add_adjust_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--adjustments", "--adjust", dest="adjustments", type=Path,
                        default=None, metavar="ADJUSTMENTS.json",
                        help='JSON with per-frame (or constant) "scale", "offset_x", "offset_y" '
                             "(offsets in fractions of the target frame height), one value per "
                             "frame of the range (the request's adjustments)")


def add_output_dir_argument(parser: argparse.ArgumentParser, help: str) -> None:
    parser.add_argument("-o", "--output-dir", "--output", dest="output_dir", type=Path,
                        required=True, help=help)


def adjustments_from_args(args: argparse.Namespace) -> Adjustments:
    """``--adjustments``'s file, checked against the frames of ``--start``/``--stop`` in
    ``source`` (an error names the file), or no adjustment."""
    if args.adjustments is None:
        return Adjustments()
    from ..video import probe

    info = probe(args.source, args.fps)
    stop = info.frame_count if args.stop is None else min(args.stop, info.frame_count)
    return Adjustments.from_json(args.adjustments, max(0, stop - args.start))


def absolute(path: Path | None) -> str | None:
    """A command line's path as a request holds it: absolute (relative to this folder)."""
    return None if path is None else os.path.abspath(path)


def check_track_output(path: Path) -> None:
    """Refuse an output that cannot become a pose track, or would replace another kind of file."""
    check_output_file(path, ".npz", "pose track")
    refuse_foreign_file(path, PoseTrack.load, "pose track")
