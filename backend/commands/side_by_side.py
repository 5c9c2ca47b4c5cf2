"""``python -m backend preview SOURCE --target TARGET -o OUT.mp4``: the side-by-side preview.

Writes a side-by-side video: the source | its stick figure | the normalized stick figure drawn
over a frame of the target, so a user sees at a glance whether detection and normalization
worked before spending time on a transfer.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..checks import FRAME, PANEL_HEIGHT
from ..labels import LabelStyle
from ..normalize import Adjustments, compute_stats, normalize_track
from ..output_paths import check_output_file
from ..pose.pipeline import video_poses
from ..pose.track import PoseTrack
from ..side_by_side import side_by_side_frames, side_by_side_size
from ..progress import progress_bar
from ..video import Mp4Writer, probe, read_frame, read_frames
from .common import add_pose_arguments, add_progress_argument, add_range_arguments, pose_options_from_args


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "preview", help="side-by-side video: source | skeleton | normalized skeleton on the target",
        description=__doc__.split("\n\n")[1])
    p.add_argument("source", type=Path, help="the dancer's video")
    p.add_argument("--target", type=Path, required=True, help="the target person's video")
    p.add_argument("-o", "--output", type=Path, required=True, help="video to write (.mp4)")
    p.add_argument("--target-frame", type=FRAME.parse, default=0,
                   help="which target frame to draw the normalized skeleton over (default 0)")
    p.add_argument("--height", type=PANEL_HEIGHT.parse, default=360,
                   help="height of each panel (default 360)")
    p.add_argument("--adjust", type=Path, default=None, help="per-frame adjustments JSON (see `normalize`)")
    p.add_argument("--source-poses", type=Path, default=None,
                   help="use this pose track of the source (.npz) instead of detecting")
    p.add_argument("--target-poses", type=Path, default=None,
                   help="use this pose track of the target (.npz) instead of detecting")
    add_range_arguments(p)
    add_pose_arguments(p)
    add_progress_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_output_file(args.output, what="video")
    options = pose_options_from_args(args)
    progress = not args.quiet
    if args.source_poses:
        source = PoseTrack.load(args.source_poses)
        args.start = int(source.detector.get("start", 0))  # the frame its first entry belongs to
    else:
        source = video_poses(args.source, options, args.start, args.stop, progress=progress, fps=args.fps)
    target = PoseTrack.load(args.target_poses) if args.target_poses else video_poses(
        args.target, options, progress=progress)
    adjustments = Adjustments.from_json(args.adjust, len(source)) if args.adjust else None
    moved = normalize_track(source, compute_stats(source), compute_stats(target), adjustments)
    backdrop = read_frame(args.target, min(args.target_frame, probe(args.target).frame_count - 1))
    frames = read_frames(args.source, args.start, args.start + len(source), args.fps)
    panels = side_by_side_frames(frames, source, moved, backdrop, args.height, LabelStyle())
    with Mp4Writer(args.output, probe(args.source, args.fps).fps,
                   side_by_side_size(source.size, moved.size, args.height),
                   audio_from=args.source, audio_start_s=args.start / source.fps) as writer:
        for frame in progress_bar(panels, len(source), "preview", progress):
            writer.write(frame)
    print(f"{args.output}: {len(source)} frames", file=sys.stderr)
    return 0

