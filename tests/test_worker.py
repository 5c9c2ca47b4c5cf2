"""The backend worker (``python -m backend serve``) and the add-on's client, without transfer jobs.

Real worker processes throughout: the handshake, every kind of malformed line, the model
checks done before a job runs, stdout kept clean of C-level prints, shutdown and end of
stdin, a worker that dies or cannot start.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import shutil
import textwrap
import time
from pathlib import Path

import pytest
import torch

import backend
from backend.transfer.model_cache import ModelCache
from backend.worker.execute import WorkerSettings, ProgressThrottle, to_transfer_job
from backend.worker.protocol import (Adjustments, Cancelled, Error, Hello, Progress, ProtocolError,
                                     Run, parse_line, validate)
from blender_addon.backend_client import BackendClient, WorkerError, log_tail
from blender_addon.core.locations import worker_environment

from .helpers import PYTHON, REPO, TIMEOUT, RawWorker, make_tiny_bundle, start_client


@pytest.fixture
def raw_worker(tmp_path):
    worker = RawWorker(tmp_path / "raw.log")
    yield worker
    worker.close()


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory) -> Path:
    return make_tiny_bundle(tmp_path_factory.mktemp("bundle") / "tiny")


# --------------------------------------------------------------------------------------------
# Through the real client
# --------------------------------------------------------------------------------------------


def test_handshake_says_what_the_worker_runs_on(client):
    hello = client.hello
    assert isinstance(hello, Hello)
    assert hello.backend_version == backend.__version__
    assert hello.python == platform.python_version()
    assert hello.torch == torch.__version__
    assert hello.mediapipe == "0.10.21"
    assert hello.device == "cpu" and hello.gpu_name is None
    assert hello.pid == client._proc.pid and client.alive
    assert any(isinstance(m, Hello) for m in client.poll())  # the add-on's timer sees it too


@pytest.mark.slow
def test_bundle_of_another_format_version_is_refused(client, tmp_path):
    old = make_tiny_bundle(tmp_path / "old", format_version=99)
    runs = {
        "v99": Run(job_id="v99", source=str(tmp_path / "clip.mp4"), model=str(old),
                   output_dir=str(tmp_path / "job-v99")),
        "missing": Run(job_id="missing", source=str(tmp_path / "clip.mp4"),
                       model=str(tmp_path / "no-such-bundle"), output_dir=str(tmp_path / "j")),
    }
    replies = {job_id: client.run_job(run, timeout=TIMEOUT) for job_id, run in runs.items()}
    assert replies["v99"].type == "error" and replies["v99"].code == "format_version"
    assert "format version 99" in replies["v99"].message
    assert "manifest.json" in replies["v99"].message
    assert replies["missing"].code == "bad_input" and "no-such-bundle" in replies["missing"].message
    assert not (tmp_path / "job-v99").exists()  # refused before anything was written


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGSTOP"), reason="pausing a process needs SIGSTOP (POSIX)")
def test_client_refuses_relative_paths_and_duplicate_ids(client, tmp_path):
    with pytest.raises(ValueError, match="absolute"):
        client.submit(Run(job_id="r", source="clip.mp4", model="/m", output_dir="/o"))
    # The worker is paused so that the first job is certainly still pending at the second submit.
    os.kill(client._proc.pid, signal.SIGSTOP)
    try:
        client.submit(Run(job_id="dup", source="/no/clip.mp4", model=str(tmp_path / "none"),
                          output_dir=str(tmp_path / "o")))
        with pytest.raises(ValueError, match="already submitted"):
            client.submit(Run(job_id="dup", source="/no/clip.mp4", model="/m", output_dir="/o"))
    finally:
        os.kill(client._proc.pid, signal.SIGCONT)
    assert client.wait_for("dup", timeout=TIMEOUT).code == "bad_input"
    assert "dup" not in client.pending
    with pytest.raises(ValueError, match="already returned"):
        client.wait_for("dup", timeout=1)
    with pytest.raises(ValueError, match="not submitted"):
        client.wait_for("never-sent", timeout=1)


@pytest.mark.slow
def test_wait_for_finds_a_reply_that_arrived_before_it_was_called(client, tmp_path):
    client.submit(Run(job_id="quick", source="/no/clip.mp4", model=str(tmp_path / "none"),
                      output_dir=str(tmp_path / "o")))
    deadline = time.monotonic() + TIMEOUT
    while "quick" in client.pending and time.monotonic() < deadline:
        time.sleep(0.01)  # the reader thread has the reply before anyone waits for it
    reply = client.wait_for("quick", timeout=5)
    assert (reply.type, reply.code, reply.job_id) == ("error", "bad_input", "quick")


@pytest.mark.slow
def test_worker_exits_when_its_stdin_closes(tmp_path):
    """Blender quit or crashed: the pipe closes and the worker must not be left behind."""
    client = start_client(tmp_path)
    client._proc.stdin.close()  # what the OS does when Blender goes away
    assert client._proc.wait(TIMEOUT) == 0
    client.join_reader()
    assert "stopping (stdin closed)" in log_tail(tmp_path / "worker.log")
    assert not client.alive
    died = [m for m in client.poll() if m.type == "error"]
    assert died and died[0].code == "worker_died" and "exit code 0" in died[0].message
    with pytest.raises(WorkerError, match="not running"):
        client.submit(Run(job_id="late", source="/a.mp4", model="/m", output_dir="/o"))


@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="uses a POSIX shell script as the interpreter")
def test_a_python_without_the_requirements_fails_clearly(tmp_path):
    # A Python that cannot import the backend's requirements, like a wrong interpreter chosen
    # in the add-on's preferences (-S: no site-packages, so no numpy, torch, mediapipe).
    python = tmp_path / "python"
    python.write_text(f"#!/bin/sh\nexec {PYTHON} -S \"$@\"\n")
    python.chmod(0o755)
    client = BackendClient(python, log_path=tmp_path / "w.log")
    with pytest.raises(WorkerError, match=r"stopped while starting \(exit code 1\)") as info:
        client.start(timeout=TIMEOUT)
    assert "No module named" in str(info.value) and str(tmp_path / "w.log") in str(info.value)

    with pytest.raises(WorkerError, match="cannot run the backend Python"):
        BackendClient(tmp_path / "no-python", log_path=tmp_path / "x.log").start()


# --------------------------------------------------------------------------------------------
# Bare pipes: malformed input, shutdown, end of stdin
# --------------------------------------------------------------------------------------------

RUN = {"protocol": 1, "type": "run", "job_id": "j", "source": "/s.mp4", "model": "/m",
       "output_dir": "/o"}

MALFORMED = {
    "not JSON": b"hello worker\n",
    "not an object": b"[1, 2]\n",
    "bad UTF-8": b'{"protocol": 1, "type": "\xff\xfe"}\n',
    "wrong protocol version": json.dumps({"protocol": 2, "type": "shutdown"}) + "\n",
    "protocol version true": json.dumps({"protocol": True, "type": "shutdown"}) + "\n",
    "no protocol version": json.dumps({"type": "shutdown"}) + "\n",
    "unknown type": json.dumps({"protocol": 1, "type": "explode"}) + "\n",
    "missing field": json.dumps({"protocol": 1, "type": "cancel"}) + "\n",
    "unknown field": json.dumps({**RUN, "colour": "red"}) + "\n",
    "string for int": json.dumps({**RUN, "frame_start": "3"}) + "\n",
    "bool for int": json.dumps({**RUN, "frame_stop": True}) + "\n",
    "bad adjust": json.dumps({**RUN, "adjustments": {"scale": ["big"]}}) + "\n",
    "negative scale": json.dumps({**RUN, "adjustments": {"scale": -1.0}}) + "\n",
    "empty frame range": json.dumps({**RUN, "frame_start": 5, "frame_stop": 5}) + "\n",
    "unknown method": json.dumps({**RUN, "method": "magic"}) + "\n",
    "a worker's message": json.dumps({"protocol": 1, "type": "progress", "job_id": "j",
                                      "stage": "poses", "done": 1, "total": 2}) + "\n",
}


@pytest.mark.slow
def test_malformed_lines_get_an_error_and_the_worker_carries_on_until_shutdown(raw_worker, tmp_path):
    assert isinstance(raw_worker.reply(), Hello)
    for what, line in MALFORMED.items():
        raw_worker.send(line)
        reply = raw_worker.reply()
        assert isinstance(reply, Error) and reply.code == "bad_message", what
        assert reply.message, what
    raw_worker.send(b"\n   \n")  # blank lines are tolerated silently
    # Still working: a well-formed job is accepted and answered (its model does not exist).
    good = Run(job_id="after", source="/s.mp4", model=str(tmp_path / "none"),
               output_dir=str(tmp_path / "o"))
    raw_worker.send(good.to_line())
    reply = raw_worker.reply()
    assert (reply.type, reply.code, reply.job_id) == ("error", "bad_input", "after")
    raw_worker.send(Run(job_id="x", source="/s", model="/m", output_dir="/o",
                        frame_stop=0).to_line())
    reply = raw_worker.reply()
    assert (reply.code, reply.job_id) == ("bad_message", "x")  # the job id comes back with it
    assert "frame_stop" in reply.message
    raw_worker.send(json.dumps({"protocol": 1, "type": "shutdown"}) + "\n")
    assert raw_worker.proc.wait(TIMEOUT) == 0
    assert raw_worker.lines.get(timeout=5) is None  # nothing more after the shutdown
    assert "stopping (shutdown)" in raw_worker.log.read_text()


@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="calls the C library's puts through ctypes")
def test_prints_from_python_and_c_cannot_reach_the_protocol(tmp_path):
    """What MediaPipe's C++ does (write to fd 1) and a stray print() both end up in the log."""
    script = textwrap.dedent("""
        import ctypes, ctypes.util, os
        from backend.worker.channel import Channel, claim_stdout
        from backend.worker.protocol import Cancelled
        channel = Channel(claim_stdout())
        print("python print")
        os.write(1, b"raw fd 1 write\\n")
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.puts(b"C puts"); libc.fflush(None)
        channel.send(Cancelled(job_id="only-me"))
    """)
    result = subprocess.run([PYTHON, "-c", script], capture_output=True, cwd=REPO,
                            env=worker_environment(REPO), timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr.decode()
    assert result.stdout.decode().splitlines() == [Cancelled(job_id="only-me").to_line().strip()]
    for text in ("python print", "raw fd 1 write", "C puts"):
        assert text in result.stderr.decode()


@pytest.mark.slow
def test_the_client_imports_nothing_heavy():
    """Blender's Python has no torch; the add-on imports the client at registration."""
    script = ("import sys, blender_addon.backend_client as c; "
              "heavy = {'torch', 'numpy', 'cv2', 'mediapipe', 'av', 'bpy'} & set(sys.modules); "
              "print(sorted(heavy), c.protocol.__name__)")
    result = subprocess.run([PYTHON, "-c", script], capture_output=True, text=True, cwd=REPO,
                            timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["[]", "backend.worker.protocol"]


# --------------------------------------------------------------------------------------------
# In-process pieces: run checks, progress throttle, model cache
# --------------------------------------------------------------------------------------------


def test_check_run_accepts_good_runs_and_names_the_bad_field():
    good = Run(job_id="a", source="/s", model="/m", output_dir="/o", frame_start=2,
               frame_stop=5, adjustments=Adjustments(scale=[1.0, 1.1, 0.9], offset_x=0.1))
    validate(good)
    bad = {
        "job_id": Run(job_id=" ", source="/s", model="/m", output_dir="/o"),
        "frame_start": Run(job_id="a", source="/s", model="/m", output_dir="/o", frame_start=-2),
        "fps": Run(job_id="a", source="/s", model="/m", output_dir="/o", fps=0.0),
        "adjustments": Run(job_id="a", source="/s", model="/m", output_dir="/o", frame_stop=2,
                      adjustments=Adjustments(scale=[1.0, 1.0, 1.0])),
        "source": Run(job_id="a", source="", model="/m", output_dir="/o"),
        "pose_workers": Run(job_id="a", source="/s", model="/m", output_dir="/o", pose_workers=0),
    }
    for name, run in bad.items():
        with pytest.raises(ProtocolError, match=name):
            validate(run)


def test_pose_workers_reach_the_job_but_not_its_identity(tmp_path):
    """How many processes detect the poses is the worker's choice per run; the job (and so a
    resumed job's identity) records the detector's settings without it."""
    bundle, out = str(REPO / "backend" / "demo" / "bundle"), str(tmp_path / "o")
    jobs = [to_transfer_job(parse_line(Run(job_id="a", source="/s", model=bundle, output_dir=out,
                                           pose_workers=workers).to_line()), WorkerSettings())
            for workers in (3, None)]
    assert [job.pose_options.detector.workers for job in jobs] == [3, None]
    assert jobs[0].parameters() == jobs[1].parameters()
    with pytest.raises(ProtocolError, match="pose_workers"):
        parse_line(Run(job_id="a", source="/s", model="/m", output_dir="/o",
                       pose_workers=2.5).to_line())  # type: ignore[arg-type]


def test_progress_is_rate_limited_but_every_stage_starts_and_ends():
    sent: list[Progress] = []
    now = [0.0]
    throttle = ProgressThrottle(sent.append, "j", interval=0.25, clock=lambda: now[0])
    for stage in ("poses", "generate"):
        for done in range(1, 101):  # 100 frames in 1 s of fake time
            now[0] += 0.01
            throttle(stage, done, 100)
    assert all(p.job_id == "j" for p in sent)
    for stage in ("poses", "generate"):
        dones = [p.done for p in sent if p.stage == stage]
        assert dones[0] == 1 and dones[-1] == 100
        assert len(dones) <= 6  # first, last and about one per 0.25 s
    assert [p.stage for p in sent] == sorted((p.stage for p in sent), key=["poses", "generate"].index)


def test_serve_options_match_the_transfer_choices():
    from backend import choices, runtime
    from backend.commands import serve as serve_command

    assert serve_command.PRECISIONS == runtime.PRECISIONS == choices.PRECISIONS
    assert serve_command.parse_device is choices.parse_device  # the devices retarget takes
    assert set(choices.DEVICES) == set(runtime.DEVICES)


def test_model_cache_keeps_the_model_until_the_bundle_changes(tmp_path):
    folder = make_tiny_bundle(tmp_path / "b")
    cache = ModelCache()
    first = cache.get(folder, "cpu")
    assert cache.get(folder, "cpu") is first and cache.loads == 1
    make_tiny_bundle(folder)  # re-exported: a new manifest
    os.utime(folder / "manifest.json", ns=(1, 1))  # a different mtime even on coarse clocks
    assert cache.get(folder, "cpu") is not first and cache.loads == 2
    assert WorkerSettings().device == "auto"


@pytest.mark.slow
def test_blender_loads_the_protocol_of_a_vendored_backend_under_a_private_name(tmp_path):
    """In Blender the backend is not importable as ``backend``: the package is loaded by path
    under a private name, and the protocol's check (with backend/checks.py) works there."""
    vendored = tmp_path / "_vendor"
    shutil.copytree(REPO / "backend", vendored / "backend",
                    ignore=shutil.ignore_patterns("__pycache__", "demo"))
    script = textwrap.dedent(f"""
        import sys
        from pathlib import Path
        from blender_addon.backend_client import _load_protocol
        protocol = _load_protocol(Path({str(vendored)!r}))
        run = protocol.Run(job_id="j", source="/s.mp4", model="/m", output_dir="rel")
        try:
            run.validate()
        except protocol.ProtocolError as exc:
            print(exc)
        heavy = {{'torch', 'numpy', 'cv2', 'mediapipe', 'av', 'bpy'}} & set(sys.modules)
        print(protocol.__name__, sorted(heavy))
    """)
    result = subprocess.run([PYTHON, "-c", script], capture_output=True, text=True, cwd=REPO,
                            timeout=TIMEOUT)
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [
        "run.output_dir must be an absolute path, got 'rel'",
        "_everybody_dance_backend.worker.protocol []"]
