"""The pose preview: the normalized stick figure over the target's background, frame by frame.

    source frames -> poses (`video_poses`, cached)                       the transfer's own
                  -> normalized onto the bundle's target (+ adjustments)   pose pass, `plan_frames`
                  -> label at the bundle's resolution over the background (`background`)
                  -> cut to the output frame (`Letterbox.crop`) -> frames/000001.png ...

The labels are the ones the transfer feeds its generator, and they are cut to the result
frames' shape the same way, so an editor sees where the dancer will stand and how tall before
spending minutes on the generator. No network is loaded. Detection is cached per video and
range, so once a clip's poses are known (a first preview, or a transfer) an update with new
adjustments costs only drawing and writing the frames.

The preview folder::

    preview.json       parameters, state, the background used, timings
    frames/000001.jpg  one per source frame of the range (JPEG: a tenth of a PNG's encoding
                       time at the paper's 1024x512, and a sixth of its size; or PNG on request)
    preview.mp4        the same as H.264 (on request)

Running a preview into a folder that holds an earlier preview replaces it; any other
non-empty folder is refused.
"""

from __future__ import annotations

import shutil
import threading
import time
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ..errors import InputError, JobCancelled
from ..folders import POSE_PREVIEW, refuse_links, refuse_other_kind
from ..labels import render_label
from ..models.bundle import read_manifest
from ..normalize import Adjustments, NormalizationStats
from ..paths import atomic_write_json
from ..pose.pipeline import PoseOptions
from ..side_by_side import dimmed, overlay
from ..progress import progress_bar
from ..transfer.plan import (FramePlan, PosePlacement, SourceRange, Watch, frame_range,
                             plan_frames)
from ..transfer.target_spec import TargetSpec
from ..video import Mp4Writer, probe
from ..video.png_writer import PNG_COMPRESSION
from .background import preview_background

Report = Callable[[str, int, int], None]  # (stage, done, total): "poses", "draw", "finish"
PREVIEW_FILE = "preview.json"
FRAMES_DIR = "frames"
VIDEO_FILE = "preview.mp4"
FRAME_FORMATS = ("jpg", "png")
JPEG_QUALITY = 90


@dataclass
class PosePreviewJob:
    """Preview frames [frame_start, frame_stop) of ``source`` on the target of ``model``.

    ``adjustments``, ``pose_options`` and ``source_stats`` mean what they mean for a
    `TransferJob`: the same values give the labels that transfer would draw.
    """

    source: Path
    model: Path
    output_dir: Path
    frame_start: int = 0
    frame_stop: int | None = None
    fps: float | None = None  # frame rate of an image-sequence folder (movies use their own)
    adjustments: Adjustments | None = None
    pose_options: PoseOptions = field(default_factory=PoseOptions)
    source_stats: NormalizationStats | None = None
    video: bool = False  # also write preview.mp4
    frame_format: str = "jpg"  # or "png" (lossless, slower)

    def __post_init__(self) -> None:
        self.source, self.model = Path(self.source), Path(self.model)
        self.output_dir = Path(self.output_dir)
        if self.frame_start < 0 or (self.frame_stop is not None and self.frame_stop < 0):
            raise ValueError(f"frame range must be >= 0, got {self.frame_start}, {self.frame_stop}")
        if self.frame_format not in FRAME_FORMATS:
            raise ValueError(f"frame_format must be one of {FRAME_FORMATS}, got "
                             f"{self.frame_format!r}")


@dataclass
class PosePreviewResult:
    frames_dir: Path  # 000001.jpg (or .png) ...
    frame_count: int
    video: Path | None
    background: str  # "plate", "target frame" or "grey"
    frame_format: str = "jpg"
    warnings: list[str] = field(default_factory=list)


def run_pose_preview(job: PosePreviewJob, report: Report | None = None,
                     cancel: threading.Event | None = None,
                     progress: bool = False) -> PosePreviewResult:
    """Write the preview frames of ``job``; ``report(stage, done, total)`` follows the work,
    ``cancel`` set stops it (`JobCancelled`), ``progress`` shows bars on stderr."""
    began = time.perf_counter()
    cancel = cancel or threading.Event()
    target = TargetSpec.load(read_manifest(job.model), job.model, None)  # no weights read
    start, stop = frame_range(job.source, job.frame_start, job.frame_stop,
                              probe(job.source, job.fps).frame_count)
    n = stop - start
    if job.adjustments is not None:
        job.adjustments.check(n, "preview.adjustments")
    _claim(job.output_dir, job)
    try:
        plan = plan_frames(SourceRange(job.source, start, stop, job.fps, job.pose_options),
                           target, PosePlacement(job.adjustments, job.source_stats),
                           Watch(_stage_report(report, "poses"), cancel, progress))
        posed = time.perf_counter()
        background = preview_background(job.model, target.resolution)
        result = PosePreviewResult(job.output_dir / FRAMES_DIR, n,
                                   job.output_dir / VIDEO_FILE if job.video else None,
                                   background.kind, job.frame_format, plan.warnings)
        _draw(plan, target, dimmed(background.image), result, _Progress(report, cancel, progress))
    except BaseException as exc:
        _write_record(job, {"state": "cancelled" if isinstance(exc, JobCancelled) else "failed",
                            "message": str(exc) or type(exc).__name__})
        raise
    timings = {"poses": round(posed - began, 3), "draw": round(time.perf_counter() - posed, 3)}
    _write_record(job, {"state": "done", "frame_count": n, "range": [start, stop],
                        "background": background.kind, "seconds": timings,
                        "warnings": plan.warnings})
    if report is not None:
        report("finish", 1, 1)
    return result


# -- the steps -------------------------------------------------------------------------------


def _claim(folder: Path, job: PosePreviewJob) -> None:
    """Make ``folder`` ready: new, empty, or an earlier preview (whose frames are removed)."""
    refuse_other_kind(folder, POSE_PREVIEW)
    if folder.is_dir() and any(folder.iterdir()) and not (folder / PREVIEW_FILE).is_file():
        raise InputError(folder, "is not empty and holds no pose preview; refusing to write "
                                 "into it (choose another folder)")
    if folder.exists() and not folder.is_dir():
        raise InputError(folder, "is a file, not a folder")
    refuse_links(folder, (PREVIEW_FILE, FRAMES_DIR, VIDEO_FILE))  # nothing written through one
    shutil.rmtree(folder / FRAMES_DIR, ignore_errors=True)
    (folder / VIDEO_FILE).unlink(missing_ok=True)
    folder.mkdir(parents=True, exist_ok=True)
    _write_record(job, {"state": "running"})


def _write_record(job: PosePreviewJob, fields: dict) -> None:
    parameters = {
        "source": str(job.source), "model": str(job.model), "frame_start": job.frame_start,
        "frame_stop": job.frame_stop, "fps": job.fps,
        "adjustments": None if job.adjustments is None else job.adjustments.to_dict(),
        "pose_options": job.pose_options.to_dict(), "frame_format": job.frame_format,
        "source_stats": None if job.source_stats is None else job.source_stats.to_dict()}
    atomic_write_json(job.output_dir / PREVIEW_FILE, {"parameters": parameters, **fields})


@dataclass
class _Progress:
    report: Report | None
    cancel: threading.Event
    bar: bool


def _draw(plan: FramePlan, target: TargetSpec, backdrop: np.ndarray,
          result: PosePreviewResult, follow: _Progress) -> None:
    """Each frame's label over ``backdrop`` (canvas-sized), cut as the transfer's result frames."""
    layout, track, see_through = target.layout, plan.normalized, target.style.background
    backdrop = layout.crop(backdrop)  # the same pixels as overlaying first, cutting after
    result.frames_dir.mkdir(parents=True)
    video = nullcontext() if result.video is None else Mp4Writer(
        result.video, track.fps, layout.content, preset="veryfast")
    with video as encoder:
        steps = progress_bar(range(result.frame_count), result.frame_count, "preview",
                             follow.bar, _stage_report(follow.report, "draw"))
        for i in steps:
            if follow.cancel.is_set():
                raise JobCancelled(f"{result.frames_dir.parent}: preview cancelled")
            label = render_label(track.frame(i), track.size, target.resolution, target.style)
            frame = overlay(layout.crop(label), backdrop, see_through)
            name = f"{i + 1:06d}.{result.frame_format}"
            (result.frames_dir / name).write_bytes(_encode(frame, result.frame_format))
            if encoder is not None:
                encoder.write(frame)


def _encode(frame: np.ndarray, frame_format: str) -> bytes:
    """An RGB frame as a JPEG or PNG file's bytes."""
    params = ([cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY] if frame_format == "jpg"
              else [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION])
    ok, data = cv2.imencode(f".{frame_format}", cv2.cvtColor(frame, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise RuntimeError(f"OpenCV could not encode a preview frame as {frame_format}")
    return data.tobytes()


def _stage_report(report: Report | None, stage: str) -> Callable[[int, int], None] | None:
    """``report`` bound to ``stage``, as a progress callback ``(done, total)``."""
    if report is None:
        return None
    return lambda done, total: report(stage, done, total)
