"""The ``--workers`` flag of the commands that detect poses (`poses`, `preview`, `retarget`,
and training's `prepare`). Kept apart from `common` so that `python -m training` can add it
without importing the detector."""

from __future__ import annotations

import argparse

from ..pose.chunks import MIN_AUTO_CHUNK


def parse_workers(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"workers must be a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"workers must be at least 1, got {value}")
    return value


def add_workers_argument(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    parser.add_argument("--workers", type=parse_workers, default=None, metavar="N",
                        help=f"detect poses in N processes, each on a chunk of the video "
                             f"(default: one per CPU core, with {MIN_AUTO_CHUNK} frames each at "
                             f"least, so short videos use one)")
