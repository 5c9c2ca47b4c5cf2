"""Parsers of command-line values shared by ``python -m backend`` and ``python -m training``.

Light on purpose (no detector, no torch): the training command line imports it at start.
What each value may be is stated in `backend.checks`.
"""

from __future__ import annotations

from ..checks import Size, parse_point

parse_size = Size().parse

__all__ = ["parse_point", "parse_size"]
