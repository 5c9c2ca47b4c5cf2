"""Asking a training run to stop after the current step: a signal, a ``STOP`` file, or the
caller's own question."""

from __future__ import annotations

import signal
import sys
import threading
from pathlib import Path
from typing import Any, Callable


class StopRequest:
    """Why the loop should stop after the current step (it then saves a checkpoint and stops):
    the first SIGINT/SIGTERM (a second one interrupts at once), a file named ``STOP`` in the
    run folder (works on every OS, where Windows has no catchable SIGTERM), or ``callback()``
    returning True (a caller running training in-process, such as the worker)."""

    def __init__(self, stop_file: Path | None = None,
                 callback: Callable[[], bool] | None = None) -> None:
        self.requested = False
        self.stop_file = stop_file
        self.callback = callback
        self._previous: dict[int, Any] = {}

    def asked(self) -> bool:
        if not self.requested and self.stop_file is not None and self.stop_file.exists():
            self.requested = True
        if not self.requested and self.callback is not None and self.callback():
            self.requested = True
        return self.requested

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))
            raise KeyboardInterrupt
        self.requested = True
        print(f"\n{signal.Signals(signum).name}: saving a checkpoint, then stopping "
              f"(send it again to stop at once)", file=sys.stderr)

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
