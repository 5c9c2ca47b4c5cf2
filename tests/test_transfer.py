"""The transfer pipeline end to end (``run_transfer`` and ``python -m backend retarget``) with tiny
untrained bundles: on real footage and on the demo performer, resume after SIGKILL, cancel,
audio, the nearest-neighbour baseline and refused inputs."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import av
import numpy as np
import pytest
import torch

from backend.demo import make_demo_clip, target_motion
from backend.errors import JobCancelled, FormatVersionError, InputError
from backend.normalize import Adjustments, compute_stats
from backend.pose.detector import HolisticConfig
from backend.pose.pipeline import PoseOptions
from backend.pose.track import PoseTrack
from backend.target.letterbox import Letterbox
from backend.target.prepared import PreparedRun
from backend.transfer import TransferJob, run_transfer
from backend.transfer.nearest import NearestRenderer
from backend.video import probe, read_frames
from backend.video.images import read_image

from .helpers import REPO, footage_path, make_bundle

JUGGLE_RANGE = (100, 116)  # 16 frames, the juggler in full view
# Frames are compared byte for byte, so the CPU backend is pinned (ONNX Runtime, the default;
# tests/test_transfer_onnx.py compares it with PyTorch).
BACKEND = "onnx"


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.fixture(scope="module")
def tiny_bundle(tmp_path_factory) -> Path:
    """Target: the demo performer walking about a 640x360 (16:9) room, so the 2:1 canvas has bars."""
    stats = compute_stats(target_motion(150, fps=30, size=(640, 360), seed=1))
    return make_bundle(tmp_path_factory.mktemp("bundle") / "tiny", stats.to_dict())


@pytest.fixture(scope="module")
def module_cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("transfer-cache")


@pytest.fixture
def shared_cache(module_cache, monkeypatch) -> Path:
    """Pose detections shared by this module's tests (and their subprocesses)."""
    monkeypatch.setenv("EVERYBODY_DANCE_CACHE", str(module_cache))
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    return module_cache


def juggle_job(bundle: Path, out: Path, **changes) -> TransferJob:
    values = dict(source=footage_path("source_juggle.mp4"), model=bundle, output_dir=out,
                  frame_start=JUGGLE_RANGE[0], frame_stop=JUGGLE_RANGE[1], device="cpu",
                  cpu_backend=BACKEND)
    values.update(changes)
    return TransferJob(**values)


@pytest.fixture(scope="module")
def juggle_reference(tiny_bundle, module_cache, tmp_path_factory):
    """An uninterrupted run on the juggling clip, with the side-by-side video."""
    out = tmp_path_factory.mktemp("juggle") / "job"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EVERYBODY_DANCE_CACHE", str(module_cache))
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        stages: list[str] = []
        try:
            result = run_transfer(juggle_job(tiny_bundle, out, side_by_side=True),
                                  report=lambda stage, done, total: stages.append(stage))
        finally:
            torch.set_num_threads(threads)
    return out, result, stages


def frame_bytes(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((folder / "frames").glob("*.png"))]


def count_frames(video: Path) -> int:
    return sum(1 for _ in read_frames(video))


@pytest.mark.slow
@pytest.mark.footage
def test_every_source_frame_gives_one_frame_and_the_videos(juggle_reference):
    out, result, stages = juggle_reference
    n = JUGGLE_RANGE[1] - JUGGLE_RANGE[0]
    names = sorted(p.name for p in (out / "frames").iterdir())
    assert names == [f"{i:06d}.png" for i in range(1, n + 1)] and result.frame_count == n
    # the 16:9 target's part of the 128x64 canvas: 114x64, no bars
    assert all(read_image(p).shape == (64, 114, 3) for p in (out / "frames").iterdir())
    info = probe(result.video)
    assert (info.frame_count, info.size, info.fps) == (n, (114, 64), 24.0)
    assert not info.has_audio  # source_juggle.mp4 has no sound
    assert [frame for frame in read_frames(result.video)][0].shape == (64, 114, 3)
    side = probe(result.side_by_side)
    assert side.frame_count == n and side.height == 256  # source | label | result
    status = json.loads((out / "status.json").read_text())
    assert (status["state"], status["frames_written"], status["device"]) == ("done", n, "cpu, fp32")
    assert json.loads((out / "job.json").read_text())["backend"] == BACKEND
    assert json.loads((out / "job.json").read_text())["precision"] == "fp32"
    assert set(status["timings"]) == {"poses", "labels", "generate", "write"}
    assert status["timings"]["generate"]["frames"] == n
    assert {"poses", "generate", "finish"} <= set(stages)
    assert (out / "poses.npz").is_file() and (out / "normalized_poses.npz").is_file()
    assert "done: 16 frames" in (out / "log.txt").read_text()


@pytest.mark.slow
@pytest.mark.footage
def test_a_finished_job_run_again_does_nothing(juggle_reference, tiny_bundle, shared_cache):
    out, _, _ = juggle_reference
    before = {p: p.stat().st_mtime_ns for p in (out / "frames").iterdir()}
    video_time = (out / "result.mp4").stat().st_mtime_ns
    run_transfer(juggle_job(tiny_bundle, out, side_by_side=True))
    assert {p: p.stat().st_mtime_ns for p in (out / "frames").iterdir()} == before
    assert (out / "result.mp4").stat().st_mtime_ns == video_time


@pytest.mark.slow
@pytest.mark.footage
def test_given_poses_replace_detection(juggle_reference, tiny_bundle, shared_cache, tmp_path):
    out, _, _ = juggle_reference
    given = tmp_path / "poses.npz"
    shutil.copy(out / "poses.npz", given)  # the range's poses, as the reference detected them
    result = run_transfer(juggle_job(tiny_bundle, tmp_path / "job", poses=given))
    assert frame_bytes(tmp_path / "job") == frame_bytes(out)
    track = PoseTrack.load(given)
    track.slice(0, 5).save(tmp_path / "short.npz")
    with pytest.raises(InputError, match="short.npz.*poses for 5 frames, but the job has 16"):
        run_transfer(juggle_job(tiny_bundle, tmp_path / "short-job", poses=tmp_path / "short.npz"))
    assert not (tmp_path / "short-job").exists()
    assert result.frame_count == JUGGLE_RANGE[1] - JUGGLE_RANGE[0]


KILLED_RUN = textwrap.dedent("""
    import os, signal, sys, time
    from pathlib import Path
    from backend.transfer import TransferJob, run_transfer
    from backend.video import PngSequenceWriter
    source, bundle, out, start, stop, backend = sys.argv[1:7]

    def report(stage, done, total):
        # Die like a killed process mid-run: after 8 frames were made, once 3 are on disk.
        if stage == "generate" and done >= 8:
            frames = PngSequenceWriter(Path(out) / "frames")
            deadline = time.time() + 30
            while frames.count_existing() < 3 and time.time() < deadline:
                time.sleep(0.01)
            os.kill(os.getpid(), signal.SIGKILL)

    run_transfer(TransferJob(Path(source), Path(bundle), Path(out), int(start), int(stop),
                             device="cpu", cpu_backend=backend, side_by_side=True), report=report)
""")


@pytest.mark.footage
@pytest.mark.slow
def test_kill_and_resume_gives_the_frames_of_an_uninterrupted_run(juggle_reference, tiny_bundle,
                                                                     shared_cache, tmp_path):
    reference, _, _ = juggle_reference
    out = tmp_path / "job"
    source = footage_path("source_juggle.mp4")
    start, stop = JUGGLE_RANGE
    killed = subprocess.run([sys.executable, "-c", KILLED_RUN, str(source), str(tiny_bundle),
                             str(out), str(start), str(stop), BACKEND], cwd=REPO,
                            capture_output=True)
    assert killed.returncode == -signal.SIGKILL, killed.stderr.decode()[-2000:]
    written = len(list((out / "frames").glob("0*.png")))
    assert 3 <= written < stop - start
    assert not (out / "result.mp4").exists()
    resumed = subprocess.run([sys.executable, "-m", "backend", "retarget", "--model", str(tiny_bundle),
                              "--source", str(source), "-o", str(out), "--start", str(start),
                              "--stop", str(stop), "--device", "cpu", "--cpu-backend", BACKEND,
                              "--side-by-side", "-q"],
                             cwd=REPO, capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert frame_bytes(out) == frame_bytes(reference)  # none missing, none doubled, same pixels
    assert count_frames(out / "result.mp4") == stop - start
    assert count_frames(out / "side_by_side.mp4") == stop - start
    assert [p.name for p in out.rglob(".*")] == [".lock"]  # no temporary files left
    assert "resumed at frame" in (out / "log.txt").read_text()


@pytest.mark.slow
@pytest.mark.footage
def test_cancel_leaves_a_resumable_folder(juggle_reference, tiny_bundle, shared_cache, tmp_path,
                                         monkeypatch):
    reference, _, _ = juggle_reference
    out = tmp_path / "job"
    cancel = threading.Event()

    def report(stage, done, total):
        if stage == "generate" and done == 5:
            cancel.set()

    with pytest.raises(JobCancelled, match="run the same job again"):
        run_transfer(juggle_job(tiny_bundle, out), report=report, cancel=cancel)
    status = json.loads((out / "status.json").read_text())
    assert status["state"] == "cancelled" and 5 <= status["frames_written"] < 16
    # No temporary file is left; the lock file stays (its lock died with the run).
    assert not (out / "result.mp4").exists() and [p.name for p in out.glob(".*")] == [".lock"]
    poses = (out / "poses.npz").read_bytes()
    # The resumed run goes on with the poses it saved, detecting nothing: not even with the
    # cache gone and another worker count (which would split detection into chunks).
    empty = tmp_path / "empty-cache"
    monkeypatch.setenv("EVERYBODY_DANCE_CACHE", str(empty))
    options = PoseOptions(detector=HolisticConfig(workers=2))
    result = run_transfer(juggle_job(tiny_bundle, out, pose_options=options))
    assert not list(empty.rglob("*.npz"))
    assert (out / "poses.npz").read_bytes() == poses
    assert frame_bytes(out) == frame_bytes(reference)
    assert count_frames(result.video) == 16 and result.side_by_side is None


@pytest.mark.slow
@pytest.mark.footage
def test_other_parameters_are_refused_and_overwrite_starts_again(juggle_reference, tiny_bundle,
                                                                 shared_cache, tmp_path):
    reference, _, _ = juggle_reference
    out = tmp_path / "job"
    shutil.copytree(reference, out)
    # Other adjustments revise the job in place (test_revision); other settings are refused.
    other = dict(face=False, adjustments=Adjustments(scale=0.8, offset_y=0.05))
    with pytest.raises(InputError, match=r"other parameters \(adjustments, face differ\).*--overwrite"):
        run_transfer(juggle_job(tiny_bundle, out, **other))
    assert frame_bytes(out) == frame_bytes(reference)  # nothing touched
    run_transfer(juggle_job(tiny_bundle, out, **other, overwrite=True))
    frames = frame_bytes(out)
    assert len(frames) == 16 and frames != frame_bytes(reference)
    assert not (out / "side_by_side.mp4").exists()  # the old job's outputs went with it


@pytest.mark.slow
@pytest.mark.footage
def test_source_audio_is_kept_for_the_range(tiny_bundle, shared_cache, tmp_path):
    source = footage_path("target_dumbbell.mp4")  # has sound; full body in every frame
    result = run_transfer(TransferJob(source, tiny_bundle, tmp_path / "job", 60, 72, face=False,
                                      device="cpu"))
    info = probe(result.video)
    assert info.has_audio and info.frame_count == 12
    with av.open(str(result.video)) as container:
        stream = container.streams.audio[0]
        samples = sum(frame.samples for frame in container.decode(stream))
        seconds = samples / stream.rate
    assert abs(seconds - 12 / info.fps) < 0.05  # cut to the range's length


@pytest.mark.slow
@pytest.mark.footage
def test_a_source_that_never_shows_its_ankles_falls_back_and_says_so(tiny_bundle, shared_cache,
                                                                     tmp_path):
    source = footage_path("hard_half_body.mp4")  # filmed from the waist up
    result = run_transfer(TransferJob(source, tiny_bundle, tmp_path / "job", 0, 10, face=False,
                                      device="cpu"))
    assert result.frame_count == 10 == count_frames(result.video)
    assert any("ankles" in w for w in result.warnings)
    status = json.loads((tmp_path / "job" / "status.json").read_text())
    assert status["warnings"] == result.warnings
    assert "warning:" in (tmp_path / "job" / "log.txt").read_text()


def test_a_source_with_nobody_in_it_is_refused(tiny_bundle, shared_cache, tmp_path):
    from backend.video import Mp4Writer

    empty = tmp_path / "empty.mp4"
    with Mp4Writer(empty, 25, (160, 96)) as writer:
        for _ in range(6):
            writer.write(np.full((96, 160, 3), 90, np.uint8))
    with pytest.raises(InputError, match="empty.mp4: no person was found"):
        run_transfer(TransferJob(empty, tiny_bundle, tmp_path / "job", device="cpu"))
    status = json.loads((tmp_path / "job" / "status.json").read_text())
    assert status["state"] == "failed" and "no person" in status["message"]


# -- no footage needed: the demo performer ----------------------------------------------------


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """A demo dance clip (the source) and a prepared training run of a demo target."""
    folder = tmp_path_factory.mktemp("demo")
    make_demo_clip(folder / "dance.mp4", "dance", n_frames=12, fps=30, size=(256, 256),
                   progress=False)
    track = make_demo_clip(folder / "target.mp4", "target", n_frames=40, fps=30, size=(256, 128),
                           seed=3, progress=False)
    from training.data.prepare import PrepareOptions, prepare

    prepare(folder / "target.mp4", folder / "run", PrepareOptions(size=(128, 64),
            label_sizes=((128, 64),)), track=track, progress=False)
    normalization = json.loads((folder / "run" / "prepared" / "normalization.json").read_text())
    bundle = make_bundle(folder / "bundle", normalization, resolution=(64, 32))
    return folder, bundle


@pytest.mark.slow
def test_demo_performer_source_and_nearest_baseline(demo, shared_cache, tmp_path):
    folder, bundle = demo
    source = folder / "dance.mp4"
    result = run_transfer(TransferJob(source, bundle, tmp_path / "gen", device="cpu",
                                      cpu_backend=BACKEND))
    assert result.frame_count == 12 == count_frames(result.video)
    assert read_image(result.frames_dir / "000001.png").shape == (32, 64, 3)  # 2:1 target
    # A worker passes the bundle it keeps loaded: the same frames.
    from backend.models import load_bundle

    again = run_transfer(TransferJob(source, bundle, tmp_path / "gen2", device="cpu",
                                     cpu_backend=BACKEND), bundle=load_bundle(bundle))
    assert frame_bytes(tmp_path / "gen2") == frame_bytes(tmp_path / "gen")
    assert again.frame_count == 12

    nearest = run_transfer(TransferJob(source, None, tmp_path / "nn", method="nearest",
                                       nearest_run=folder / "run", side_by_side=True))
    assert nearest.frame_count == 12 == count_frames(nearest.video)
    assert count_frames(nearest.side_by_side) == 12
    # Every frame is the chosen training frame of the target, as it was prepared.
    from backend.pose.track import PoseTrack

    targets = PreparedRun.open(folder / "run")
    normalized = PoseTrack.load(tmp_path / "nn" / "normalized_poses.npz")
    renderer = NearestRenderer(targets, normalized, Letterbox.fit_into((256, 128), (128, 64)))
    assert 0 <= renderer.choice.min() and renderer.choice.max() < targets.train_range[1]
    for i in range(12):
        assert np.array_equal(read_image(nearest.frames_dir / f"{i + 1:06d}.png"), renderer(i))


@pytest.mark.slow
def test_a_bundle_of_another_format_version_is_refused(demo, shared_cache, tmp_path):
    folder, bundle = demo
    old = tmp_path / "old-bundle"
    shutil.copytree(bundle, old)
    manifest = json.loads((old / "manifest.json").read_text())
    manifest["format_version"] = 99
    (old / "manifest.json").write_text(json.dumps(manifest))
    out = tmp_path / "job"
    with pytest.raises(FormatVersionError, match=r"manifest.json.*format version 99"):
        run_transfer(TransferJob(folder / "dance.mp4", old, out, device="cpu"))
    assert not out.exists()  # refused before anything was written


@pytest.mark.slow
def test_command_line_errors_are_clear(demo, shared_cache, tmp_path, capsys):
    from backend.cli import main

    folder, bundle = demo
    adjust = tmp_path / "adjust.json"
    adjust.write_text(json.dumps({"scale": [1.0] * 5}))  # the range has 12 frames
    common = ["retarget", "--source", str(folder / "dance.mp4"), "-o", str(tmp_path / "job"), "-q"]
    assert main(common + ["--model", str(bundle), "--adjust", str(adjust)]) == 2
    assert "adjust.json" in capsys.readouterr().err
    assert main(common + ["--method", "nearest"]) == 2
    assert "run.nearest_run (a prepared training run folder) is needed by method 'nearest'" \
        in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:  # refused where it is parsed
        main(common + ["--model", str(bundle), "--device", "tpu"])
    assert exit_.value.code == 2
    assert "argument --device: must be one of auto, cpu, cuda, mps or cuda:N" in \
        capsys.readouterr().err
    assert not (tmp_path / "job").exists()


@pytest.mark.slow
@pytest.mark.footage
def test_a_rerun_with_a_changed_keyframe_keeps_the_frames_before_it_and_matches_a_fresh_run(
        tiny_bundle, shared_cache, tmp_path):
    """The editor's loop: the same job with the scale changed from frame 9 on keeps frames
    1-8 as they are and makes 9-16 again, byte for byte the frames of a fresh run."""
    n = JUGGLE_RANGE[1] - JUGGLE_RANGE[0]
    first = Adjustments(scale=[1.0] * n, offset_x=0.0, offset_y=0.0)
    changed = Adjustments(scale=[1.0] * 8 + [1.3] * (n - 8), offset_x=0.0, offset_y=0.0)
    folder = tmp_path / "job"
    run_transfer(juggle_job(tiny_bundle, folder, adjustments=first))
    before = {p.name: (p.stat().st_mtime_ns, p.read_bytes())
              for p in sorted((folder / "frames").glob("*.png"))}
    reports: list[tuple[str, int, int]] = []
    result = run_transfer(juggle_job(tiny_bundle, folder, adjustments=changed),
                          report=lambda *r: reports.append(r))
    after = {p.name: (p.stat().st_mtime_ns, p.read_bytes())
             for p in sorted((folder / "frames").glob("*.png"))}
    assert [after[k] == before[k] for k in sorted(after)] == [True] * 8 + [False] * (n - 8)
    fresh = run_transfer(juggle_job(tiny_bundle, tmp_path / "fresh", adjustments=changed))
    assert frame_bytes(folder) == frame_bytes(tmp_path / "fresh") and result.frame_count == n
    assert count_frames(result.video) == n == count_frames(fresh.video)
    generate = [done for stage, done, _ in reports if stage == "generate"]
    assert generate[0] == 8 and generate[-1] == n  # the progress starts past the kept frames
    log = (folder / "log.txt").read_text()
    assert "8 of the 16 frames made before are kept" in log
    assert "generate: 8 new frames" in log and "8 kept from before" in log
    # ... and the folder now holds the revised job: running it again changes nothing.
    again = run_transfer(juggle_job(tiny_bundle, folder, adjustments=changed))
    assert frame_bytes(folder) == frame_bytes(tmp_path / "fresh") and again.frame_count == n
    # Another change in the source range is not a revision: refused, as before.
    with pytest.raises(InputError, match="other parameters"):
        run_transfer(juggle_job(tiny_bundle, folder, adjustments=changed, face=False))


@pytest.mark.slow
@pytest.mark.footage
def test_a_job_started_from_an_earlier_folder_keeps_its_frames_and_leaves_it_as_it_was(
        tiny_bundle, shared_cache, tmp_path):
    """``reuse``: the add-on's way (a new folder per retarget, for undo): the earlier folder's
    files are linked in, the unchanged frames kept, the earlier folder untouched."""
    n = JUGGLE_RANGE[1] - JUGGLE_RANGE[0]
    first = Adjustments(scale=[1.0] * n, offset_x=0.0, offset_y=0.0)
    changed = Adjustments(scale=[1.0] * 10 + [0.8] * (n - 10), offset_x=0.0, offset_y=0.0)
    earlier = tmp_path / "earlier"
    run_transfer(juggle_job(tiny_bundle, earlier, adjustments=first))
    snapshot = {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in earlier.rglob("*")
                if p.is_file()}
    later = run_transfer(juggle_job(tiny_bundle, tmp_path / "later", adjustments=changed,
                                    reuse=earlier))
    assert {p: (p.stat().st_mtime_ns, p.read_bytes()) for p in earlier.rglob("*")
            if p.is_file()} == snapshot
    fresh = run_transfer(juggle_job(tiny_bundle, tmp_path / "fresh", adjustments=changed))
    assert frame_bytes(tmp_path / "later") == frame_bytes(tmp_path / "fresh")
    assert later.frame_count == fresh.frame_count == n
    assert "10 of the 16 frames made before are kept" in (tmp_path / "later" / "log.txt").read_text()
