"""MediaPipe's native log lines never reach the user: dropped, or its errors as warnings, on a
terminal, in a pipe and in a file alike; other output still arrives."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from backend.pose.native_logs import sorted_lines

from .helpers import REPO

FEEDBACK = ("W0000 00:00:1796611295.732873   18171 inference_feedback_manager.cc:114] Feedback "
            "manager requires a model with a single signature inference. Disabling support for "
            "feedback tensors.")
NATIVE = [
    "INFO: Created TensorFlow Lite XNNPACK delegate for CPU.",
    "WARNING: All log messages before absl::InitializeLog() is called are written to STDERR",
    FEEDBACK,
    "I0000 00:00:1796611295.9 18172 gl_context.cc:357] GL version: 3.2",
    "E0000 00:00:1796611296.1 18172 calculator_graph.cc:887] INTERNAL: the graph broke",
    "E0000 00:00:1796611296.2 18173 calculator_graph.cc:887] INTERNAL: the graph broke",
]
CHILD = """
import os, sys
from backend.pose.native_logs import native_logs_hidden
with native_logs_hidden() as progress:
    os.write(2, sys.argv[1].encode())  # what MediaPipe's C++ threads do
    os.write(2, b"OTHER\\n")  # anyone else's
    progress.write("PROGRESS\\n")
os.write(2, b"AFTER\\n")
"""


def test_mediapipes_information_and_warnings_go_and_its_errors_become_warnings():
    assert sorted_lines("\n".join([*NATIVE, "a Python warning"])) == [
        "warning: MediaPipe: INTERNAL: the graph broke", "a Python warning"]


def _run(stderr) -> None:
    subprocess.run([sys.executable, "-c", CHILD, "\n".join(NATIVE) + "\n"], cwd=REPO,
                   stderr=stderr, check=True)


def _check(out: str) -> None:
    assert "PROGRESS" in out and "AFTER" in out and "OTHER" in out
    assert "inference_feedback_manager" not in out and "TensorFlow Lite" not in out
    assert "absl" not in out and "gl_context" not in out
    assert out.count("warning: MediaPipe: INTERNAL: the graph broke\n") == 1


@pytest.mark.skipif(not hasattr(os, "openpty"), reason="needs a pseudo-terminal (POSIX)")
def test_on_a_terminal():
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
    _check(out.decode().replace("\r\n", "\n"))


def test_in_a_pipe_and_in_a_file(tmp_path):
    piped = subprocess.run([sys.executable, "-c", CHILD, "\n".join(NATIVE) + "\n"], cwd=REPO,
                           capture_output=True, text=True, check=True)
    _check(piped.stderr)
    log = tmp_path / "worker.log"
    with open(log, "wb") as f:
        _run(f)
    _check(log.read_text())


@pytest.mark.slow
def test_a_command_that_detects_poses_prints_no_native_lines(tmp_path):
    """Real MediaPipe, in this process and in the chunks' own (--workers 2)."""
    from backend.demo import make_demo_clip

    make_demo_clip(tmp_path / "dance.mp4", "dance", n_frames=8, fps=12.0, size=(128, 128),
                   progress=False)
    done = subprocess.run([sys.executable, "-m", "backend", "poses", str(tmp_path / "dance.mp4"),
                           "-o", str(tmp_path / "dance.npz"), "--workers", "2"], cwd=REPO,
                          capture_output=True, text=True, timeout=600,
                          env={**os.environ, "EVERYBODY_DANCE_CACHE": str(tmp_path / "cache")})
    assert done.returncode == 0, done.stderr[-3000:]
    assert (tmp_path / "dance.npz").is_file()
    for native in ("inference_feedback_manager", "TensorFlow Lite", "absl::", "W0000", "I0000"):
        assert native not in done.stderr, done.stderr[-3000:]
