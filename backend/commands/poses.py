"""``python -m backend poses VIDEO -o POSES.npz``: detect, fill gaps and smooth one subject's poses."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..pose.pipeline import video_poses
from .common import add_pose_arguments, add_progress_argument, add_range_arguments, pose_options_from_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "poses", help="detect a subject's poses in a video",
        description="Detect body, face and hand keypoints of one subject in every frame (MediaPipe "
                    "Holistic mapped to OpenPose BODY_25 / face 70 / hands 2x21), fill gaps and "
                    "smooth. VIDEO may be a movie, an image-sequence folder or a folder of OpenPose "
                    "*_keypoints.json files. Output: an .npz with body (T,25,3), face (T,70,3), "
                    "hands (T,2,21,3), detected (T,), fps, size. Detection is cached per video.")
    p.add_argument("video", type=Path, help="movie file, image folder or OpenPose JSON folder")
    p.add_argument("-o", "--output", type=Path, required=True, help="pose track to write (.npz)")
    add_range_arguments(p)
    add_pose_arguments(p)
    add_progress_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    track = video_poses(args.video, pose_options_from_args(args), args.start, args.stop,
                        progress=not args.quiet, fps=args.fps)
    track.save(args.output)
    print(f"{args.output}: {len(track)} frames, subject detected in {track.detected.sum()} "
          f"({100 * track.detection_rate():.1f}%)", file=sys.stderr)
    return 0
