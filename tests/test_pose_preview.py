"""The pose preview (backend.pose_preview, ``python -m backend preview-poses``).

A tiny real model bundle and a short clip of the demo performer: the preview shows the labels
the transfer draws, over the bundle's background, cut as the result frames are; an update
with new adjustments reuses the cached poses; bad folders and adjustments are refused.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from backend.errors import BackendError, JobCancelled, InputError
from backend.labels import render_label
from backend.normalize import Adjustments
from backend.pose.track import PoseTrack
from backend.pose_preview import (PLATE_FILE, TARGET_FRAME_FILE, PosePreviewJob,
                                  preview_background, run_pose_preview)
from backend.models.bundle import read_manifest
from backend.transfer.target_spec import TargetSpec
from backend.side_by_side import dimmed, overlay
from backend.transfer import TransferJob, run_transfer
from backend.video import probe
from backend.video.images import read_image

from .helpers import REPO, make_demo_media

N_FRAMES = 10
ADJUST = Adjustments(scale=np.linspace(0.8, 1.4, N_FRAMES), offset_x=0.1, offset_y=-0.05)


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    return make_demo_media(tmp_path_factory.mktemp("preview-media"), N_FRAMES)


def frames_of(folder: Path) -> list[np.ndarray]:
    return [read_image(p) for p in sorted(folder.glob("*.*"))]


@pytest.mark.slow
def test_preview_shows_the_transfers_labels_over_the_background_cut_as_its_frames(media, tmp_path):
    transfer = run_transfer(TransferJob(source=media["clip"], model=media["bundle"],
                                        output_dir=tmp_path / "job", adjustments=ADJUST,
                                        device="cpu"))
    preview = run_pose_preview(PosePreviewJob(source=media["clip"], model=media["bundle"],
                                              output_dir=tmp_path / "preview", adjustments=ADJUST,
                                              frame_format="png"))  # lossless: compared exactly
    assert preview.frame_count == N_FRAMES and preview.background == "grey"
    shown, results = frames_of(preview.frames_dir), frames_of(transfer.frames_dir)
    assert len(shown) == N_FRAMES and {f.shape for f in shown} == {results[0].shape}
    # What the transfer's generator was given: its normalized poses, drawn as labels.
    normalized = PoseTrack.load(tmp_path / "job" / "normalized_poses.npz")
    target = TargetSpec.load(read_manifest(media["bundle"]), media["bundle"], None)
    backdrop = dimmed(preview_background(media["bundle"], target.resolution).image)
    for i, frame in enumerate(shown):
        label = render_label(normalized.frame(i), normalized.size, target.resolution, target.style)
        expected = target.layout.crop(overlay(label, backdrop, target.style.background))
        assert np.array_equal(frame, expected), f"frame {i + 1} differs from the transfer's label"
    record = json.loads((tmp_path / "preview" / "preview.json").read_text())
    assert record["state"] == "done" and record["parameters"]["adjustments"] == ADJUST.to_dict()


@pytest.mark.slow
def test_background_is_the_plate_else_the_target_frame_else_grey(media, tmp_path):
    bundle = tmp_path / "bundle"
    shutil.copytree(media["bundle"], bundle)
    resolution = read_manifest(bundle).resolution
    assert preview_background(bundle, resolution).kind == "grey"
    frame = np.zeros((resolution[1] * 2, resolution[0] * 2, 3), np.uint8)
    frame[..., 2] = 200  # blue, at twice the size: resized to the canvas
    cv2.imwrite(str(bundle / TARGET_FRAME_FILE), cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    chosen = preview_background(bundle, resolution)
    assert chosen.kind == "target frame" and chosen.image.shape == (resolution[1], resolution[0], 3)
    assert tuple(chosen.image[0, 0]) == (0, 0, 200)
    plate = np.full((resolution[1], resolution[0], 3), (10, 150, 20), np.uint8)
    cv2.imwrite(str(bundle / PLATE_FILE), cv2.cvtColor(plate, cv2.COLOR_RGB2BGR))
    assert preview_background(bundle, resolution).kind == "plate"
    result = run_pose_preview(PosePreviewJob(source=media["clip"], model=bundle,
                                             output_dir=tmp_path / "preview", frame_stop=2,
                                             frame_format="png"))
    assert result.background == "plate"
    corner = read_image(result.frames_dir / "000001.png")[0, 0]  # no figure up there
    assert tuple(corner) == tuple(dimmed(plate)[0, 0])
    (bundle / PLATE_FILE).write_bytes(b"not a picture")
    with pytest.raises(InputError, match=PLATE_FILE):
        preview_background(bundle, resolution)


@pytest.mark.slow
def test_an_update_reuses_the_cached_poses_and_moves_the_figure(media, tmp_path):
    stages: list[str] = []

    def report(stage: str, done: int, total: int) -> None:
        stages.append(stage)

    def preview(name: str, adjustments: Adjustments | None) -> list[np.ndarray]:
        stages.clear()
        job = PosePreviewJob(source=media["clip"], model=media["bundle"],
                             output_dir=tmp_path / name, adjustments=adjustments)
        return frames_of(run_pose_preview(job, report=report).frames_dir)

    first = preview("first", None)
    assert "poses" in stages and stages[-1] == "finish"
    moved = preview("moved", Adjustments(scale=1.5))
    assert "poses" not in stages and {"draw", "finish"} <= set(stages)  # detection was cached
    assert all(not np.array_equal(a, b) for a, b in zip(first, moved))


def test_bad_folders_adjustments_and_cancel(media, tmp_path):
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(InputError, match="holds no pose preview"):
        run_pose_preview(PosePreviewJob(source=media["clip"], model=media["bundle"],
                                        output_dir=foreign))
    assert (foreign / "notes.txt").read_text() == "mine"
    with pytest.raises(BackendError, match="3 values per field, but the job has 10 frames"):
        run_pose_preview(PosePreviewJob(source=media["clip"], model=media["bundle"],
                                        output_dir=tmp_path / "p", adjustments=Adjustments(
                                            scale=[1.0, 1.1, 1.2])))
    cancel = threading.Event()
    cancel.set()
    with pytest.raises(JobCancelled):
        run_pose_preview(PosePreviewJob(source=media["clip"], model=media["bundle"],
                                        output_dir=tmp_path / "p"), cancel=cancel)
    assert json.loads((tmp_path / "p" / "preview.json").read_text())["state"] == "cancelled"
    with pytest.raises(InputError, match="manifest.json"):
        run_pose_preview(PosePreviewJob(source=media["clip"], model=tmp_path,
                                        output_dir=tmp_path / "p"))


@pytest.mark.slow
def test_command_line_writes_frames_and_a_video(media, tmp_path):
    adjust = tmp_path / "adjust.json"
    adjust.write_text(json.dumps({"scale": [1.0, 1.2, 1.4], "offset_y": 0.1}))
    out = subprocess.run(
        [sys.executable, "-m", "backend", "preview-poses", "--model", str(media["bundle"]),
         "--source", str(media["clip"]), "-o", str(tmp_path / "preview"), "--start", "2",
         "--stop", "5", "--adjust", str(adjust), "-q"],
        cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-3000:]
    frames = sorted((tmp_path / "preview" / "frames").iterdir())
    assert [p.name for p in frames] == ["000001.jpg", "000002.jpg", "000003.jpg"]
    video = probe(tmp_path / "preview" / "preview.mp4")
    assert video.frame_count == 3 and video.fps == pytest.approx(12.0)
    assert "3 frames over the grey" in out.stderr
