"""The add-on's job runner with a real backend worker (no Blender needed).

One worker runs the queued jobs in turn; a cancelled job does not hold up the next; a worker
that dies mid-job fails that job with a clear message and the next job gets a fresh worker.
"""

from __future__ import annotations

import os
import signal
import sys
import time
from pathlib import Path

import pytest

from blender_addon.backend_client import Adjustments, BackendClient, Run
from blender_addon.core.job_queue import Job, JobState, Placement, new_job_id
from blender_addon.core.runner import JobRunner

TIMEOUT = 240.0


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict:
    import torch

    from backend.demo import make_demo_clip, target_motion
    from backend.labels import LabelStyle
    from backend.models import BundleManifest, GeneratorConfig, build_generator, save_bundle
    from backend.normalize import compute_stats

    folder = tmp_path_factory.mktemp("runner")
    make_demo_clip(folder / "clip.mp4", n_frames=16, fps=24.0, size=(128, 128), progress=False)
    torch.manual_seed(0)
    config = GeneratorConfig(ngf=8, n_downsample_global=2, n_blocks_global=2)
    stats = compute_stats(target_motion(60, fps=30.0, size=(128, 128)))
    manifest = BundleManifest(name="tiny", generator=config, resolution=(64, 32),
                              label_style=LabelStyle().to_dict(), normalization=stats.to_dict())
    save_bundle(folder / "bundle", manifest, build_generator(config))
    return {"folder": folder, "clip": folder / "clip.mp4", "bundle": folder / "bundle"}


def _job(inputs: dict, label: str, source: Path | None = None, frames: int = 16) -> Job:
    job_id = new_job_id(label)
    run = Run(job_id=job_id, source=str(source or inputs["clip"]), model=str(inputs["bundle"]),
              output_dir=str(inputs["folder"] / "jobs" / job_id), frame_start=0,
              frame_stop=frames, fps=24.0, adjustments=Adjustments(scale=1.1))
    placement = Placement(scene="Scene", channel=2, frame_start=1,
                          job_frames=tuple(range(frames)), name=label)
    return Job(id=job_id, label=label, run=run, placement=placement)


def _tick_until(runner: JobRunner, condition, finished: list) -> None:
    deadline = time.monotonic() + TIMEOUT
    while not condition():
        assert time.monotonic() < deadline, [j.status_text() for j in runner.queue.jobs]
        finished += runner.tick()
        time.sleep(0.05)


@pytest.mark.slow
def test_jobs_run_in_turn_through_cancel_and_a_dead_worker(inputs, tmp_path):
    starts = []

    def make_client():
        client = BackendClient(sys.executable, log_path=tmp_path / "worker.log",
                               args=["--device", "cpu"])
        client.start(wait=False)
        starts.append(client)
        return client

    runner = JobRunner(make_client)
    cancelled, killed = _job(inputs, "cancelled"), _job(inputs, "killed")
    missing = _job(inputs, "missing", source=tmp_path / "no-such-video.mp4")
    good = _job(inputs, "good", frames=4)
    for job in (cancelled, killed, missing, good):
        runner.submit(job)
    finished: list[Job] = []

    # 1. Cancel the first job once it makes progress: the same worker goes on with the next.
    _tick_until(runner, lambda: cancelled.done > 0, finished)
    runner.cancel(cancelled.id)
    _tick_until(runner, lambda: killed.state is JobState.RUNNING, finished)
    assert cancelled.state is JobState.CANCELLED and len(starts) == 1
    assert runner.hello is not None and runner.hello.device == "cpu"

    # 2. Kill the worker in the middle of the second job: that job fails, saying so.
    _tick_until(runner, lambda: killed.done > 0, finished)
    os.kill(runner.hello.pid, signal.SIGKILL)
    _tick_until(runner, lambda: killed.state.finished, finished)
    assert killed.state is JobState.FAILED
    assert "stopped unexpectedly" in killed.message and "SIGKILL" in killed.message

    # 3. The next jobs get a fresh worker: a bad file fails with its name, a good job is done.
    _tick_until(runner, lambda: not runner.queue.active(), finished)
    assert len(starts) == 2
    assert missing.state is JobState.FAILED and "no-such-video.mp4" in missing.message
    assert good.state is JobState.DONE and finished == [good]
    assert good.result.frame_count == 4
    assert sorted(os.listdir(good.result.frames_dir)) == [f"{i:06d}.png" for i in range(1, 5)]

    runner.release()
    assert not runner.worker_running and starts[-1].returncode is not None


def test_a_missing_python_fails_the_job_and_says_why(inputs, tmp_path):
    def make_client():
        client = BackendClient(tmp_path / "no" / "python", log_path=tmp_path / "worker.log")
        client.start(wait=False)
        return client

    runner = JobRunner(make_client)
    job = runner.submit(_job(inputs, "x"))
    runner.tick()
    assert job.state is JobState.FAILED
    assert "cannot start the backend worker" in job.message and "no/python" in job.message
    assert runner.last_error


@pytest.mark.slow
def test_a_request_the_worker_would_refuse_fails_its_job_before_it_is_sent(inputs, tmp_path):
    """The client runs the request's own check (`Run.validate`) before sending it; the job
    says why, and the runner goes on to the next one."""
    sent = []

    class Recording(BackendClient):
        def _send(self, message):
            sent.append(message)
            return super()._send(message)

    def make_client():
        client = Recording(sys.executable, log_path=tmp_path / "worker.log",
                           args=["--device", "cpu"])
        client.start(wait=False)
        return client

    runner = JobRunner(make_client)
    bad = _job(inputs, "bad")
    bad.run.frame_start, bad.run.frame_stop = 5, 5
    job = runner.submit(bad)
    runner.tick()
    assert job.state is JobState.FAILED
    assert job.message == "run.frame_stop (5) must be greater than run.frame_start (5)"
    assert not [m for m in sent if getattr(m, "job_id", None) == bad.id]
    runner.release()
