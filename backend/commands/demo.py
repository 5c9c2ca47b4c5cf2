"""``python -m backend demo -o OUT_DIR``: the built-in example, no data and no GPU needed."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..demo.run import DemoConfig, run_demo
from .common import add_progress_argument


def add_parser(sub: argparse._SubParsersAction) -> None:
    defaults = DemoConfig()
    p = sub.add_parser(
        "demo", help="run the built-in example (the demo performer)",
        description="Make a demo source (the procedural performer dancing) and a demo target, run "
                    "the real pose pipeline on both, normalize the source onto the target and write "
                    "OUT_DIR/preview.mp4 (source | skeleton | normalized skeleton on the target).")
    p.add_argument("-o", "--output", type=Path, required=True, help="folder to write into")
    p.add_argument("--source", type=Path, default=None,
                   help="use this video's moves instead of the built-in dance")
    p.add_argument("--seconds", type=float, default=defaults.seconds, help="length of the demo clips")
    add_progress_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    paths = run_demo(args.output, DemoConfig(seconds=args.seconds), args.source, progress=not args.quiet)
    print(f"wrote {paths['preview.mp4']} (source | skeleton | normalized skeleton on the target)",
          file=sys.stderr)
    return 0
