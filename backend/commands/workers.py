"""The ``--workers`` flag of the commands that detect poses (`poses`, `preview`, `retarget`,
and training's `prepare`). Kept apart from `common` so that `python -m training` can add it
without importing the detector."""

from __future__ import annotations

import argparse

from ..checks import WORKERS
from ..pose.chunks import MIN_AUTO_CHUNK


def add_workers_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument("--workers", type=WORKERS.parse, default=None, metavar="N",
                        help=f"detect poses in N processes, each on a chunk of the video "
                             f"(default: one per CPU core, with {MIN_AUTO_CHUNK} frames each at "
                             f"least, so short videos use one)")
