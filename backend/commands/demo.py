"""``python -m backend demo -o OUT_DIR``: the built-in example, no data and no GPU needed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..checks import DEMO_SECONDS
from ..folders import refuse_other_kind
from ..demo.run import DemoConfig, run_demo
from ..output_paths import check_output_folder
from .common import add_progress_argument


def add_parser(sub: argparse._SubParsersAction) -> None:
    defaults = DemoConfig()
    p = sub.add_parser(
        "demo", help="run the built-in example (the demo performer)",
        description="The whole transfer on built-in material: the procedural demo performer dances "
                    "a built-in dance (the source), and the bundled demo model makes the performer "
                    "in another look dance it. Writes OUT_DIR/transfer/result.mp4 and "
                    "OUT_DIR/transfer/side_by_side.mp4 (source | label | result).")
    p.add_argument("-o", "--output", type=Path, required=True, help="folder to write into")
    p.add_argument("--source", type=Path, default=None,
                   help="make the demo performer dance this video's moves instead of the built-in dance")
    p.add_argument("--seconds", type=DEMO_SECONDS.parse, default=defaults.seconds,
                   help=f"length of the built-in dance (default {defaults.seconds:g})")
    add_progress_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_output_folder(args.output)
    refuse_other_kind(args.output, "demo folder")
    result = run_demo(args.output, DemoConfig(seconds=args.seconds), args.source, progress=not args.quiet)
    print(f"wrote {result.video} ({result.frame_count} frames) and {result.side_by_side}", file=sys.stderr)
    return 0
