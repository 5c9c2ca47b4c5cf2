"""``python -m backend preview-poses --model BUNDLE --source VIDEO -o OUT_DIR``: look first.

Draws, for every frame of the source, the stick figure that ``retarget`` would give the
model's generator (the same poses, normalization and adjustments) over the target's
background, cut to the result frames' shape: a check of size and position that takes seconds
where the transfer takes minutes. Writes OUT_DIR/frames/000001.jpg... and OUT_DIR/preview.mp4.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..pose_preview import run_pose_preview
from ..transfer.request import LocalInputs, preview_job
from ..worker.protocol import Preview
from .common import (absolute, add_job_arguments, add_pose_arguments,
                     add_progress_argument, add_range_arguments, adjustments_from_args,
                     pose_options_from_args)


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "preview-poses",
        help="the normalized stick figure over the model's target, before retargeting",
        description=__doc__.split("\n\n")[1])
    p.add_argument("--model", type=Path, required=True,
                   help="model bundle folder: its target's statistics, resolution and background")
    add_job_arguments(p, "preview folder to write (an earlier preview there is replaced)",
                      "the frames of the range")
    p.add_argument("--format", dest="frame_format", choices=("jpg", "png"), default="jpg",
                   help="of the frames: jpg (default; fast and small) or png (lossless)")
    p.add_argument("--no-video", action="store_true", help="write the frames only")
    add_range_arguments(p)
    add_pose_arguments(p)
    add_progress_argument(p)
    p.set_defaults(run=run)


def request_from_args(args: argparse.Namespace) -> Preview:
    """The request the flags describe: the same `Preview` the worker receives."""
    return Preview(
        job_id="preview-poses", source=absolute(args.source),
        model=absolute(args.model), output_dir=absolute(args.output_dir),
        frame_start=args.start, frame_stop=args.stop, fps=args.fps,
        adjustments=adjustments_from_args(args), source_stats=absolute(args.source_stats),
        video=not args.no_video, frame_format=args.frame_format)


def run(args: argparse.Namespace) -> int:
    job = preview_job(request_from_args(args),
                      LocalInputs(pose_options=pose_options_from_args(args)))
    result = run_pose_preview(job, progress=not args.quiet)
    for message in result.warnings:
        print(f"warning: {message}", file=sys.stderr)
    video = f", {result.video}" if result.video else ""
    print(f"{args.output_dir}: {result.frame_count} frames over the {result.background} in "
          f"{result.frames_dir}{video}", file=sys.stderr)
    return 0
