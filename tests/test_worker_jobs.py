"""Transfer jobs through the real worker process and the real client.

A tiny real model bundle (the demo target's statistics) and a short clip of the demo
performer: a full job, jobs queued behind a running one, cancel and resume, a worker killed
mid-job, and stdout holding nothing but protocol lines while MediaPipe runs.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("backend.transfer", reason="the transfer pipeline is not there yet")

from backend.video.images import read_image  # noqa: E402
from backend.worker.protocol import (Adjustments, Cancelled, Done, Error, Preview,  # noqa: E402
                                     Progress)

from .helpers import N_FRAMES, TIMEOUT, job, start_client  # noqa: E402


def pngs(folder: str | Path) -> list[str]:
    return sorted(p.name for p in Path(folder).glob("*.png"))


@pytest.mark.slow
def test_full_job_through_the_worker(client, media, tmp_path):
    seen: list = []
    reply = client.run_job(job(media, tmp_path / "job", "full", side_by_side=True),
                           timeout=TIMEOUT, on_message=seen.append)
    assert isinstance(reply, Done), reply
    assert reply.frame_count == N_FRAMES
    assert pngs(reply.frames_dir) == [f"{i:06d}.png" for i in range(1, N_FRAMES + 1)]
    assert Path(reply.video).is_file() and Path(reply.side_by_side).is_file()
    progress = [m for m in seen if isinstance(m, Progress)]
    stages = [p.stage for p in progress]
    assert {"poses", "generate"} <= set(stages)
    assert all(p.job_id == "full" and 0 <= p.done <= p.total for p in progress)
    gen = [p for p in progress if p.stage == "generate"]
    assert gen[-1].done == gen[-1].total == N_FRAMES
    # stdout held only protocol lines (anything else would arrive as a bad_reply error),
    # while MediaPipe, which logs from C++, ran in the worker; its lines are not in the
    # worker's log either (backend/pose/native_logs.py), the worker's own are.
    assert not [m for m in seen + client.poll() if isinstance(m, Error)]
    log = client.log_path.read_text()
    assert "TensorFlow Lite" not in log and "inference_feedback_manager" not in log
    assert "job full done" in log
    assert json.loads((tmp_path / "job" / "status.json").read_text())["state"] == "done"


@pytest.mark.slow
def test_second_job_reuses_the_loaded_model_and_a_busy_worker_queues_runs(client, media, tmp_path):
    first = job(media, tmp_path / "a", "a", frame_stop=3)
    n = 5
    second = job(media, tmp_path / "b", "b", frame_start=2, frame_stop=2 + n,
                 adjustments=Adjustments(scale=[1.0, 1.05, 1.1, 1.05, 1.0], offset_y=0.02))
    third = job(media, tmp_path / "c", "c")
    for run in (first, second, third):
        client.submit(run)
    client.cancel("c")  # still waiting behind "a": cancelled at once, never started
    seen: list = []
    assert isinstance(client.wait_for("c", TIMEOUT, seen.append), Cancelled)
    assert isinstance(client.wait_for("a", TIMEOUT, seen.append), Done)
    reply_b = client.wait_for("b", TIMEOUT, seen.append)
    assert isinstance(reply_b, Done) and reply_b.frame_count == n
    assert len(pngs(reply_b.frames_dir)) == n
    order = [(m.type, m.job_id) for m in seen if m.type in ("progress", "done", "cancelled")]
    assert order.index(("done", "a")) < min(i for i, m in enumerate(order) if m[1] == "b")
    assert not (tmp_path / "c").exists()
    log = client.log_path.read_text()
    assert log.count("loading model bundle") == 1  # loaded by the first job of this worker
    assert log.count("reusing the loaded model bundle") >= 2


@pytest.mark.slow
def test_pose_preview_through_the_worker_detects_once_then_only_draws(client, media, tmp_path):
    """A ``preview`` job: frames of the result's shape, progress per stage; an update with new
    keyframed adjustments finds the poses cached (no "poses" stage) and moves the figure."""

    def preview(name: str, adjustments: Adjustments, seen: list) -> Done:
        request = Preview(job_id=name, source=str(media["clip"]), model=str(media["bundle"]),
                          output_dir=str(tmp_path / name), frame_start=1, frame_stop=11,
                          adjustments=adjustments, video=True)
        reply = client.run_job(request, TIMEOUT, seen.append)
        assert isinstance(reply, Done), reply
        return reply

    first_seen: list = []
    first = preview("preview-1", Adjustments(), first_seen)
    assert first.frame_count == 10
    assert sorted(os.listdir(first.frames_dir)) == [f"{i:06d}.jpg" for i in range(1, 11)]
    assert Path(first.video).is_file() and first.side_by_side is None
    assert [m.stage for m in first_seen if isinstance(m, Progress)][0] == "poses"
    update_seen: list = []
    update = preview("preview-2", Adjustments(scale=[1.0 + 0.05 * k for k in range(10)], offset_y=0.1),
                     update_seen)
    stages = {m.stage for m in update_seen if isinstance(m, Progress)}
    assert "poses" not in stages and {"draw", "finish"} <= stages
    before, after = (read_image(Path(r.frames_dir) / "000005.jpg") for r in (first, update))
    assert before.shape == after.shape and not np.array_equal(before, after)
    # A bad preview is refused by the request's one check: the client runs it before sending
    # (the worker runs the same one on what arrives: tests/test_bad_input_worker.py).
    for fields, field in ((dict(frame_start=4, frame_stop=4), "preview.frame_stop"),
                          (dict(frame_format="gif"), "preview.frame_format")):
        with pytest.raises(ValueError, match=field):
            client.submit(Preview(job_id="bad", source=str(media["clip"]),
                                  model=str(media["bundle"]), output_dir=str(tmp_path / "bad"),
                                  **fields))
    assert not (tmp_path / "bad").exists()


@pytest.mark.slow
def test_cancel_mid_job_leaves_a_resumable_folder(client, media, tmp_path):
    run = job(media, tmp_path / "job", "cancel-me")

    def cancel_when_generating(message) -> None:
        if isinstance(message, Progress) and message.stage == "generate" and message.done >= 1:
            client.cancel(run.job_id)

    reply = client.run_job(run, TIMEOUT, cancel_when_generating)
    assert isinstance(reply, Cancelled), reply
    status = json.loads((tmp_path / "job" / "status.json").read_text())
    written = len(pngs(tmp_path / "job" / "frames"))
    assert status["state"] == "cancelled" and status["frames_written"] == written < N_FRAMES
    assert not (tmp_path / "job" / "result.mp4").exists()

    resumed = client.run_job(run, TIMEOUT)  # the same job again continues
    assert isinstance(resumed, Done) and resumed.frame_count == N_FRAMES
    assert len(pngs(resumed.frames_dir)) == N_FRAMES
    assert f"resumed at frame {written + 1}" in (tmp_path / "job" / "log.txt").read_text()


@pytest.mark.slow
@pytest.mark.skipif(os.name == "nt", reason="SIGKILL is POSIX")
def test_worker_killed_mid_job_is_reported_and_a_fresh_worker_resumes(client, media, tmp_path):
    run = job(media, tmp_path / "job", "doomed", frame_stop=6)
    doomed = start_client(tmp_path, "doomed")
    killed: list[int] = []

    def kill_when_generating(message) -> None:
        if isinstance(message, Progress) and message.stage == "generate" and not killed:
            os.kill(doomed.hello.pid, signal.SIGKILL)
            killed.append(doomed.hello.pid)

    reply = doomed.run_job(run, TIMEOUT, kill_when_generating)
    assert isinstance(reply, Error) and reply.code == "worker_died" and reply.job_id == "doomed"
    assert "SIGKILL" in reply.message and "doomed.log" in reply.message
    assert not doomed.alive
    doomed.shutdown()

    # `client` is another client with its own fresh worker; the job folder resumes there.
    assert client.alive and client.hello.pid != doomed.hello.pid
    done = client.run_job(run, TIMEOUT)
    assert isinstance(done, Done) and len(pngs(done.frames_dir)) == 6
