"""Keep MediaPipe's native log lines off a user's terminal.

MediaPipe and TensorFlow Lite log from C++ threads straight to file descriptor 2 ("INFO:
Created TensorFlow Lite XNNPACK delegate", "W0000 ... inference_feedback_manager.cc"), which
Python's logging settings cannot reach, and they do so at any moment while a graph lives. On
an interactive terminal they bury the progress bar, so during detection fd 2 points at
/dev/null and the progress bar writes to its own copy of the terminal. Where stderr is a file
or a pipe (the worker's log, CI) nothing is hidden: there the lines help debugging.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator, TextIO


@contextlib.contextmanager
def native_logs_hidden() -> Iterator[TextIO]:
    """Within the block, writes to fd 2 are dropped when it is a terminal.

    Yields the stream to show progress on: a copy of the terminal, or ``sys.stderr`` as it is.
    """
    if not os.isatty(2):
        yield sys.stderr
        return
    sys.stderr.flush()
    saved = os.dup(2)
    terminal = os.fdopen(os.dup(2), "w", buffering=1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield terminal
    finally:
        terminal.flush()
        os.dup2(saved, 2)
        for fd in (saved, devnull):
            os.close(fd)
        terminal.close()
