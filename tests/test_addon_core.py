"""The add-on's bpy-free logic: frame mapping, keyframe sampling, job states, set-up, training runs.

These run with plain pytest (no Blender). The same logic runs inside Blender in
tests/test_addon_blender.py, against real strips.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from blender_addon.core import locations, training_runs, venv_setup
from blender_addon.core import train_pipeline as pipeline
from blender_addon.core.frame_map import (FrameMapping, StripMappingError, StripTiming,
                                          content_index, first_free_channel, infer_rate, map_strip)
from blender_addon.core.job_queue import Job, JobQueue, JobState, Placement, new_job_id
from blender_addon.core.keyframes import sample, sample_adjustments
from blender_addon.core.pose_previews import preview_folder, remove_preview_folder

from .helpers import REPO


# --------------------------------------------------------------------------------------------
# Importing without Blender
# --------------------------------------------------------------------------------------------


def test_package_imports_without_bpy():
    code = ("import sys, blender_addon, blender_addon.core.runner, blender_addon.backend_client; "
            "assert 'bpy' not in sys.modules; print(blender_addon.bl_info['blender'])")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "(3, 4, 0)"


# --------------------------------------------------------------------------------------------
# Frame mapping
# --------------------------------------------------------------------------------------------


def test_untrimmed_strip_shows_every_frame_in_order():
    timing = StripTiming(frame_start=10, final_start=10, final_end=30, content_length=20)
    mapping = map_strip(timing)
    assert mapping.source_frames == tuple(range(20))
    assert (mapping.source_start, mapping.source_stop, mapping.timeline_start) == (0, 20, 10)
    assert mapping.job_frames == tuple(range(20))


def test_soft_and_hard_trims():
    # 100-frame movie, 4 frames cut hard at the start (content now starts with frame 4 at
    # timeline frame 10) and 3 timeline frames hidden by the left handle, 5 by the right.
    timing = StripTiming(frame_start=10, final_start=13, final_end=10 + 96 - 5,
                         content_length=96, hard_trim_start=4)
    mapping = map_strip(timing)
    assert mapping.source_frames[0] == 4 + 3
    assert mapping.source_frames[-1] == 4 + 96 - 5 - 1
    assert mapping.duration == 96 - 3 - 5
    assert mapping.job_length == mapping.duration


def test_movie_faster_than_scene_skips_frames():
    # A 60 fps movie played in real time in a 30 fps scene: every other frame is shown.
    rate = infer_rate(60.0, 30.0, content_length=20, timeline_length=10)
    assert rate == 2.0
    timing = StripTiming(frame_start=1, final_start=1, final_end=11, content_length=20, rate=rate)
    mapping = map_strip(timing)
    assert mapping.source_frames == tuple(range(0, 20, 2))
    assert mapping.job_length == 19  # frames 0..18, the odd ones are made but not shown
    assert mapping.timeline_frame_of_job_frame(4) == 3.0
    assert mapping.timeline_frame_of_job_frame(5) == 3.5  # between its shown neighbours


def test_movie_added_without_rate_adjustment_keeps_one_frame_per_frame():
    assert infer_rate(60.0, 30.0, content_length=20, timeline_length=20) == 1.0
    assert infer_rate(25.0, 25.0, content_length=20, timeline_length=20) == 1.0


def test_slower_movie_repeats_frames():
    timing = StripTiming(frame_start=0, final_start=0, final_end=6, content_length=3, rate=0.5)
    assert map_strip(timing).source_frames == (0, 0, 1, 1, 2, 2)


def test_reverse_and_strobe():
    reverse = StripTiming(frame_start=0, final_start=0, final_end=5, content_length=5, reverse=True)
    assert map_strip(reverse).source_frames == (4, 3, 2, 1, 0)
    strobe = StripTiming(frame_start=0, final_start=0, final_end=6, content_length=6, strobe=3.0)
    assert map_strip(strobe).source_frames == (0, 0, 0, 3, 3, 3)


def test_frames_beyond_the_content_hold_the_last_frame():
    timing = StripTiming(frame_start=0, final_start=0, final_end=4, content_length=2)
    assert content_index(timing, 3) == 1


def test_empty_strip_is_refused():
    with pytest.raises(StripMappingError, match="no frames"):
        StripTiming(frame_start=0, final_start=5, final_end=5, content_length=3)


def test_first_free_channel_above_the_source():
    occupied = [(1, 0, 100), (2, 50, 60), (3, 0, 10)]
    assert first_free_channel(occupied, above=1, start=20, end=40) == 2
    assert first_free_channel(occupied, above=1, start=55, end=70) == 3
    assert first_free_channel(occupied, above=1, start=5, end=55) == 4
    with pytest.raises(StripMappingError, match="no free channel"):
        first_free_channel([(2, 0, 10)], above=1, start=0, end=10, max_channel=2)


# --------------------------------------------------------------------------------------------
# Keyframe sampling
# --------------------------------------------------------------------------------------------


def test_keyed_values_are_sampled_at_each_job_frame():
    mapping = FrameMapping(timeline_start=100, source_frames=tuple(range(10, 15)))
    values = sample(lambda frame: frame / 100.0, 9.0, mapping)
    assert values == [1.00, 1.01, 1.02, 1.03, 1.04]


def test_unkeyed_and_flat_values_are_one_number():
    mapping = FrameMapping(timeline_start=1, source_frames=(0, 1, 2))
    assert sample(None, 0.25, mapping) == 0.25
    assert sample(lambda frame: 0.5, 0.0, mapping) == 0.5


def test_adjustments_refuse_a_scale_keyed_to_zero():
    mapping = FrameMapping(timeline_start=0, source_frames=(0, 1, 2))
    with pytest.raises(ValueError, match="scale"):
        sample_adjustments({"scale": lambda f: 1.0 - f / 2}, {"scale": 1.0, "offset_x": 0.0,
                                                              "offset_y": 0.0}, mapping)


# --------------------------------------------------------------------------------------------
# Jobs
# --------------------------------------------------------------------------------------------


def _job(label="strip") -> Job:
    placement = Placement(scene="Scene", channel=2, frame_start=1, job_frames=(0, 1), name="x")
    return Job(id=new_job_id(label), label=label, run=None, placement=placement)


def _msg(kind, **fields):
    return SimpleNamespace(type=kind, **fields)


def test_job_runs_through_progress_to_done():
    queue = JobQueue()
    job = queue.add(_job())
    assert queue.next_pending() is job
    queue.start(job.id)
    queue.apply(_msg("progress", job_id=job.id, stage="generate", done=3, total=12))
    assert (job.state, job.progress, job.status_text()) == (JobState.RUNNING, 0.25, "generate 3/12")
    queue.apply(_msg("done", job_id=job.id, frames_dir="/f", frame_count=12))
    assert job.state is JobState.DONE and job.progress == 1.0
    assert job.status_text() == "done: 12 frames"
    assert not queue.active()


def test_a_done_job_shows_the_workers_warnings():
    queue = JobQueue()
    job = queue.add(_job())
    queue.start(job.id)
    warning = "no dancer in source frames 93..150 (58 of 151 frames): they show the plate"
    queue.apply(_msg("done", job_id=job.id, frames_dir="/f", frame_count=151,
                     warnings=[warning]))
    assert job.state is JobState.DONE and job.status_text() == f"done: 151 frames; {warning}"


def test_failed_job_keeps_the_message_and_can_be_retried():
    queue = JobQueue()
    job = queue.add(_job())
    queue.start(job.id)
    queue.apply(_msg("error", job_id=job.id, code="bad_input", message="x.mp4: not a video"))
    assert job.state is JobState.FAILED and job.status_text() == "failed: x.mp4: not a video"
    queue.retry(job.id)
    assert job.state is JobState.PENDING and job.message == ""


def test_cancel_pending_and_running():
    queue = JobQueue()
    first, second = queue.add(_job("a")), queue.add(_job("b"))
    queue.start(first.id)
    assert queue.cancel(second.id) is False  # never started: nothing to tell the worker
    assert second.state is JobState.CANCELLED
    assert queue.cancel(first.id) is True
    assert first.status_text() == "cancelling..."
    queue.apply(_msg("cancelled", job_id=first.id))
    assert first.state is JobState.CANCELLED


def test_remove_and_messages_for_unknown_jobs():
    queue = JobQueue()
    job = queue.add(_job())
    queue.start(job.id)
    with pytest.raises(ValueError, match="cancel it first"):
        queue.remove(job.id)
    assert queue.apply(_msg("progress", job_id="nobody", stage="x", done=1, total=2)) is None
    with pytest.raises(ValueError, match="another job is running"):
        queue.start(queue.add(_job("second")).id)
    queue.apply(_msg("done", job_id=job.id, frames_dir="/f", frame_count=2))
    assert queue.remove(job.id) is job
    assert queue.clear_finished() == 0 and len(queue.jobs) == 1


def test_job_ids_are_unique_and_folder_safe():
    ids = {new_job_id("my strip/01.mp4") for _ in range(50)}
    assert len(ids) == 50
    assert all(set(i) <= set("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_")
               for i in ids)


def test_only_a_preview_folder_is_removed(tmp_path):
    """A preview strip's older frames are deleted only where the backend wrote a preview."""
    preview = tmp_path / "previews" / "dancer-preview-1"
    (preview / "frames").mkdir(parents=True)
    (preview / "frames" / "000001.jpg").write_bytes(b"jpeg")
    (preview / "preview.json").write_text("{}")
    result_frames = tmp_path / "dancer-2" / "frames"  # a retarget job's folder
    result_frames.mkdir(parents=True)
    assert preview_folder(str(preview / "frames") + os.sep) == preview
    assert not remove_preview_folder(result_frames) and result_frames.is_dir()
    assert not remove_preview_folder(preview) and preview.is_dir()  # not its frames folder
    assert remove_preview_folder(preview / "frames") and not preview.exists()
    assert not remove_preview_folder(preview / "frames")  # gone already: nothing to do


# --------------------------------------------------------------------------------------------
# Locations
# --------------------------------------------------------------------------------------------


def test_source_checkout_finds_the_repository_backend_and_venv(tmp_path):
    assert locations.backend_root() == REPO
    assert locations.is_source_checkout()
    python, origin = locations.find_backend_python("", None)
    if (REPO / ".venv").is_dir():
        assert python == locations.venv_python(REPO / ".venv") and origin == "source checkout .venv"
    python, origin = locations.find_backend_python(" /opt/py/bin/python ", tmp_path)
    assert (python, origin) == (Path("/opt/py/bin/python"), "preference")


def test_installed_layout_uses_the_vendored_backend_and_the_user_venv(tmp_path):
    addon = tmp_path / "everybody_dance"
    (addon / "_vendor" / "backend" / "demo" / "bundle").mkdir(parents=True)
    (addon / "_vendor" / "backend" / "__init__.py").write_text("")
    assert locations.backend_root(addon) == addon / "_vendor"
    assert not locations.is_source_checkout(addon)
    assert locations.demo_bundle(addon / "_vendor") is None  # no manifest yet
    (addon / "_vendor" / "backend" / "demo" / "bundle" / "manifest.json").write_text("{}")
    assert locations.demo_bundle(addon / "_vendor") == addon / "_vendor/backend/demo/bundle"
    user = tmp_path / "user"
    assert locations.find_backend_python("", user, addon) == (None, "not set up")
    venv_py = locations.venv_python(user / locations.VENV_NAME)
    venv_py.parent.mkdir(parents=True)
    venv_py.write_text("")
    assert locations.find_backend_python("", user, addon) == (venv_py, "add-on environment")


def test_worker_environment_drops_blenders_python_settings(tmp_path):
    env = locations.worker_environment(tmp_path, {"PYTHONHOME": "/blender/python", "PATH": "/bin",
                                                  "PYTHONPATH": "/blender/scripts"})
    assert env == {"PATH": "/bin", "PYTHONPATH": str(tmp_path), "PYTHONUNBUFFERED": "1"}


# --------------------------------------------------------------------------------------------
# Set Up Backend
# --------------------------------------------------------------------------------------------


def test_requirements_come_from_pyproject_with_or_without_tomllib():
    text = (REPO / "pyproject.toml").read_text("utf-8")
    parsed = venv_setup.dependencies_from_pyproject(text)
    assert any(r.startswith("torch==") for r in parsed) and any(r.startswith("mediapipe") for r in parsed)
    assert venv_setup._dependencies_without_tomllib(text) == parsed
    assert venv_setup.read_requirements(REPO) == parsed


def test_setup_steps_never_touch_the_base_python(tmp_path):
    steps = venv_setup.setup_steps(Path("/usr/bin/python3"), tmp_path / "venv", ["torch==2.13.0"],
                                   cpu_only_torch=True)
    assert steps[0].command == ["/usr/bin/python3", "-m", "venv", str(tmp_path / "venv")]
    venv_py = str(locations.venv_python(tmp_path / "venv"))
    assert all(step.command[0] == venv_py for step in steps[1:])
    assert "torch==2.13.0" in steps[2].command and venv_setup.TORCH_CPU_INDEX in steps[2].command


def test_base_python_check_names_the_problem(tmp_path):
    assert venv_setup.check_base_python(Path(sys.executable)) is None
    assert "does not exist" in venv_setup.check_base_python(tmp_path / "nope")
    fake = tmp_path / "python"
    fake.write_text("#!/bin/sh\necho 3.8.10\n")
    fake.chmod(0o755)
    assert "needs 3.10 to 3.12" in venv_setup.check_base_python(fake)


def test_setup_task_creates_a_venv_and_keeps_a_failure_report(tmp_path):
    venv = tmp_path / "env"
    steps = [venv_setup.Step("Create", [sys.executable, "-m", "venv", "--without-pip", str(venv)]),
             venv_setup.Step("Say", [str(locations.venv_python(venv)), "-c", "print('hello from venv')"]),
             venv_setup.Step("Break", [str(locations.venv_python(venv)), "-c",
                                       "import sys; print('no such package'); sys.exit(3)"]),
             venv_setup.Step("Never", [sys.executable, "-c", "print('unreachable')"])]
    task = venv_setup.SetupTask(steps, log_path=tmp_path / "setup.log")
    task.start()
    assert task.wait(timeout=60) == "failed"
    assert "'Break' failed with exit code 3" in task.error
    log = (tmp_path / "setup.log").read_text()
    assert "hello from venv" in log and "no such package" in log and "unreachable" not in log
    assert locations.venv_python(venv).is_file()


# --------------------------------------------------------------------------------------------
# Training runs
# --------------------------------------------------------------------------------------------


def test_pipeline_command_and_request_validation(tmp_path):
    request = training_runs.TrainingRequest(run_dir=tmp_path / "run", video=tmp_path / "t.mp4",
                                            name="me", preset="tiny", start=5, stop=50)
    command = training_runs.pipeline_command(Path("/py"), REPO, request, resume=True)
    assert command[:2] == ["/py", str(training_runs.PIPELINE_SCRIPT)]
    assert command[command.index("--start") + 1] == "5" and command[-1] == "--resume"
    with pytest.raises(ValueError, match="unknown preset"):
        training_runs.TrainingRequest(run_dir=tmp_path, video=tmp_path, name="x", preset="huge")


def test_status_merges_pipeline_and_trainer_files(tmp_path):
    assert training_runs.read_status(tmp_path).state == "unknown"
    pipeline.write_json_atomic(tmp_path / pipeline.PIPELINE_FILE,
                               {"state": "running", "step": "train", "pid": os.getpid(),
                                "bundle": str(tmp_path / "bundle")})
    pipeline.write_json_atomic(tmp_path / pipeline.STATUS_FILE,
                               {"state": "running", "stage": "global", "step": 50,
                                "total_steps": 200, "eta_s": 125.0, "losses": {"G_GAN": 0.4}})
    status = training_runs.read_status(tmp_path)
    assert (status.state, status.stage, status.progress) == ("running", "global", 0.25)
    assert status.summary() == "global 50/200, ETA 2m05s"
    # The same files with the process gone: the run was interrupted and can be resumed.
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    pipeline.write_json_atomic(tmp_path / pipeline.PIPELINE_FILE,
                               {"state": "running", "step": "train", "pid": dead.pid})
    status = training_runs.read_status(tmp_path)
    assert status.state == "stopped" and status.can_resume


def test_detached_pipeline_is_cancelled_and_resumed(tmp_path):
    """The real pipeline script, detached, on a video that does not exist: it fails in
    'prepare' with the training CLI's message; then a run cancelled while it waits."""
    request = training_runs.TrainingRequest(run_dir=tmp_path / "run", video=tmp_path / "none.mp4",
                                            name="demo", preset="tiny")
    process = training_runs.launch(Path(sys.executable), REPO, request)
    assert process.wait(timeout=120) != 0
    status = training_runs.read_status(request.run_dir)
    assert status.state == "failed" and status.step_name == "prepare"
    assert "none.mp4" in status.message
    assert training_runs.request_from_record(request.run_dir) == request
    assert not training_runs.cancel(request.run_dir)  # nothing running


def test_a_linked_pipeline_log_is_refused_and_its_file_kept(tmp_path):
    """A run folder whose pipeline.log links elsewhere: the add-on refuses to start training
    there (the message names the log), starts nothing, and the linked file is unchanged."""
    precious = tmp_path / "precious.txt"
    precious.write_text("mine\n")
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    (run_dir / pipeline.LOG_FILE).symlink_to(precious)
    request = training_runs.TrainingRequest(run_dir=run_dir, video=tmp_path / "v.mp4",
                                            name="demo", preset="tiny")
    with pytest.raises(OSError, match="pipeline.log is a symbolic link"):
        training_runs.launch(Path(sys.executable), REPO, request)
    assert precious.read_text() == "mine\n"
    assert not (run_dir / pipeline.PIPELINE_FILE).exists()  # nothing started


def test_cancel_stops_a_running_pipeline(tmp_path):
    # A stand-in for a long step: the pipeline's real signal and stop-file handling, with a
    # child that sleeps ('python -m training' replaced by a module that waits).
    fake_root = tmp_path / "root"
    (fake_root / "training").mkdir(parents=True)
    (fake_root / "training" / "__init__.py").write_text("")
    (fake_root / "training" / "__main__.py").write_text("import time\ntime.sleep(60)\n")
    request = training_runs.TrainingRequest(run_dir=tmp_path / "run", video=tmp_path / "v.mp4",
                                            name="demo", preset="tiny")
    process = training_runs.launch(Path(sys.executable), fake_root, request)
    deadline = time.monotonic() + 30
    while training_runs.read_status(request.run_dir).step_name != "prepare":
        assert time.monotonic() < deadline
        time.sleep(0.1)
    assert training_runs.cancel(request.run_dir)
    assert process.wait(timeout=30) == pipeline.EXIT_STOPPED
    status = training_runs.read_status(request.run_dir)
    assert status.state == "cancelled" and status.can_resume
    record = json.loads((request.run_dir / pipeline.PIPELINE_FILE).read_text())
    assert record["pid"] == process.pid


def test_the_add_on_offers_exactly_the_training_presets():
    """The add-on cannot import training (torch); its list must still be training's."""
    from blender_addon.core.training_runs import PRESETS
    from training.options import PRESETS as TRAINING_PRESETS

    assert sorted(PRESETS) == sorted(TRAINING_PRESETS)
