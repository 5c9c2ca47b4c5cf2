"""A dancer who leaves the picture: frames without one show the target's empty plate (a model
with a matte) or black (a model without), the command line, log and status say which frames,
the side-by-side video says "no dancer", and a resumed job gives the frames of an uninterrupted
one wherever it stopped."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from backend.demo import make_demo_clip
from backend.demo.run import DEMO_BUNDLE
from backend.models.bundle import read_manifest, read_plate
from backend.pose.gaps import away_frames, true_runs
from backend.pose.track import PoseTrack
from backend.transfer import TransferJob, run_transfer
from backend.transfer.outputs import no_dancer_panel
from backend.transfer.target_spec import TargetSpec
from backend.video.images import read_image

from .helpers import REPO, footage_path

pytestmark = pytest.mark.usefixtures("one_thread")
FRAMES = 40
AWAY = (12, 30)  # the job frames without a dancer: 18 frames, more than the 15 (0.5 s) filled


def test_away_frames_are_the_undetected_runs_longer_than_the_filled_gap():
    detected = np.array([1, 0, 0, 1, 1, 0, 0, 0, 0, 1, 0, 0, 0], bool)
    assert away_frames(detected, 2).tolist() == [0, 0, 0, 0, 0, 1, 1, 1, 1, 0, 1, 1, 1]
    assert away_frames(detected, 3).tolist() == [0] * 5 + [1] * 4 + [0] * 4  # the end's 3: short
    assert not away_frames(np.ones(5, bool), 0).any()


def plate_content() -> np.ndarray:
    """The demo bundle's plate, cut as its frames are (the target's frame in the canvas)."""
    manifest = read_manifest(DEMO_BUNDLE)
    target = TargetSpec.load(manifest, DEMO_BUNDLE, None)
    return target.layout.crop(read_plate(DEMO_BUNDLE, manifest)).astype(int)


@pytest.fixture(scope="module")
def leaving(tmp_path_factory) -> tuple[Path, Path]:
    """A demo dance clip whose dancer is not found in frames AWAY (poses given)."""
    folder = tmp_path_factory.mktemp("leaving")
    track = make_demo_clip(folder / "dance.mp4", "dance", n_frames=FRAMES, fps=30,
                           size=(256, 256), progress=False)
    detected = track.detected.copy()
    detected[AWAY[0]:AWAY[1]] = False
    track.copy(detected=detected).save(folder / "dance.npz")
    return folder / "dance.mp4", folder / "dance.npz"


def job(clip: tuple[Path, Path], out: Path, **changes) -> TransferJob:
    source, poses = clip
    values = dict(source=source, model=DEMO_BUNDLE, output_dir=out, poses=poses, device="cpu",
                  cpu_backend="onnx", threads=1)
    return TransferJob(**{**values, **changes})


def frames(folder: Path) -> list[bytes]:
    return [p.read_bytes() for p in sorted((folder / "frames").glob("*.png"))]


@pytest.fixture(scope="module")
def whole_frames(tmp_path_factory) -> Path:
    """A tiny untrained bundle without a matte (it paints whole frames), temporal."""
    from .helpers import make_bundle

    normalization = read_manifest(DEMO_BUNDLE).normalization
    return make_bundle(tmp_path_factory.mktemp("whole") / "bundle", normalization,
                       resolution=(64, 32), face=False)


@pytest.fixture(scope="module")
def references(leaving, whole_frames, tmp_path_factory) -> dict[str, tuple[Path, object]]:
    """Uninterrupted jobs with the matte model (the demo bundle) and the one without."""
    runs = {}
    for name, model in (("matte", DEMO_BUNDLE), ("whole", whole_frames)):
        out = tmp_path_factory.mktemp(f"leaving-{name}") / "job"
        runs[name] = out, run_transfer(job(leaving, out, model=model, side_by_side=True))
    return runs


def test_frames_without_a_dancer_are_the_plate_and_every_record_says_which(references):
    out, result = references["matte"]
    plate = plate_content()
    for i in range(FRAMES):
        frame = read_image(out / "frames" / f"{i + 1:06d}.png").astype(int)
        assert np.array_equal(frame, plate) == (AWAY[0] <= i < AWAY[1]), i
    expected = (f"no dancer in source frames {AWAY[0]}..{AWAY[1] - 1} (18 of {FRAMES} frames): "
                f"they show the target's empty background (its plate)")
    assert result.warnings == [expected]
    assert json.loads((out / "status.json").read_text())["warnings"] == [expected]
    assert f"warning: {expected}" in (out / "log.txt").read_text()
    assert result.side_by_side is not None and result.side_by_side.is_file()


def test_the_side_by_side_says_no_dancer_on_those_frames():
    label = np.full((64, 128, 3), 255, np.uint8)
    label[20:40, 50:70] = (0, 0, 255)  # a held pose: nobody's
    panel = no_dancer_panel(label)
    colours = {tuple(c) for c in panel.reshape(-1, 3)}
    assert (255, 255, 255) in colours and (0, 0, 255) not in colours
    assert (panel != 255).any(axis=-1).sum() > 50  # the words


@pytest.mark.parametrize("kept", [AWAY[0] + 4, AWAY[1], AWAY[1] + 1],
                         ids=["within", "at-its-end", "after"])
@pytest.mark.parametrize("model", ["matte", "whole"])
def test_a_job_stopped_near_the_dancers_absence_resumes_to_the_same_frames(
        leaving, references, whole_frames, tmp_path, model, kept):
    """A job stopped with ``kept`` frames written (a crash after frame ``kept``) continues to
    the uninterrupted run's frames: from a frame without a dancer, from the last one of them
    (the next, with the dancer back, sees the empty frame written, not the last one G drew)
    and from the first one after."""
    done, _ = references[model]
    out = tmp_path / "job"
    shutil.copytree(done, out)
    for path in sorted((out / "frames").glob("*.png"))[kept:]:
        path.unlink()
    for video in ("result.mp4", "side_by_side.mp4"):
        (out / video).unlink()
    run_transfer(job(leaving, out, model=DEMO_BUNDLE if model == "matte" else whole_frames,
                     side_by_side=True))
    assert frames(out) == frames(done)
    assert f"resumed at frame {kept + 1}" in (out / "log.txt").read_text()


def test_a_model_without_a_matte_shows_black_and_says_so(references):
    _, result = references["whole"]
    for i in range(FRAMES):
        frame = read_image(result.frames_dir / f"{i + 1:06d}.png")
        assert (not frame.any()) == (AWAY[0] <= i < AWAY[1]), i
    [warning] = result.warnings
    assert warning.endswith("they show black (this model paints whole frames: it has no empty "
                            "background)")


@pytest.mark.slow
@pytest.mark.footage
def test_a_woman_who_walks_out_leaves_the_plate_and_the_command_says_when(tmp_path):
    """The hostile case: ``hard_leaves_frame.mp4 --start 250`` with a matte model (the demo
    bundle). At least 70% of the frames without a dancer equal the plate (mean difference
    under 1 level; in fact all, exactly), and the command prints which frames."""
    source = footage_path("hard_leaves_frame.mp4")
    out = tmp_path / "job"
    done = subprocess.run([sys.executable, "-m", "backend", "retarget", "--model",
                           str(DEMO_BUNDLE), "--source", str(source), "--start", "250", "-o",
                           str(out), "--device", "cpu", "-q"],
                          cwd=REPO, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    track = PoseTrack.load(out / "poses.npz")
    away = away_frames(track.detected, round(0.5 * track.fps))
    assert away.sum() >= 30  # she walks out for good
    plate = plate_content()
    differences = np.array([np.abs(read_image(out / "frames" / f"{i + 1:06d}.png") - plate).mean()
                            for i in np.flatnonzero(away)])
    assert (differences < 1).mean() >= 0.7, differences
    named = ", ".join(f"{250 + a}..{250 + b - 1}" for a, b in true_runs(away))
    assert f"warning: no dancer in source frames {named} (" in done.stderr
    assert "they show the target's empty background" in done.stderr


def make_leaving_clip(path: Path, n_frames: int, away: tuple[int, int]) -> None:
    """A demo clip whose performer is gone (the empty room) in frames ``away``."""
    from backend.demo.clip import make_clip
    from backend.demo.motion import dance_motion

    track = dance_motion(n_frames, fps=12.0, size=(128, 128), seed=0)
    gone = slice(*away)
    body, face, hands = track.body.copy(), track.face.copy(), track.hands.copy()
    body[gone], face[gone], hands[gone] = 0, 0, 0
    make_clip(path, track.copy(body=body, face=face, hands=hands), progress=False)


@pytest.mark.slow
def test_the_worker_tells_the_add_on_which_frames_had_no_dancer(tmp_path):
    """Detected, not given: the performer leaves the room for 18 frames (1.5 s)."""
    from backend.worker.protocol import Done, Run

    from .helpers import TIMEOUT, make_tiny_bundle, start_client

    make_leaving_clip(tmp_path / "leaving.mp4", 36, (12, 30))
    run = Run(job_id="leaving", source=str(tmp_path / "leaving.mp4"),
              model=str(make_tiny_bundle(tmp_path / "bundle")), output_dir=str(tmp_path / "job"))
    with start_client(tmp_path) as client:
        reply = client.run_job(run, timeout=TIMEOUT)
    assert isinstance(reply, Done), reply
    [warning] = reply.warnings
    found = re.fullmatch(r"no dancer in source frames (\d+)\.\.(\d+) \(\d+ of 36 frames\): "
                         r"they show black \(.*\)", warning)
    assert found, warning
    first, last = int(found[1]), int(found[2])
    assert 11 <= first <= 13 and 28 <= last <= 30, warning  # the detector's own edges
