"""MediaPipe's native log lines are hidden on a terminal and kept in files and pipes."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from .helpers import REPO

CHILD = """
import os
from backend.pose.native_logs import native_logs_hidden
with native_logs_hidden() as progress:
    os.write(2, b"NATIVE-LOG\\n")  # what MediaPipe's C++ threads do
    progress.write("PROGRESS\\n")
os.write(2, b"AFTER\\n")
"""


def _run(stderr) -> None:
    subprocess.run([sys.executable, "-c", CHILD], cwd=REPO, stderr=stderr, check=True)


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal (POSIX)")
def test_on_a_terminal_native_lines_are_dropped_and_progress_shows():
    master, slave = os.openpty()
    try:
        _run(slave)
    finally:
        os.close(slave)
    out = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:
            break
        if not chunk:
            break
        out += chunk
    os.close(master)
    assert b"PROGRESS" in out and b"AFTER" in out
    assert b"NATIVE-LOG" not in out


def test_in_a_log_file_everything_is_kept(tmp_path):
    log = tmp_path / "worker.log"
    with open(log, "wb") as f:
        _run(f)
    text = log.read_text()
    assert "NATIVE-LOG" in text and "PROGRESS" in text and "AFTER" in text
