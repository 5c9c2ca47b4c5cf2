"""The worker's side of the pipe: stdout kept for protocol lines alone, stdin read line by line.

The client parses every line the worker prints, so a single stray ``print`` (ours, a library's,
or a C library writing straight to file descriptor 1, as MediaPipe's TFLite does) would break
the protocol. `claim_stdout` therefore moves the real stdout to a private file descriptor and
points fd 1 (and ``sys.stdout``) at stderr, which the client sends to a log file.
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from dataclasses import dataclass
from typing import BinaryIO, Iterator, TextIO

from .protocol import MAX_LINE_BYTES, Message

log = logging.getLogger(__name__)


def claim_stdout() -> TextIO:
    """Return a stream on the real stdout and redirect everything else that writes there.

    After this call, Python's ``print``, ``sys.stdout`` and any C code writing to fd 1 end up
    on stderr; only the returned stream reaches the client.
    """
    sys.stdout.flush()
    protocol_fd = os.dup(1)  # not inheritable: a child process could not write protocol lines
    try:
        os.dup2(2, 1)
    except OSError:  # no usable stderr (e.g. pythonw): C-level prints go nowhere
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.close(devnull)
    sys.stdout = sys.stderr
    # newline="\n": one protocol line is one "\n"-terminated line on every platform.
    return os.fdopen(protocol_fd, "w", encoding="utf-8", newline="\n", buffering=1)


class Channel:
    """Thread-safe writer of protocol messages (the job thread and the main thread both send)."""

    def __init__(self, out: TextIO) -> None:
        self._out = out
        self._lock = threading.Lock()
        self.closed = False

    def send(self, message: Message) -> bool:
        """Write one message; False once the client has gone (broken pipe)."""
        line = message.to_line()
        with self._lock:
            if self.closed:
                return False
            try:
                self._out.write(line)
                self._out.flush()
            except (BrokenPipeError, OSError, ValueError) as exc:
                # The client closed its end: nobody reads any more; the main loop sees EOF.
                log.info("client gone, dropping %s (%s)", message.type, exc)
                self.closed = True
                return False
        return True


@dataclass(frozen=True)
class OversizedLine:
    """A line longer than the limit, read to its end and dropped: only its size is kept."""

    size: int


def read_lines(stream: BinaryIO, limit: int = MAX_LINE_BYTES) -> Iterator[str | OversizedLine]:
    """The lines of ``stream`` as text until EOF; undecodable bytes become U+FFFD (and then
    fail JSON or field validation, which replies ``bad_message``). A line of more than
    ``limit`` bytes is never held in memory whole: it comes as an `OversizedLine`."""
    while True:
        raw = stream.readline(limit + 1)
        if not raw:
            return
        if len(raw) > limit and not raw.endswith(b"\n"):
            yield OversizedLine(len(raw) + _skip_line(stream))
            continue
        yield raw.decode("utf-8", errors="replace")


def _skip_line(stream: BinaryIO, chunk: int = 1 << 20) -> int:
    """Read the rest of the current line and drop it; the number of bytes read."""
    skipped = 0
    while True:
        raw = stream.readline(chunk)
        skipped += len(raw)
        if not raw or raw.endswith(b"\n"):
            return skipped
