"""Warnings for the user in one format on every command line: ``warning: MESSAGE``.

The library says what a user should know (a subject without ankles, an empty held-out split,
a damaged checkpoint pointer) with ``warnings.warn`` and a ``UserWarning`` subclass, so that
callers may record or silence it. Python's default display adds the source file, line and
code, which mean nothing to a user; the command lines show them through `plain_warnings`,
as `warn` and ``retarget`` show theirs.
"""

from __future__ import annotations

import sys
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TextIO


def warn(message: str, stream: TextIO | None = None) -> None:
    """Print ``message`` as a warning for the user."""
    print(f"warning: {message}", file=stream or sys.stderr)


@contextmanager
def plain_warnings() -> Iterator[None]:
    """Within the block, ``UserWarning``s print as ``warning: MESSAGE`` (others as usual)."""
    previous = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None) -> None:
        if issubclass(category, UserWarning):
            warn(str(message), file)
        else:
            previous(message, category, filename, lineno, file, line)

    warnings.showwarning = show
    try:
        yield
    finally:
        warnings.showwarning = previous
