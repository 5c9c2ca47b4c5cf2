"""Progress reporting shared by the command line (a bar on stderr) and the worker.

stdout belongs to the worker protocol, so bars always go to stderr.
"""

from __future__ import annotations

import sys
from typing import Callable, Iterable, Iterator, TextIO, TypeVar

from tqdm import tqdm

T = TypeVar("T")

# A callback that long functions call as ``report(done, total)``; the worker turns it
# into ``progress`` messages and checks for cancellation inside it.
ProgressFn = Callable[[int, int], None]


def progress_bar(
    items: Iterable[T],
    total: int | None,
    desc: str,
    enabled: bool = True,
    report: ProgressFn | None = None,
    stream: TextIO | None = None,
) -> Iterator[T]:
    """Yield ``items`` while showing a bar on ``stream`` (stderr) and calling ``report`` per item."""
    bar = tqdm(total=total, desc=desc, unit="frame", file=stream or sys.stderr, disable=not enabled,
               dynamic_ncols=True, leave=False)
    done = 0
    try:
        for item in items:
            yield item
            done += 1
            bar.update(1)
            if report is not None:
                report(done, total or done)
    finally:
        bar.close()
