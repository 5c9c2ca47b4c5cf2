"""Parsers of command-line values shared by ``python -m backend`` and ``python -m training``.

Light on purpose (no detector, no torch): the training command line imports it at start.
"""

from __future__ import annotations

import argparse


def parse_size(text: str) -> tuple[int, int]:
    """``"1024x512"`` -> (1024, 512)."""
    try:
        w, h = (int(v) for v in text.lower().split("x"))
    except ValueError:
        raise argparse.ArgumentTypeError(f"size must look like 1024x512, got {text!r}") from None
    if w <= 0 or h <= 0:
        raise argparse.ArgumentTypeError(f"size must be positive, got {text!r}")
    return w, h


def parse_point(text: str) -> tuple[float, float]:
    """``"640,360"`` -> (640.0, 360.0)."""
    try:
        x, y = (float(v) for v in text.split(","))
    except ValueError:
        raise argparse.ArgumentTypeError(f"point must look like 640,360, got {text!r}") from None
    return x, y
