"""Keep MediaPipe's native log lines off the user's stderr.

MediaPipe and TensorFlow Lite log from C++ threads straight to file descriptor 2 ("INFO:
Created TensorFlow Lite XNNPACK delegate", "W0000 ... inference_feedback_manager.cc:114]
Feedback manager requires ..."), which neither Python's logging nor an environment variable
reaches, at any moment while a graph lives, in every process that detects. So while poses are
detected fd 2 is a temporary file (the detection's own processes inherit it), and when the
detection ends its lines are sorted (`sorted_lines`): MediaPipe's information and its warnings
about its own internals are dropped, its errors become ``warning: MediaPipe: ...`` lines, and
anything else (a Python warning, a child's crash report, the worker's own log lines) goes to
stderr as it was, only later. The progress bar writes to a copy of the real stderr meanwhile.
Detections in several threads at once share one redirection, undone when the last one ends.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
import tempfile
import threading
from typing import IO, Iterator, TextIO

# absl's and glog's format: severity, MMDD, time, thread, file:line] message.
NATIVE = re.compile(r"^([IWEF])\d{4} [\d:.]+\s+\d+ [^\]\s]+:\d+\] ?(.*)$")
# TensorFlow Lite's own: "INFO: ...", "WARNING: ...", "ERROR: ...".
TFLITE = re.compile(r"^(INFO|WARNING|ERROR): (.*)$")
# absl's note that it logs to stderr until initialized: about the logging, not the work.
ABSL_NOTE = "All log messages before absl::InitializeLog() is called"


def sorted_lines(text: str) -> list[str]:
    """What of the native output ``text`` the user sees: MediaPipe's errors as warnings (once
    each), other programs' lines as they were; MediaPipe's information and warnings dropped."""
    shown: list[str] = []
    for line in text.splitlines():
        native, tflite = NATIVE.match(line), TFLITE.match(line)
        if native is not None:
            severity, message = native.groups()
            serious = severity in "EF"
        elif tflite is not None:
            severity, message = tflite.groups()
            serious = severity == "ERROR" or (severity == "WARNING" and ABSL_NOTE not in message)
        else:
            shown.append(line)
            continue
        warning = f"warning: MediaPipe: {message}"
        if serious and warning not in shown:
            shown.append(warning)
    return shown


class _Redirection:
    """fd 2 into a temporary file while any detection runs."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.users = 0
        self.saved = -1  # the real stderr, while redirected
        self.file: IO[bytes] | None = None

    def open(self) -> int | None:
        """Redirect (or join the redirection); the real stderr's descriptor, or None where no
        temporary file can be made (then nothing is redirected)."""
        with self.lock:
            if self.users == 0:
                try:
                    self.file = tempfile.TemporaryFile()
                except OSError:
                    return None
                sys.stderr.flush()
                self.saved = os.dup(2)
                os.dup2(self.file.fileno(), 2)
            self.users += 1
            return self.saved

    def close(self) -> None:
        """Leave the redirection; the last one out restores fd 2 and shows what was kept."""
        with self.lock:
            self.users -= 1
            if self.users or self.file is None:
                return
            sys.stderr.flush()
            os.dup2(self.saved, 2)
            os.close(self.saved)
            self.file.seek(0)
            text = self.file.read().decode(errors="replace")
            self.file.close()
            self.file = None
        shown = sorted_lines(text)
        if shown:
            os.write(2, ("\n".join(shown) + "\n").encode())


_redirection = _Redirection()


@contextlib.contextmanager
def native_logs_hidden() -> Iterator[TextIO]:
    """Within the block, native writes to fd 2 are held back and sorted (see the module).

    Yields the stream to show progress on: a copy of the real stderr.
    """
    saved = _redirection.open()
    if saved is None:
        yield sys.stderr
        return
    terminal = os.fdopen(os.dup(saved), "w", buffering=1)
    try:
        yield terminal
    finally:
        terminal.close()
        _redirection.close()
