"""``python -m backend poses VIDEO -o POSES.npz``: detect, fill gaps and smooth one subject's poses."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import InputError
from ..pose.pipeline import DEFAULT_OPENPOSE_FPS, is_openpose_folder, video_poses
from ..pose.track import NO_PERSON, PoseTrack, has_person
from ..user_warnings import warn
from .common import (add_pose_arguments, add_progress_argument, add_range_arguments,
                     check_track_output, pose_options_from_args)
from .parsing import parse_size


DESCRIPTION = """Detect body, face and hand keypoints of one subject in every frame (MediaPipe
Holistic mapped to OpenPose BODY_25 / face 70 / hands 2x21), fill gaps and smooth. VIDEO may be
a movie, an image- sequence folder or a folder of OpenPose *_keypoints.json files. Output: an
.npz with body (T,25,3), face (T,70,3), hands (T,2,21,3), detected (T,), fps, size. Detection is
cached per video."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("poses", help="detect a subject's poses in a video", description=DESCRIPTION)
    p.add_argument("video", type=Path, help="movie file, image folder or OpenPose JSON folder")
    p.add_argument("-o", "--output", type=Path, required=True, help="pose track to write (.npz)")
    g = p.add_argument_group("OpenPose JSON folders", "OpenPose's files do not say their video's "
                             "frame size or frame rate; without these they are guessed")
    g.add_argument("--video", dest="openpose_video", type=Path, default=None, metavar="SOURCE",
                   help="the video the JSON files were made from: its frame size and frame rate")
    g.add_argument("--size", type=parse_size, default=None, metavar="WxH",
                   help="the frame size of the video the JSON files were made from")
    add_range_arguments(p)
    add_pose_arguments(p)
    add_progress_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_track_output(args.output)
    openpose = is_openpose_folder(args.video)
    if not openpose and (args.openpose_video or args.size):
        raise InputError(args.video, "--video and --size describe the video of an OpenPose JSON "
                                     "folder; this is not such a folder")
    size, fps = openpose_geometry(args) if openpose else (None, args.fps)
    track = video_poses(args.video, pose_options_from_args(args), args.start, args.stop,
                        progress=not args.quiet, fps=fps, size=size)
    track.save(args.output)
    print(f"{args.output}: {len(track)} frames, subject detected in {track.detected.sum()} "
          f"({100 * track.detection_rate():.1f}%)", file=sys.stderr)
    warn_of_guesses(args, track)
    return 0


def openpose_geometry(args: argparse.Namespace) -> tuple[tuple[int, int] | None, float | None]:
    """(size, fps) of an OpenPose folder's video: from --video, overridden by --size / --fps."""
    if args.openpose_video is None:
        return args.size, args.fps
    from ..video import probe

    info = probe(args.openpose_video)
    return args.size or info.size, args.fps or info.fps


def warn_of_guesses(args: argparse.Namespace, track: PoseTrack) -> None:
    """Say loudly what the track lacks or what was guessed for it."""
    if not has_person(track):
        warn(f"{NO_PERSON} of {args.video}: {args.output} holds no poses (normalize, stats, "
             f"retarget and training refuse it)")
    if track.detector.get("name") != "openpose_json":
        return
    if track.detector.get("size_estimated"):
        warn(f"the frame size of {args.video} was guessed from the keypoints "
             f"({track.size[0]}x{track.size[1]}); give --video SOURCE or --size WxH for the "
             f"real one (retarget --poses needs it)")
    if args.fps is None and args.openpose_video is None:
        warn(f"the frame rate of {args.video} was guessed ({DEFAULT_OPENPOSE_FPS:g} fps); give "
             f"--video SOURCE or --fps")
