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


class ProgressCounter:
    """A bar on ``stream`` and ``report(done, total)`` calls driven by counts, for work whose
    items are not iterated here (frames detected in other processes).

    ``report`` may raise (`JobCancelled`); the bar is closed by `close` or the ``with`` block.
    The total can grow (work found to be needed on the way).
    """

    def __init__(self, total: int, desc: str, enabled: bool = True,
                 report: ProgressFn | None = None, stream: TextIO | None = None) -> None:
        self.total, self.done, self.report = total, 0, report
        self._bar = tqdm(total=total, desc=desc, unit="frame", file=stream or sys.stderr,
                         disable=not enabled, dynamic_ncols=True, leave=False)

    def __enter__(self) -> "ProgressCounter":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def add_total(self, n: int) -> None:
        self.total += n
        self._bar.total = self.total
        self._bar.refresh()

    def advance(self, n: int = 1) -> None:
        self.done += n
        self._bar.update(n)
        if self.report is not None:
            self.report(self.done, self.total)

    def close(self) -> None:
        self._bar.close()
