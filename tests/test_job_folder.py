"""The job folder as an explicit state (issue 19): job.json holds the job's identity and
backend, written once; status.json is progress alone; a busy folder is refused at once; no
command writes into a folder of another kind.

The real pipeline with the built-in demo bundle on a short demo-performer clip.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from backend.demo import make_demo_clip
from backend.demo.run import DEMO_BUNDLE
from backend.errors import JobCancelled
from backend.transfer import TransferJob, run_transfer

from .helpers import REPO

pytestmark = pytest.mark.usefixtures("one_thread")
N_FRAMES = 8


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict:
    """A short dance (the source), a prepared training run and a pose preview folder."""
    root = tmp_path_factory.mktemp("job-folder")
    cache = root / "cache"
    make_demo_clip(root / "dance.mp4", "dance", n_frames=N_FRAMES, fps=24, size=(128, 128),
                   progress=False)
    track = make_demo_clip(root / "target.mp4", "target", n_frames=12, fps=24, size=(128, 64),
                           seed=3, progress=False)
    from training.data.prepare import PrepareOptions, prepare

    prepare(root / "target.mp4", root / "run", PrepareOptions(size=(64, 32),
            label_sizes=((64, 32),)), track=track, progress=False)
    from backend.pose_preview.run import PosePreviewJob, run_pose_preview

    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EVERYBODY_DANCE_CACHE", str(cache))
        run_pose_preview(PosePreviewJob(root / "dance.mp4", DEMO_BUNDLE, root / "preview"))
    return {"root": root, "source": root / "dance.mp4", "cache": cache, "run": root / "run",
            "preview": root / "preview"}


@pytest.fixture
def cache(media, monkeypatch) -> Path:
    monkeypatch.setenv("EVERYBODY_DANCE_CACHE", str(media["cache"]))
    monkeypatch.delenv("EVERYBODY_DANCE_CPU_BACKEND", raising=False)
    return media["cache"]


def job(media, out: Path, **changes) -> TransferJob:
    return TransferJob(**{"source": media["source"], "model": DEMO_BUNDLE, "output_dir": out,
                          "device": "cpu", "threads": 1, **changes})


@pytest.fixture(scope="module")
def reference(media, tmp_path_factory) -> Path:
    """An uninterrupted run, on the default backend (ONNX Runtime)."""
    out = tmp_path_factory.mktemp("reference") / "job"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("EVERYBODY_DANCE_CACHE", str(media["cache"]))
        mp.delenv("EVERYBODY_DANCE_CPU_BACKEND", raising=False)
        run_transfer(job(media, out))
    return out


def frame_bytes(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((folder / "frames").glob("*.png"))]


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by its relative name, with its bytes."""
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*"))
            if p.is_file()}


@pytest.mark.slow
def test_job_json_holds_the_identity_and_backend_and_status_json_progress_alone(reference):
    record = json.loads((reference / "job.json").read_text())
    assert record["backend"] == "onnx" and record["identity"]["range"] == [0, N_FRAMES]
    status = json.loads((reference / "status.json").read_text())
    assert status["state"] == "done" and "identity" not in status
    assert len(frame_bytes(reference)) == N_FRAMES


@pytest.mark.slow
def test_a_job_resumed_without_its_status_json_gives_the_frames_of_an_uninterrupted_run(
        media, cache, reference, tmp_path):
    out = tmp_path / "job"
    cancel = threading.Event()

    def report(stage: str, done: int, total: int) -> None:
        if stage == "generate" and done == 3:
            cancel.set()

    with pytest.raises(JobCancelled):
        run_transfer(job(media, out), report=report, cancel=cancel)
    identity = (out / "job.json").read_bytes()
    assert 3 <= len(frame_bytes(out)) < N_FRAMES
    (out / "status.json").unlink()
    run_transfer(job(media, out))
    assert frame_bytes(out) == frame_bytes(reference)
    assert (out / "job.json").read_bytes() == identity  # progress never rewrites it
    log = (out / "log.txt").read_text()
    assert "resumed at frame" in log and "may differ" not in log


@pytest.mark.slow
def test_a_second_process_on_a_busy_folder_is_refused_at_once_and_the_first_finishes(
        media, cache, reference, tmp_path):
    from backend.cli import main

    out = tmp_path / "job"
    env = {**os.environ, "EVERYBODY_DANCE_CACHE": str(cache), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO)}
    args = ["retarget", "--model", str(DEMO_BUNDLE), "--source", str(media["source"]), "-o",
            str(out), "--device", "cpu", "--threads", "1", "-q"]
    first = subprocess.Popen([sys.executable, "-m", "backend", *args], cwd=REPO, env=env,
                             stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "job.json").is_file():  # written once the folder is claimed
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.05)
        first.send_signal(signal.SIGSTOP)  # it holds the lock, whatever it is doing
        began = time.monotonic()
        try:
            assert main(args) == 2
        finally:
            first.send_signal(signal.SIGCONT)
        assert time.monotonic() - began < 5  # at once, not after the first one
        _, err = first.communicate(timeout=300)
    finally:
        first.kill()
    assert first.returncode == 0, err[-3000:]
    assert frame_bytes(out) == frame_bytes(reference)  # the frames of a lone run
    log = (out / "log.txt").read_text()
    assert log.count("started") == 1 and "resumed" not in log


@pytest.mark.slow
def test_the_refusal_of_a_busy_folder_names_it(media, cache, tmp_path, capsys):
    from backend.cli import main
    from backend.folders import FolderLock

    out = tmp_path / "job"
    with FolderLock(out):
        assert main(["retarget", "--model", str(DEMO_BUNDLE), "--source", str(media["source"]),
                     "-o", str(out), "--device", "cpu", "-q"]) == 2
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("error:")]
    assert errors == [f"error: {out}: is in use by another process (pid {os.getpid()}) working "
                      f"in it; wait for it to finish, or cancel it"]
    assert [p.name for p in out.iterdir()] == [".lock"]


@pytest.mark.parametrize("command", [
    ["train", "{job}", "--preset", "tiny", "--steps", "1"],
    ["train", "{job}", "--resume"],
    ["prepare", "{source}", "-o", "{job}", "--preset", "tiny"],
    ["export", "{job}", "-o", "{tmp}/bundle"],
    ["export", "{run}", "-o", "{job}"],
], ids=["train", "train-resume", "prepare", "export-from", "export-to"])
@pytest.mark.slow
def test_a_training_command_on_a_job_folder_leaves_it_byte_identical(
        media, cache, reference, tmp_path, capsys, command):
    from training.cli import main

    before = snapshot(reference)
    args = [a.format(job=reference, source=media["source"], run=media["run"], tmp=tmp_path)
            for a in command]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert f"error: {reference}: is a transfer job folder, not a " in err and "Traceback" not in err
    assert snapshot(reference) == before
    assert not (tmp_path / "bundle").exists()


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["run", "preview"])
def test_retarget_refuses_a_training_run_or_a_preview_folder(media, cache, capsys, kind):
    from backend.cli import main

    folder = media[kind]
    before = snapshot(folder)
    for extra in ([], ["--overwrite"]):
        assert main(["retarget", "--model", str(DEMO_BUNDLE), "--source", str(media["source"]),
                     "-o", str(folder), "--device", "cpu", "-q", *extra]) == 2
        err = capsys.readouterr().err
        name = "training run" if kind == "run" else "pose preview"
        assert f"error: {folder}: is a {name} folder, not a transfer job" in err
    assert snapshot(folder) == before


@pytest.mark.slow
def test_training_commands_refuse_a_preview_folder_and_a_folder_that_is_no_run(
        media, cache, tmp_path, capsys):
    from training.cli import main

    before = snapshot(media["preview"])
    assert main(["train", str(media["preview"]), "--preset", "tiny"]) == 2
    assert f"{media['preview']}: is a pose preview folder, not a training run" in \
        capsys.readouterr().err
    assert snapshot(media["preview"]) == before
    (tmp_path / "notes.txt").write_text("mine")
    assert main(["train", str(tmp_path), "--preset", "tiny"]) == 2
    assert "is not a training run folder; make one with `python -m training prepare" in \
        capsys.readouterr().err
    assert [p.name for p in tmp_path.iterdir()] == ["notes.txt"]


@pytest.mark.slow
def test_backend_commands_that_write_folders_refuse_a_job_folder(media, cache, reference,
                                                                 tmp_path, capsys):
    from backend.cli import main
    from backend.pose.track import PoseTrack

    track = PoseTrack.empty(2, 24.0, (64, 64)).save(tmp_path / "t.npz")
    before = snapshot(reference)
    for argv, wanted in ((["labels", str(track), "-o", str(reference), "-q"],
                          "a folder of label frames"),
                         (["demo", "-o", str(reference), "-q"], "a demo folder"),
                         (["export-onnx", str(DEMO_BUNDLE), "-o", str(reference)],
                          "a model bundle")):
        assert main(argv) == 2
        assert f"error: {reference}: is a transfer job folder, not {wanted}; refusing" in \
            capsys.readouterr().err
    assert snapshot(reference) == before


# -- the folder is the job's own: nothing written through a link out of it (issue 25) ---------


def retarget(media, out: Path, *extra: str) -> list[str]:
    return ["retarget", "--model", str(DEMO_BUNDLE), "--source", str(media["source"]), "-o",
            str(out), "--device", "cpu", "--threads", "1", "-q", *extra]


def only_error(err: str) -> str:
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and "Traceback" not in err, err
    return lines[0]


def copy_of(reference: Path, tmp_path: Path) -> Path:
    import shutil

    out = tmp_path / "job"
    shutil.copytree(reference, out)
    return out


@pytest.mark.parametrize("contents", ["precious", "12345"])
def test_a_lock_that_is_a_link_to_a_file_outside_leaves_that_file_as_it_was(
        media, cache, reference, tmp_path, capsys, contents):
    from backend.cli import main

    precious = tmp_path / "precious.txt"
    precious.write_text(contents)
    lone = tmp_path / "lone"  # a folder holding only the link is not empty
    lone.mkdir()
    (lone / ".lock").symlink_to(precious)
    assert main(retarget(media, lone)) == 2
    assert f"error: {lone}: is not empty" in only_error(capsys.readouterr().err)
    out = copy_of(reference, tmp_path)  # a job's own folder, its lock a link
    (out / ".lock").unlink()
    (out / ".lock").symlink_to(precious)
    before = snapshot(out)
    for extra in ([], ["--overwrite"]):
        assert main(retarget(media, out, *extra)) == 2
        assert only_error(capsys.readouterr().err) == (
            f"error: {out / '.lock'}: is a symbolic link; this program writes only its own "
            f"files in the folder, never through a link (remove the link, or give another "
            f"folder)")
    assert precious.read_text() == contents and snapshot(out) == before
    assert [p.name for p in lone.iterdir()] == [".lock"]


def test_a_lock_file_of_the_users_own_is_refused_not_overwritten(media, cache, tmp_path,
                                                                 capsys):
    from backend.cli import main

    out = tmp_path / "job"
    out.mkdir()
    (out / ".lock").write_text("my notes\n")
    assert main(retarget(media, out)) == 2
    assert f"error: {out}: is not empty and holds no transfer job" in \
        only_error(capsys.readouterr().err)
    assert (out / ".lock").read_text() == "my notes\n" and len(list(out.iterdir())) == 1


def test_a_jobs_lock_file_holding_something_else_is_refused_not_overwritten(
        media, cache, reference, tmp_path, capsys):
    from backend.cli import main

    out = copy_of(reference, tmp_path)
    (out / ".lock").write_text("my notes\n")
    before = snapshot(out)
    assert main(retarget(media, out, "--overwrite")) == 2
    assert only_error(capsys.readouterr().err) == (
        f"error: {out / '.lock'}: is not this program's lock file (it holds something else); "
        f"refusing to overwrite it (remove it, or give another folder)")
    assert snapshot(out) == before


@pytest.mark.parametrize("name", ["log.txt", "frames", "status.json"])
def test_a_job_whose_own_file_is_a_link_is_refused_before_anything_changes(
        media, cache, reference, tmp_path, capsys, name):
    """Resumed or overwritten: the link's target stays as it was, and --overwrite deletes
    nothing (before, it deleted job.json, status.json and log.txt, then failed on frames)."""
    import shutil

    from backend.cli import main

    out = copy_of(reference, tmp_path)
    outside = tmp_path / f"outside-{name}"
    shutil.move(str(out / name), str(outside))
    (out / name).symlink_to(outside)
    (out / "frames" / "000008.png").unlink(missing_ok=True)  # the job has work left
    before, outside_before = snapshot(out), (snapshot(outside) if outside.is_dir()
                                             else outside.read_bytes())
    for extra in ([], ["--overwrite"]):
        assert main(retarget(media, out, *extra)) == 2
        assert only_error(capsys.readouterr().err).startswith(
            f"error: {out / name}: is a symbolic link; this program writes only its own files")
    assert snapshot(out) == before
    assert (snapshot(outside) if outside.is_dir() else outside.read_bytes()) == outside_before


def test_removing_the_lock_of_a_running_job_lets_no_second_one_in(media, cache, reference,
                                                                  tmp_path):
    from backend.cli import main

    out = tmp_path / "job"
    env = {**os.environ, "EVERYBODY_DANCE_CACHE": str(cache), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": str(REPO)}
    first = subprocess.Popen([sys.executable, "-m", "backend", *retarget(media, out)], cwd=REPO,
                             env=env, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "job.json").is_file():
            assert first.poll() is None and time.monotonic() < deadline, first.stderr.read()
            time.sleep(0.05)
        first.send_signal(signal.SIGSTOP)
        try:
            (out / ".lock").unlink()
            assert main(retarget(media, out)) == 2
        finally:
            first.send_signal(signal.SIGCONT)
        _, err = first.communicate(timeout=300)
    finally:
        first.kill()
    assert first.returncode == 0, err[-3000:]
    assert frame_bytes(out) == frame_bytes(reference)
    assert (out / "log.txt").read_text().count("started") == 1


@pytest.mark.parametrize("kind,name", [("preview", "frames"), ("run", "train_options.json"),
                                       ("run", "prepared")])
def test_previews_and_training_runs_whose_own_files_are_links_are_refused(
        media, cache, tmp_path, capsys, kind, name):
    import shutil

    from backend.cli import main as backend
    from training.cli import main as training

    folder = tmp_path / kind
    shutil.copytree(media[kind], folder)
    outside = tmp_path / f"outside-{name}"
    if (folder / name).exists():
        shutil.move(str(folder / name), str(outside))
    else:
        outside.write_text("{}")
    (folder / name).symlink_to(outside)
    before = snapshot(outside) if outside.is_dir() else outside.read_bytes()
    if kind == "preview":
        code = backend(["preview-poses", "--model", str(DEMO_BUNDLE), "--source",
                        str(media["source"]), "-o", str(folder), "-q"])
    else:
        code = training(["train", str(folder), "--preset", "tiny", "--steps", "1",
                         "--no-progress"])
    assert code == 2
    assert only_error(capsys.readouterr().err).startswith(
        f"error: {folder / name}: is a symbolic link; this program writes only its own files")
    assert (snapshot(outside) if outside.is_dir() else outside.read_bytes()) == before
