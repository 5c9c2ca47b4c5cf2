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

from .conftest import REPO

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


def test_job_json_holds_the_identity_and_backend_and_status_json_progress_alone(reference):
    record = json.loads((reference / "job.json").read_text())
    assert record["backend"] == "onnx" and record["identity"]["range"] == [0, N_FRAMES]
    status = json.loads((reference / "status.json").read_text())
    assert status["state"] == "done" and "identity" not in status
    assert len(frame_bytes(reference)) == N_FRAMES


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
