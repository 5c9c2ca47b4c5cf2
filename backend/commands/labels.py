"""``python -m backend labels POSES -o OUT``: draw a pose track as stick-figure labels."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import InputError
from ..folders import refuse_other_kind
from ..labels import LabelStyle, render_track_labels
from ..output_paths import check_output_file, check_output_folder
from ..pose.track import PoseTrack
from ..progress import progress_bar
from ..video import Mp4Writer, PngSequenceWriter
from .common import add_progress_argument
from .parsing import parse_size


DESCRIPTION = """Draw every frame of a pose track as an OpenPose-style stick figure (the
official palette; joints radius 8 and limbs half-width 4 at 1080p, scaled). OUT ending in .mp4
writes a video, anything else a folder of 000001.png ..."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("labels", help="render a pose track as stick figures",
                       description=DESCRIPTION)
    p.add_argument("poses", type=Path, help="pose track (.npz from `poses` or `normalize`)")
    p.add_argument("-o", "--output", type=Path, required=True, help="PNG folder or .mp4 file")
    p.add_argument("--size", type=parse_size, default=None, metavar="WxH",
                   help="output size (default: the pose track's frame size)")
    p.add_argument("--no-face", action="store_true", help="do not draw the face")
    p.add_argument("--no-hands", action="store_true", help="do not draw the hands")
    add_progress_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    if args.output.suffix.lower() == ".mp4":
        check_output_file(args.output, what="video")
        if args.size is not None and (args.size[0] % 2 or args.size[1] % 2):
            w, h = args.size  # H.264 in yuv420p has even sides: say so rather than round
            raise InputError(args.output, f"--size {w}x{h}: a video's sides must be even; "
                                          f"give {w + w % 2}x{h + h % 2}, or write PNG frames")
    else:
        check_output_folder(args.output)
        refuse_other_kind(args.output, "folder of label frames")
    track = PoseTrack.load(args.poses)
    size = args.size or track.size
    style = LabelStyle(face=not args.no_face, hands=not args.no_hands)
    labels = progress_bar(render_track_labels(track, size, style), len(track), "labels", not args.quiet)
    if args.output.suffix.lower() == ".mp4":
        with Mp4Writer(args.output, track.fps, size) as writer:
            for label in labels:
                writer.write(label)
    else:
        writer = PngSequenceWriter(args.output)
        for label in labels:
            writer.write(label)
    print(f"{args.output}: {len(track)} labels at {size[0]}x{size[1]}", file=sys.stderr)
    return 0
