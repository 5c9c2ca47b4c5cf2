"""End to end through the command line, on real footage: poses -> stats -> normalize -> labels -> preview.

Detection is the slow part, so each clip is detected once per module (short frame ranges) and
the tests share the tracks.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from backend.normalize import NoAnklesWarning, NormalizationStats, compute_stats, normalize_track
from backend.pose.track import PoseTrack
from backend.video import probe

from .helpers import REPO, footage_path

pytestmark = pytest.mark.footage

TARGET_FRAMES = 120  # taiji: the target
SOURCE_FRAMES = 90  # juggle: the source


def cli(*args: str, cache: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "EVERYBODY_DANCE_CACHE": str(cache)}
    result = subprocess.run([sys.executable, "-m", "backend", *args, "-q"], cwd=REPO, env=env,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    return result


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cli")


@pytest.fixture(scope="module")
def target_npz(work) -> Path:
    out = work / "target.npz"
    cli("poses", str(footage_path("target_taiji.mp4")), "-o", str(out), "--stop", str(TARGET_FRAMES),
        cache=work / "cache")
    return out


@pytest.fixture(scope="module")
def source_npz(work) -> Path:
    out = work / "source.npz"
    cli("poses", str(footage_path("source_juggle.mp4")), "-o", str(out), "--stop", str(SOURCE_FRAMES),
        cache=work / "cache")
    return out


@pytest.mark.slow
def test_poses_file_has_the_documented_arrays(target_npz):
    with np.load(target_npz, allow_pickle=False) as data:
        assert data["body"].shape == (TARGET_FRAMES, 25, 3)
        assert data["face"].shape == (TARGET_FRAMES, 70, 3)
        assert data["hands"].shape == (TARGET_FRAMES, 2, 21, 3)
        assert data["detected"].shape == (TARGET_FRAMES,)
        assert float(data["fps"]) == pytest.approx(23.976, abs=1e-3)
        assert tuple(data["size"]) == (1280, 720)


@pytest.mark.slow
def test_target_is_detected_in_nearly_every_frame(target_npz):
    track = PoseTrack.load(target_npz)
    assert track.detection_rate() >= 0.95
    body = track.body[track.detected]
    seen = body[..., 2] > 0
    assert np.all((body[..., 0][seen] >= -5) & (body[..., 0][seen] <= 1285))
    assert np.all((body[..., 1][seen] >= -5) & (body[..., 1][seen] <= 725))


@pytest.mark.slow
def test_second_run_hits_the_cache(target_npz, work):
    result = cli("poses", str(footage_path("target_taiji.mp4")), "-o", str(work / "again.npz"),
                 "--stop", str(TARGET_FRAMES), cache=work / "cache")
    # MediaPipe announces its TFLite graph on stderr whenever a detector is built: none was.
    assert "TensorFlow Lite" not in result.stderr
    a, b = PoseTrack.load(target_npz), PoseTrack.load(work / "again.npz")
    np.testing.assert_array_equal(a.body, b.body)


@pytest.mark.slow
def test_normalized_source_ankles_land_in_the_target_ankle_range(source_npz, target_npz, work):
    cli("stats", str(target_npz), "-o", str(work / "target_stats.json"), cache=work / "cache")
    out = work / "normalized.npz"
    cli("normalize", str(source_npz), "--target", str(work / "target_stats.json"), "-o", str(out),
        cache=work / "cache")
    moved = PoseTrack.load(out)
    stats = NormalizationStats.load(work / "target_stats.json")
    assert moved.size == (1280, 720) and len(moved) == SOURCE_FRAMES
    ankles = moved.body[:, [11, 14], :]
    visible = ankles[..., 2] > 0
    assert visible.any(axis=1).mean() > 0.9
    # The standing foot: the juggler kicks the ball, so the other ankle leaves the ground.
    ground = np.where(visible, ankles[..., 1], -np.inf).max(axis=1)[visible.any(axis=1)]
    margin = 0.02 * 720  # detector jitter of the source's ankles
    inside = (ground >= stats.far_y - margin) & (ground <= stats.close_y + margin)
    assert inside.mean() >= 0.95, (ground.min(), ground.max(), stats.far_y, stats.close_y)
    assert np.isfinite(moved.body).all() and np.isfinite(moved.face).all()


@pytest.mark.slow
def test_normalize_accepts_a_track_as_target_and_applies_adjustments(source_npz, target_npz, work):
    adjust = work / "adjust.json"
    adjust.write_text(json.dumps({"offset_y": [0.1] * SOURCE_FRAMES}))
    plain, shifted = work / "plain.npz", work / "shifted.npz"
    cli("normalize", str(source_npz), "--target", str(target_npz), "-o", str(plain), cache=work / "cache")
    cli("normalize", str(source_npz), "--target", str(target_npz), "-o", str(shifted), "--adjust",
        str(adjust), cache=work / "cache")
    a, b = PoseTrack.load(plain), PoseTrack.load(shifted)
    seen = a.body[..., 2] > 0
    np.testing.assert_allclose(b.body[..., 1][seen] - a.body[..., 1][seen], 0.1 * 720, atol=1e-3)


@pytest.mark.slow
def test_labels_command_writes_one_png_per_frame_and_a_video(target_npz, work):
    cli("labels", str(target_npz), "-o", str(work / "labels"), "--size", "256x128", cache=work / "cache")
    assert len(list((work / "labels").glob("*.png"))) == TARGET_FRAMES
    cli("labels", str(target_npz), "-o", str(work / "labels.mp4"), "--size", "256x128", cache=work / "cache")
    assert probe(work / "labels.mp4").frame_count == TARGET_FRAMES


@pytest.mark.slow
def test_preview_is_a_side_by_side_video_with_the_source_audio_range(source_npz, target_npz, work):
    out = work / "preview.mp4"
    cli("preview", str(footage_path("source_juggle.mp4")), "--target", str(footage_path("target_taiji.mp4")),
        "--source-poses", str(source_npz), "--target-poses", str(target_npz), "--height", "144",
        "-o", str(out), cache=work / "cache")
    info = probe(out)
    assert info.frame_count == SOURCE_FRAMES
    assert info.height == 144 and info.width == 2 * 256 + 256


@pytest.mark.slow
def test_person_leaving_the_frame_keeps_every_frame(work):
    clip = footage_path("hard_leaves_frame.mp4")
    out = work / "leaves.npz"
    cli("poses", str(clip), "-o", str(out), "--start", "300", cache=work / "cache")
    track = PoseTrack.load(out)
    assert len(track) == probe(clip).frame_count - 300
    assert 0.05 < track.detection_rate() < 0.95  # she walks out during this stretch
    missing = ~track.detected
    # undetected frames hold a pose (filled), nothing is dropped or NaN
    assert np.isfinite(track.body).all()
    assert (track.body[missing][..., 2] > 0).any(axis=1).all()


@pytest.mark.slow
def test_subject_without_ankles_falls_back_with_a_warning(work):
    out = work / "half.npz"
    cli("poses", str(footage_path("hard_half_body.mp4")), "-o", str(out), "--stop", "30",
        cache=work / "cache")
    half = PoseTrack.load(out)
    with pytest.warns(NoAnklesWarning):
        stats = compute_stats(half)
    assert not stats.has_ankles
    target = PoseTrack.load(work / "target.npz") if (work / "target.npz").exists() else half
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NoAnklesWarning)
        moved = normalize_track(half, stats, compute_stats(target))
    assert np.isfinite(moved.body).all() and len(moved) == 30


def test_bad_video_gets_one_clear_error(tmp_path):
    bad = tmp_path / "clip.mp4"
    bad.write_text("not a video")
    result = subprocess.run([sys.executable, "-m", "backend", "poses", str(bad), "-o",
                             str(tmp_path / "x.npz")], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 2
    assert str(bad) in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "x.npz").exists()


@pytest.mark.slow
def test_workers_flag_splits_detection_and_bad_counts_are_refused(tmp_path):
    clip = footage_path("hard_two_people.avi")
    out = tmp_path / "two.npz"
    cli("poses", str(clip), "-o", str(out), "--workers", "2", cache=tmp_path / "cache")
    track = PoseTrack.load(out)
    assert len(track) == probe(clip).frame_count
    assert track.detector["chunks"] == [[0, 36], [36, 72]]
    for command in (["-m", "backend", "poses", str(clip), "-o", str(tmp_path / "x.npz")],
                    ["-m", "training", "prepare", str(clip), "-o", str(tmp_path / "run")]):
        result = subprocess.run([sys.executable, *command, "--workers", "0"], cwd=REPO,
                                capture_output=True, text=True)
        assert result.returncode == 2 and \
            "error: argument --workers: must be an integer >= 1" in result.stderr
    assert not (tmp_path / "x.npz").exists() and not (tmp_path / "run").exists()
