"""``python -m backend normalize SOURCE_POSES --target TARGET -o OUT.npz``: global pose normalization."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..checks import ALPHA
from ..normalize import Adjustments, compute_stats, load_target_stats, normalize_track
from ..pose.track import PoseTrack, require_person
from .common import add_progress_argument, check_track_output


DESCRIPTION = """Global pose normalization (paper appendix 8.5): per frame, a vertical
translation and a scale interpolated from where the source's ankles are between its far and
close positions, mapped onto the target's; then per-frame user adjustments. The output track is
in the target's frame size."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("normalize", help="size and place a source's poses like the target's",
                       description=DESCRIPTION)
    p.add_argument("source", type=Path, help="source pose track (.npz)")
    p.add_argument("--target", type=Path, required=True,
                   help="target pose track (.npz) or target statistics (.json from `stats`)")
    p.add_argument("-o", "--output", type=Path, required=True, help="normalized pose track (.npz)")
    p.add_argument("--adjust", type=Path, default=None,
                   help='JSON with per-frame (or constant) "scale", "offset_x", "offset_y"; offsets '
                        "are fractions of the target frame height (+x right, +y down)")
    p.add_argument("--alpha", type=ALPHA.parse, default=0.7,
                   help="far ankle = median - alpha * (close - median) (default 0.7, official)")
    add_progress_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_track_output(args.output)
    source = PoseTrack.load(args.source)
    require_person(source, args.source, "there are no poses to normalize")
    target_stats = load_target_stats(args.target, args.alpha)
    adjustments = Adjustments.from_json(args.adjust, len(source)) if args.adjust else None
    moved = normalize_track(source, compute_stats(source, alpha=args.alpha), target_stats, adjustments)
    moved.save(args.output)
    print(f"{args.output}: {len(moved)} frames normalized onto a {moved.size[0]}x{moved.size[1]} "
          f"target ({target_stats.method})", file=sys.stderr)
    return 0
