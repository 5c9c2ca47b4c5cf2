"""The disk running out while a transfer writes its frames or its video (issue 13).

``retarget`` must stop with ``error: disk full while writing X; N frames are kept; free space
and run the same command to continue`` (exit status 2), keep the N frames, and the same
command run with space must finish with the frames of an uninterrupted run.

Two real ways to run out, no mocks: a small tmpfs (mounting needs root; skipped otherwise)
fills up while frames are written (ENOSPC), and a file size limit (``ulimit -f``, any user)
stops the video from growing (EFBIG).
"""

from __future__ import annotations

import json
import math
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from backend.demo import make_demo_clip, target_motion
from backend.normalize import compute_stats

from .helpers import REPO, make_bundle

resource = pytest.importorskip("resource", reason="file size limits are POSIX")

N_FRAMES = 24
PAGE = 4096  # tmpfs counts whole pages
DISK_FULL = re.compile(r"error: disk full while writing (\S+); (\d+) frames are kept; free space "
                       r"and run the same command to continue")


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict:
    """A 24-frame demo dance, a tiny bundle at 256x128 (its noisy frames make a video larger
    than any other file of the job), and an uninterrupted job as the reference."""
    root = tmp_path_factory.mktemp("disk-full")
    make_demo_clip(root / "dance.mp4", "dance", n_frames=N_FRAMES, fps=12.0, size=(128, 128),
                   progress=False)
    stats = compute_stats(target_motion(60, fps=30.0, size=(256, 128)))
    bundle = make_bundle(root / "bundle", stats.to_dict(), resolution=(256, 128), face=False)
    media = {"clip": root / "dance.mp4", "bundle": bundle, "cache": root / "cache"}
    reference = root / "reference"
    done = retarget(media, reference)
    assert done.returncode == 0, done.stderr[-3000:]
    media["reference"] = reference
    return media


def retarget(media: dict, out: Path, file_size_limit: int | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "EVERYBODY_DANCE_CACHE": str(media["cache"]), "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        [sys.executable, "-m", "backend", "retarget", "--model", str(media["bundle"]), "--source",
         str(media["clip"]), "-o", str(out), "-q", "--cpu-backend", "torch"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=600,
        preexec_fn=None if file_size_limit is None else lambda: _limit_file_size(file_size_limit))


def _limit_file_size(limit: int) -> None:
    """In the child: writes past ``limit`` bytes fail with EFBIG (SIGXFSZ would kill it)."""
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def frames(job: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((job / "frames").glob("*.png"))]


def check_stopped_and_resumes(media: dict, job: Path, result: subprocess.CompletedProcess,
                              make_space) -> tuple[str, int]:
    """The refusal's form, the frames kept, and the resumed run; returns the file named and
    how many frames were kept."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    match = DISK_FULL.search(result.stderr)
    assert match, result.stderr[-3000:]
    kept = frames(job)
    assert int(match.group(2)) == len(kept) <= N_FRAMES
    assert kept == frames(media["reference"])[:len(kept)]  # what was written is intact
    assert not (job / "result.mp4").exists()
    make_space()
    again = retarget(media, job)
    assert again.returncode == 0, again.stderr[-3000:]
    assert frames(job) == frames(media["reference"])
    assert (job / "result.mp4").is_file()
    return match.group(1), len(kept)


def _pages(path: Path) -> int:
    return math.ceil(path.stat().st_size / PAGE) * PAGE


@pytest.mark.slow
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="mounts a Linux tmpfs")
def test_a_full_disk_while_writing_frames_keeps_them_and_the_job_resumes(media, tmp_path):
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root; the file size test covers other users")
    disk = tmp_path / "disk"
    disk.mkdir()
    reference = media["reference"]
    # Room for the job's small files (twice: atomic rewrites) and about half of its frames.
    small = sum(_pages(reference / name) for name in
                ("job.json", "status.json", "log.txt", "poses.npz", "normalized_poses.npz"))
    room = 2 * small + (N_FRAMES // 2) * _pages(reference / "frames" / "000001.png")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={room}", "tmpfs", str(disk)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr[:200]}")
    try:
        job = disk / "job"
        result = retarget(media, job)
        remount = ["mount", "-o", f"remount,size={64 * room}", str(disk)]
        named, kept = check_stopped_and_resumes(
            media, job, result, lambda: subprocess.run(remount, check=True))
        assert named.startswith(str(job)) and 0 < kept < N_FRAMES  # stopped among the frames
    finally:
        subprocess.run(["umount", str(disk)], check=True)


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="no file size limit here")
def test_no_room_for_the_video_keeps_the_frames_and_the_job_resumes(media, tmp_path):
    reference = media["reference"]
    others = max(p.stat().st_size for p in reference.rglob("*")
                 if p.is_file() and p.name != "result.mp4")
    video = (reference / "result.mp4").stat().st_size
    if not video > 1.5 * others:
        pytest.skip(f"the video ({video} bytes) is not much larger than the other files "
                    f"({others} bytes) with this encoder")
    job = tmp_path / "job"
    result = retarget(media, job, file_size_limit=(others + video) // 2)
    named, _ = check_stopped_and_resumes(media, job, result, lambda: None)
    assert named == str(job / "result.mp4")  # the encoder may hold frames: all may be kept


# -- training (issue 25): the same message, and the run resumes --------------------------------


@pytest.mark.skipif(not hasattr(resource, "RLIMIT_FSIZE"), reason="no file size limit here")
def test_no_room_for_a_checkpoint_stops_training_with_the_disk_full_line_and_it_resumes(
        prepared_demo, tmp_path):
    """Before: a ``SafetensorError`` traceback."""
    from training import checkpoint as ckpt
    from training.run_folder import stage_checkpoint

    from .helpers import new_run

    run = new_run(prepared_demo, tmp_path)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(REPO)}
    train = [sys.executable, "-m", "training", "train", str(run), "--preset", "tiny",
             "--perceptual", "none", "--stages", "global", "--steps", "3", "--no-progress",
             "--tensorboard", "false"]
    # Room for every file but the checkpoint's tensors (about 0.9 MB at the tiny preset).
    result = subprocess.run(train, cwd=REPO, env=env, capture_output=True, text=True,
                            timeout=600, preexec_fn=lambda: _limit_file_size(500_000))
    assert result.returncode == 2 and "Traceback" not in result.stderr, result.stderr[-3000:]
    tensors = run / "checkpoints" / "global" / "step_00000003" / "tensors.safetensors"
    assert result.stderr.strip().splitlines()[-1] == (
        f"error: disk full while writing {tensors}; the checkpoints written are kept; free "
        f"space and train again with --resume to continue")
    assert stage_checkpoint(run, "global") is None  # no half-written checkpoint is seen
    assert json.loads((run / "status.json").read_text())["state"] == "failed"
    again = subprocess.run(train + ["--resume"], cwd=REPO, env=env, capture_output=True,
                           text=True, timeout=600)
    assert again.returncode == 0, again.stderr[-3000:]
    assert ckpt.load_checkpoint(stage_checkpoint(run, "global"))["done"]
