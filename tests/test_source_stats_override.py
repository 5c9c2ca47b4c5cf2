"""The user's override of the source's automatic normalization statistics, end to end."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np

from backend.demo import LOOKS, dance_motion, make_clip, target_motion
from backend.labels import LabelStyle
from backend.normalize import compute_stats, normalize_track
from backend.pose.pipeline import PoseOptions
from backend.target.letterbox import Letterbox
from backend.transfer.plan import PosePlacement, SourceRange, plan_frames
from backend.transfer.target_spec import TargetSpec
from backend.worker.execute import WorkerSettings, to_transfer_job
from backend.worker.protocol import Run, parse_line


def test_saved_source_statistics_replace_the_measured_ones(tmp_path):
    clip = tmp_path / "dance.mp4"
    make_clip(clip, dance_motion(10, size=(256, 256)), LOOKS["red"], progress=False)
    target = compute_stats(target_motion(60, size=(256, 128), seed=3))
    spec = TargetSpec(target, LabelStyle(), Letterbox.fit_into(target.frame_size, (128, 64)), 8,
                      manifest=None, prepared=None)
    source = SourceRange(clip, 0, 10, None, PoseOptions())
    measured = plan_frames(source, spec)
    # A dancer measured as much taller (e.g. from a longer clip) is drawn smaller on the target.
    override = dataclasses.replace(compute_stats(measured.source),
                                   close_height=2 * compute_stats(measured.source).close_height,
                                   far_height=2 * compute_stats(measured.source).far_height)
    overridden = plan_frames(source, spec, PosePlacement(source_stats=override))
    expected = normalize_track(measured.source, override, target)
    np.testing.assert_allclose(overridden.normalized.body, expected.body, atol=1e-4)
    height = lambda t: np.ptp(t.body[:, :, 1][t.body[..., 2] > 0])  # noqa: E731
    assert height(overridden.normalized) < 0.7 * height(measured.normalized)


def test_the_worker_passes_the_override_file_to_the_job(tmp_path):
    stats = compute_stats(target_motion(30, size=(256, 256)))
    path = stats.save(tmp_path / "source_stats.json")
    bundle = Path(__file__).parents[1] / "backend" / "demo" / "bundle"
    run = Run(job_id="j", source=str(tmp_path / "s.mp4"), model=str(bundle),
              output_dir=str(tmp_path / "out"), source_stats=str(path))
    job = to_transfer_job(parse_line(run.to_line()), WorkerSettings())
    assert job.source_stats == stats
