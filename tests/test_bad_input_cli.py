"""Bad input on the command line (issue 13): every case ends in ``error: PATH: problem`` with
exit status 2 (or a ``warning:`` line), never a traceback, and nothing already there is lost.

Real commands in real processes on small demo-performer clips and a tiny untrained bundle.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend.demo import make_demo_clip
from backend.pose.layout import BODY
from backend.pose.track import PoseTrack
from backend.video import Mp4Writer

from .helpers import REPO, make_tiny_bundle

pytestmark = pytest.mark.usefixtures("one_thread")

ANKLE_POINTS = ("RAnkle", "LAnkle", "RHeel", "LHeel", "RBigToe", "LBigToe", "RSmallToe",
                "LSmallToe")


def run_cli(*args: str, cache: Path, module: str = "backend") -> subprocess.CompletedProcess:
    """``python -m MODULE ARGS`` in a process of its own."""
    env = {**os.environ, "EVERYBODY_DANCE_CACHE": str(cache), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", module, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


@pytest.fixture
def cli(capsys, monkeypatch, media):
    """``cli(*args, module=...)``: the same command line run by its ``main`` in this process
    (a new process costs seconds of imports on a shared machine), as a CompletedProcess."""
    monkeypatch.setenv("EVERYBODY_DANCE_CACHE", str(media["cache"]))

    def run(*args: str, module: str = "backend") -> subprocess.CompletedProcess:
        from backend.cli import main as backend_main
        from training.cli import main as training_main

        capsys.readouterr()
        code = (backend_main if module == "backend" else training_main)([str(a) for a in args])
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(args, code, out, err)
    return run


def refused(result: subprocess.CompletedProcess, *names: str) -> str:
    """The error line of a refused command, after checking the refusal's form."""
    assert result.returncode == 2, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1, result.stderr[-3000:]
    for name in names:
        assert name in errors[0], errors[0]
    return errors[0]


def succeeded(result: subprocess.CompletedProcess) -> str:
    assert result.returncode == 0, result.stderr[-3000:]
    assert "Traceback" not in result.stderr
    return result.stderr


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict:
    root = tmp_path_factory.mktemp("media")
    track = make_demo_clip(root / "dance.mp4", "dance", n_frames=12, fps=12.0, size=(128, 128),
                           progress=False)
    track.save(root / "dance.npz")
    no_ankles = PoseTrack.load(root / "dance.npz")
    no_ankles.body[:, [BODY[name] for name in ANKLE_POINTS]] = 0
    no_ankles.save(root / "no_ankles.npz")
    return {"root": root, "clip": root / "dance.mp4", "track": root / "dance.npz",
            "no_ankles": root / "no_ankles.npz", "bundle": make_tiny_bundle(root / "bundle"),
            "cache": root / "cache"}


@pytest.fixture(scope="module")
def empty_clip(tmp_path_factory) -> Path:
    """Six frames of a grey wall: nobody in them."""
    path = tmp_path_factory.mktemp("empty") / "empty.mp4"
    with Mp4Writer(path, 25, (160, 96)) as writer:
        for _ in range(6):
            writer.write(np.full((96, 160, 3), 90, np.uint8))
    return path


def retarget_args(media: dict, out: Path | str, *extra: str) -> tuple[str, ...]:
    return ("retarget", "--model", str(media["bundle"]), "--source", str(media["clip"]),
            "-o", str(out), "-q", "--cpu-backend", "torch", *extra)


# -- 1. output paths ----------------------------------------------------------------------------


@pytest.mark.slow
def test_output_paths_that_cannot_be_written_are_refused_by_name(media, cli, tmp_path):
    a_file = tmp_path / "notes.txt"
    a_file.write_text("my notes")
    folder = tmp_path / "folder"
    folder.mkdir()
    foreign = tmp_path / "data.npz"
    np.savez(foreign, x=np.arange(3))
    cases = [
        (retarget_args(media, a_file / "job"), a_file / "job", "is a file, not a folder"),
        (("poses", media["clip"], "-o", folder), folder, "is a folder"),
        (("poses", media["clip"], "-o", a_file / "x.npz"), a_file / "x.npz",
         "is a file, not a folder"),
        (("poses", media["clip"], "-o", a_file), a_file, "give a name ending in .npz"),
        (("poses", media["clip"], "-o", foreign), foreign,
         "is not a pose track this program reads; refusing to replace it"),
    ]
    if sys.platform.startswith("linux"):  # a pseudo file system where nothing can be made
        cases.append((retarget_args(media, "/proc/job"), "/proc/job", "cannot be written in /proc"))
    for args, out, problem in cases:
        refused(cli(*args), str(out), problem)
    assert a_file.read_text() == "my notes"  # nothing the user had is replaced
    assert list(np.load(foreign)) == ["x"]
    assert not list(folder.iterdir())
    # The same through a real process: the exit status and no traceback.
    refused(run_cli(*retarget_args(media, a_file / "job"), cache=media["cache"]),
            str(a_file / "job"), "is a file, not a folder")


@pytest.mark.slow
def test_a_pose_track_may_be_replaced(media, cli, tmp_path):
    out = tmp_path / "poses.npz"
    shutil.copy(media["no_ankles"], out)
    succeeded(cli("poses", media["clip"], "-o", out, "-q"))
    assert PoseTrack.load(out).body[:, BODY["RAnkle"], 2].any()  # the new track


def _read_only_folder(tmp_path: Path):
    """A folder that cannot be written: a read-only tmpfs where mounting is allowed (root),
    else a folder without write permission (which root would ignore)."""
    folder = tmp_path / "read-only"
    folder.mkdir()
    if not hasattr(os, "geteuid"):
        pytest.skip("POSIX permissions")
    if os.geteuid() != 0:
        folder.chmod(0o555)
        return folder, lambda: folder.chmod(0o755)
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=64k", "tmpfs", str(folder)],
                             capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"root, but cannot mount a read-only tmpfs: {mounted.stderr.decode()[:200]}")
    return folder, lambda: subprocess.run(["umount", str(folder)], check=True)


def test_a_folder_that_cannot_be_written_is_refused(media, cli, tmp_path):
    folder, restore = _read_only_folder(tmp_path)
    try:
        error = refused(cli(*retarget_args(media, folder / "job")), str(folder / "job"),
                        "cannot be written")
        assert "read-only file system" in error or "permission denied" in error
        refused(cli("poses", media["clip"], "-o", folder / "x.npz", "-q"), str(folder / "x.npz"),
                "cannot be written")
    finally:
        restore()


# -- 3. names too long for the file system -----------------------------------------------------


def test_a_source_path_too_long_for_the_file_system_is_named(media, cli, tmp_path):
    long_source = tmp_path / ("a" * 300 + ".mp4")
    refused(cli("retarget", "--model", media["bundle"], "--source", long_source,
                "-o", tmp_path / "job", "-q"), str(long_source), "file name too long")
    refused(cli("poses", long_source, "-o", tmp_path / "x.npz", "-q"), str(long_source),
            "file name too long")
    refused(cli(*retarget_args(media, tmp_path / ("b" * 300))), "file name too long")
    assert not (tmp_path / "job").exists()


# -- 5. adjustments out of range ---------------------------------------------------------------


def test_extreme_adjustments_are_refused_where_they_enter(media, cli, tmp_path):
    path = tmp_path / "adjust.json"
    for adjust, field in (({"offset_x": 1e300}, "offset_x"), ({"scale": 1e10}, "scale"),
                          ({"offset_y": [0.0] * 11 + [float("nan")]}, "offset_y"),
                          ({"scale": [1.0] * 11 + [0.0]}, "scale")):
        path.write_text(json.dumps(adjust))  # NaN is written as NaN, which Python's json reads
        error = refused(cli(*retarget_args(media, tmp_path / "job", "--adjust", path)), str(path),
                        field)
        assert "must be a finite number from" in error
        refused(cli("normalize", media["track"], "--target", media["track"], "--adjust", path,
                    "-o", tmp_path / "n.npz"), str(path), field)
    assert not (tmp_path / "job").exists() and not (tmp_path / "n.npz").exists()


def test_adjustments_at_the_ends_of_the_range_make_a_video(media, cli, tmp_path):
    path = tmp_path / "adjust.json"
    path.write_text(json.dumps({"scale": [10.0] * 6 + [0.05] * 6, "offset_x": 2.0,
                                "offset_y": [-2.0] * 6 + [2.0] * 6}))
    succeeded(cli(*retarget_args(media, tmp_path / "job", "--adjust", path)))
    assert len(list((tmp_path / "job" / "frames").glob("*.png"))) == 12


def test_a_pose_track_with_keypoints_that_are_not_finite_is_refused(media, cli, tmp_path):
    track = PoseTrack.load(media["track"])
    track.body[3, BODY["Nose"], 0] = np.inf  # what a broken or hostile file could hold
    track.save(tmp_path / "broken.npz")
    refused(cli(*retarget_args(media, tmp_path / "job", "--poses", tmp_path / "broken.npz")),
            str(tmp_path / "broken.npz"), "keypoints that are not finite numbers")
    assert not (tmp_path / "job").exists()


# -- 6. training on too short a video ----------------------------------------------------------


def test_prepare_refuses_a_one_frame_video_and_warns_of_an_empty_held_out_split(cli, tmp_path):
    for frames in (1, 3):
        track = make_demo_clip(tmp_path / f"clip{frames}.mp4", "target", n_frames=frames, fps=12,
                               size=(128, 64), progress=False)
        track.save(tmp_path / f"clip{frames}.npz")
    args = ("--preset", "tiny", "--no-progress")
    one = cli("prepare", tmp_path / "clip1.mp4", "--poses", tmp_path / "clip1.npz",
              "-o", tmp_path / "run1", *args, module="training")
    refused(one, "clip1.mp4", "too short to train on: 1 frame(s) leave fewer than 2 training")
    assert not (tmp_path / "run1").exists()
    three = cli("prepare", tmp_path / "clip3.mp4", "--poses", tmp_path / "clip3.npz",
                "-o", tmp_path / "run3", *args, module="training")
    assert f"warning: {tmp_path / 'clip3.mp4'}: 3 frames are too few to hold out 15%" \
        in succeeded(three)


# -- 7. OpenPose JSON import -------------------------------------------------------------------


def write_openpose(folder: Path, track: PoseTrack | None, n_frames: int) -> Path:
    """OpenPose --write_json files: ``track``'s subject in each, or nobody (None)."""
    folder.mkdir()
    for i in range(n_frames):
        people = [] if track is None else [{
            "pose_keypoints_2d": track.body[i].ravel().tolist(),
            "face_keypoints_2d": track.face[i].ravel().tolist(),
            "hand_left_keypoints_2d": track.hands[i, 0].ravel().tolist(),
            "hand_right_keypoints_2d": track.hands[i, 1].ravel().tolist()}]
        (folder / f"dance_{i:012d}_keypoints.json").write_text(
            json.dumps({"version": 1.3, "people": people}))
    return folder


def test_an_openpose_import_takes_the_videos_size_and_fps_and_says_when_it_guesses(media, cli,
                                                                                     tmp_path):
    json_dir = write_openpose(tmp_path / "openpose", PoseTrack.load(media["track"]), 12)
    guessed = succeeded(cli("poses", json_dir, "-o", tmp_path / "g.npz", "-q"))
    assert f"warning: the frame size of {json_dir} was guessed" in guessed
    assert f"warning: the frame rate of {json_dir} was guessed (25 fps)" in guessed
    error = refused(cli(*retarget_args(media, tmp_path / "job-g", "--poses", tmp_path / "g.npz")),
                    "g.npz")
    assert "--video" in error  # says how to import it right

    told = succeeded(cli("poses", json_dir, "--video", media["clip"], "-o", tmp_path / "v.npz",
                         "-q"))
    assert "guessed" not in told
    imported = PoseTrack.load(tmp_path / "v.npz")
    assert imported.size == (128, 128) and imported.fps == pytest.approx(12.0)
    succeeded(cli(*retarget_args(media, tmp_path / "job", "--poses", tmp_path / "v.npz")))
    assert len(list((tmp_path / "job" / "frames").glob("*.png"))) == 12

    by_flags = cli("poses", json_dir, "--size", "128x128", "--fps", "12", "-o", tmp_path / "s.npz",
                   "-q")
    assert "guessed" not in succeeded(by_flags)
    assert PoseTrack.load(tmp_path / "s.npz").size == (128, 128)


def test_an_openpose_folder_with_nobody_in_it(cli, tmp_path):
    json_dir = write_openpose(tmp_path / "nobody", None, 5)
    out = tmp_path / "x.npz"
    refused(cli("poses", json_dir, "-o", out, "-q"), str(json_dir),
            "no person was detected in any of its 5 files")
    assert not out.exists()
    with_size = cli("poses", json_dir, "--size", "128x128", "--fps", "12", "-o", out, "-q")
    assert "warning: no person was detected in any frame" in succeeded(with_size)
    assert PoseTrack.load(out).size == (128, 128)


# -- 8. nobody in the video --------------------------------------------------------------------


def test_no_person_is_said_plainly_and_what_needs_one_refuses(media, cli, empty_clip, tmp_path):
    track = tmp_path / "empty.npz"
    said = succeeded(cli("poses", empty_clip, "-o", track, "-q"))
    assert f"warning: no person was detected in any frame of {empty_clip}" in said
    assert not PoseTrack.load(track).detected.any()  # the track is kept
    out = tmp_path / "normalized.npz"
    refused(cli("normalize", track, "--target", media["track"], "-o", out), str(track),
            "no person was detected in any frame")
    refused(cli("normalize", media["track"], "--target", track, "-o", out), str(track),
            "no person was detected in any frame")
    refused(cli("stats", track, "-o", tmp_path / "s.json"), str(track),
            "no person was detected in any frame")
    refused(cli("prepare", empty_clip, "--poses", track, "-o", tmp_path / "run", "--preset", "tiny",
                module="training"), str(track), "no person was detected in any frame")
    assert not out.exists() and not (tmp_path / "s.json").exists()


# -- 9. one format for warnings ----------------------------------------------------------------


NO_ANKLES = ("warning: only 0 of 12 detected frames show the head and both ankles",
             "warning: the source never shows its ankles")


@pytest.mark.slow
def test_warnings_print_in_one_plain_format_everywhere(media, cli, tmp_path):
    no_ankles = media["no_ankles"]
    outputs = {
        "stats": cli("stats", no_ankles, "-o", tmp_path / "s.json"),
        "normalize": cli("normalize", no_ankles, "--target", media["track"], "-o",
                         tmp_path / "n.npz"),
        "prepare": cli("prepare", media["clip"], "--poses", no_ankles, "-o", tmp_path / "run",
                       "--preset", "tiny", "--no-progress", module="training"),
        "retarget": cli(*retarget_args(media, tmp_path / "job", "--poses", no_ankles)),
        "stats in a process of its own": run_cli("stats", str(no_ankles), "-o",
                                                 str(tmp_path / "s2.json"), cache=media["cache"]),
    }
    for command, result in outputs.items():
        stderr = succeeded(result)
        assert any(text in stderr for text in NO_ANKLES), (command, stderr)
        assert "NoAnklesWarning" not in stderr and ".py:" not in stderr, (command, stderr)


# -- 12. a damaged pointer to the latest checkpoint --------------------------------------------


@pytest.mark.slow
def test_a_damaged_latest_json_is_reported_when_training_resumes(media, cli, tmp_path):
    from training import checkpoint as ckpt

    run = tmp_path / "run"
    succeeded(cli("prepare", media["clip"], "--poses", media["track"], "-o", run, "--preset",
                  "tiny", "--no-progress", module="training"))
    succeeded(cli("train", run, "--preset", "tiny", "--perceptual", "none", "--stages", "global",
                  "--steps", "2", "--no-progress", "--tensorboard", "false", module="training"))
    [pointer] = run.rglob(ckpt.LATEST_FILE)
    pointer.write_text('{"checkpoint": "step_000')  # cut off mid-write, say
    resumed = succeeded(cli("train", run, "--resume", "--steps", "3", "--no-progress",
                            module="training"))
    assert f"warning: {pointer} is damaged (JSONDecodeError" in resumed
    assert "using step_00000002, the newest complete checkpoint found" in resumed

    pointer.write_text(json.dumps({"checkpoint": "step_00000099", "step": 99}))
    with pytest.warns(ckpt.DamagedPointerWarning, match="names 'step_00000099', which is not a "
                                                        "complete checkpoint; using step_00000003"):
        assert ckpt.latest_checkpoint(pointer.parent).name == "step_00000003"


# -- the background behind the person ----------------------------------------------------------


def test_a_background_that_cannot_be_used_is_refused_before_anything_is_written(media, cli,
                                                                                 tmp_path):
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a picture")
    cases = [
        (tmp_path / "missing.jpg", "background image or video not found"),
        (broken, "not a readable image"),
        ("transparent", "needs a model with a matte"),  # this model paints whole frames
    ]
    for n, (background, problem) in enumerate(cases):
        out = tmp_path / f"job{n}"
        refused(cli(*retarget_args(media, out, "--background", str(background))), problem)
        assert not out.exists()  # nothing written
