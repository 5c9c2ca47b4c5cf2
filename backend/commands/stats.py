"""``python -m backend stats POSES -o STATS.json``: a subject's normalization statistics."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..checks import ALPHA
from ..normalize import NormalizationStats, compute_stats
from ..output_paths import check_output_file, refuse_foreign_file
from ..pose.track import PoseTrack, require_person
from .common import add_progress_argument


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stats", help="compute a subject's pose normalization statistics",
        description="Close and far ankle positions and the body heights near each (paper appendix "
                    "8.5), saved as JSON so that a target's statistics travel with its model.")
    p.add_argument("poses", type=Path, help="pose track (.npz)")
    p.add_argument("-o", "--output", type=Path, required=True, help="statistics to write (.json)")
    p.add_argument("--alpha", type=ALPHA.parse, default=0.7,
                   help="far ankle = median - alpha * (close - median) (default 0.7, official)")
    add_progress_argument(p)
    p.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    check_output_file(args.output, ".json", "statistics file")
    refuse_foreign_file(args.output, NormalizationStats.load, "statistics file")
    track = PoseTrack.load(args.poses)
    require_person(track, args.poses, "there is nobody to measure")
    stats = compute_stats(track, alpha=args.alpha)
    stats.save(args.output)
    print(f"{args.output}: {stats.method} statistics", file=sys.stderr)
    return 0
