"""``python -m training prepare``: turn a target video into a prepared run folder.

What it writes under ``RUN_DIR/prepared/`` is described (and read back) by
``backend.target.prepared``; this module makes it. The canvas is the preset's largest
training resolution (1024x512 for the paper): frames are stored once at that size and
resized on load for smaller stages. Labels are drawn at each stage's size straight from the
video-pixel track with ``render_label(pose, video_size, size, style)``, exactly as transfer
draws them, so training and inference labels are the same pixels (a stick figure drawn small
is not a shrunk big one: line widths, anti-aliasing).

Frames are streamed from the video (never held in memory). The last ``holdout`` fraction of
the video (15% by default) is held out for evaluation: a time split, so no held-out frame is
a near copy of a training frame. A second ``prepare`` with the same inputs (the video's
content, the range, the options, the given track) returns at once.

With ``matte`` (the default) the person's mask in every frame and the background plate are
made too (`make_background`, see training/data/plate.py), and the manifest says whether the
camera is static; a run prepared without them gets them on the next ``prepare``.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from backend.errors import InputError
from backend.labels import LabelStyle, render_label
from backend.folders import TRAINING_RUN_FILES, FolderLock
from backend.paths import atomic_write_bytes
from backend.pose.cache import video_identity
from backend.pose.smoothing import SmoothingConfig
from backend.pose.track import PoseTrack
from backend.progress import ProgressFn, progress_bar
from backend.target.face import face_centers
from backend.target.letterbox import Letterbox
from backend.target.prepared import (LABELS_DONE, PREPARED_FORMAT, PreparedManifest, PreparedRun,
                                     read_manifest_file)

from .plate import MeasuredPlate, estimate_background, sample_indices
from .split import checked_split


@dataclass
class PrepareOptions:
    """How a target video is prepared (defaults: the paper's 1024x512, 15% held out)."""

    size: tuple[int, int] = (1024, 512)  # the canvas: the largest training resolution
    label_sizes: tuple[tuple[int, int], ...] = ((512, 256), (1024, 512))
    holdout: float = 0.15
    start: int = 0
    stop: int | None = None
    frame_format: str = "jpg"  # jpg (quality 95) or png
    jpeg_quality: int = 95
    preset: str | None = None  # the training preset these sizes come from (a default for train)
    label_style: LabelStyle | None = None  # None: the paper's
    smoothing: SmoothingConfig | None = None  # of detected poses; None: the official median
    matte: bool = True  # also make the person's masks and the background plate
    # Pose detection processes (None: automatic; see backend.pose.chunks). Not part of what
    # identifies a preparation: a finished one keeps its own poses whatever this is.
    pose_workers: int | None = None

    def __post_init__(self) -> None:
        self.size = (int(self.size[0]), int(self.size[1]))
        self.label_sizes = tuple((int(w), int(h)) for w, h in self.label_sizes)
        if self.frame_format not in ("jpg", "png"):
            raise ValueError(f"frame_format must be jpg or png, got {self.frame_format!r}")
        if not 0.0 <= self.holdout < 1.0:
            raise ValueError(f"holdout must be in [0, 1), got {self.holdout}")

    @property
    def style(self) -> LabelStyle:
        return self.label_style if self.label_style is not None else LabelStyle()

    def key(self, stop: int) -> dict[str, Any]:
        """The options as they enter the preparation's fingerprint."""
        sizes = {"size": list(self.size), "label_sizes": [list(s) for s in self.label_sizes],
                 "holdout": self.holdout, "start": self.start, "stop": stop,
                 "frame_format": self.frame_format, "jpeg_quality": self.jpeg_quality,
                 "preset": self.preset}
        return {"options": sizes, "label_style": self.style.to_dict(),
                "smoothing": None if self.smoothing is None else self.smoothing.to_dict()}


def _fingerprint(parts: dict[str, Any]) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _write_image(path: Path, rgb: np.ndarray, fmt: str, quality: int) -> None:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, data = cv2.imencode(f".{fmt}", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise OSError(f"could not encode {path}")
    path.write_bytes(data.tobytes())  # not atomic per frame: "complete" in the manifest is


def detect_track(video: Path, start: int, stop: int | None, progress: bool,
                 report: ProgressFn | None, smoothing: SmoothingConfig | None = None,
                 workers: int | None = None) -> PoseTrack:
    """The target's pose track for frames [start, stop): detect (in ``workers`` processes;
    None: automatic), then clean as transfer cleans a source's (backend.pose.pipeline)."""
    from backend.pose.detector import HolisticConfig, detect_video
    from backend.pose.pipeline import PoseOptions, clean_track

    raw = detect_video(video, HolisticConfig(workers=workers), start, stop, progress, report)
    if len(raw) and not raw.detected.any():
        raise InputError(video, "no person was found in any frame; a target video must show "
                                "the person to learn")
    return clean_track(raw, PoseOptions(smoothing=smoothing or SmoothingConfig()))


def _normalization(track: PoseTrack) -> dict[str, Any]:
    from backend.normalize import compute_stats

    return dict(compute_stats(track).to_dict())


def _source_record(video: Path) -> dict[str, Any]:
    return {"path": str(video.resolve()), "identity": video_identity(video)}


def _legacy_key_matches(existing: dict[str, Any], key: dict[str, Any], video: Path) -> bool:
    """Whether a run prepared by an earlier version (which told videos apart by path, size
    and modification time instead of by content) was prepared from exactly these inputs."""
    if "mtime_ns" not in (existing.get("source") or {}):
        return False
    st = video.stat()
    legacy = {**key, "video": {"path": str(video.resolve()), "bytes": st.st_size,
                               "mtime_ns": st.st_mtime_ns}}
    return existing.get("fingerprint") == _fingerprint(legacy)


def prepare(video: str | Path, run_dir: str | Path, options: PrepareOptions = PrepareOptions(),
            track: PoseTrack | None = None, progress: bool = True,
            report: ProgressFn | None = None, force: bool = False) -> PreparedRun:
    """Prepare ``video`` for training into ``run_dir/prepared`` (see the module docstring).

    ``track`` skips pose detection (an imported OpenPose track, or the demo performer's exact
    one); it must cover frames [start, stop) of the video. A finished preparation with the
    same inputs is returned as it is; one with other inputs is an error unless ``force``.
    """
    with FolderLock(run_dir, TRAINING_RUN_FILES):  # one process works in a run at a time
        return _prepare(Path(video), Path(run_dir), options, track, progress, report, force)


def _prepare(video: Path, run_dir: Path, options: PrepareOptions, track: PoseTrack | None,
             progress: bool, report: ProgressFn | None, force: bool) -> PreparedRun:
    from backend.video import probe, read_frames

    folder = PreparedRun.folder_of(run_dir)
    info = probe(video)
    style = options.style
    start = options.start
    stop = info.frame_count if options.stop is None else min(options.stop, info.frame_count)
    if not 0 <= start < stop:
        raise InputError(video, f"frame range [{start}, {stop}) is empty (the video has "
                                f"{info.frame_count} frames)")
    n_frames = stop - start
    train, held_out = checked_split(video, n_frames, options.holdout)  # before anything is written
    key = {"video": video_identity(video), "start": start, "stop": stop, **options.key(stop),
           "track": None if track is None else hashlib.sha256(track.to_bytes()).hexdigest(),
           "format": PREPARED_FORMAT}
    fingerprint = _fingerprint(key)
    existing = read_manifest_file(folder)
    if existing is not None and existing.get("complete"):
        if existing.get("fingerprint") == fingerprint or _legacy_key_matches(existing, key, video):
            prepared = PreparedRun.open(run_dir)
            if options.matte and prepared.manifest.background is None:
                make_background(prepared, video, progress, report)
            return prepared
        if not force:
            raise InputError(folder, "was prepared from another video or other settings; use a "
                                     "new run folder, or --force to prepare again (checkpoints "
                                     "trained on the old data become meaningless)")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)

    if track is None:
        track = detect_track(video, start, stop, progress, report, options.smoothing,
                             options.pose_workers)
    if len(track) != n_frames or tuple(track.size) != info.size:
        raise InputError(video, f"the pose track has {len(track)} frames of {track.size}, the "
                                f"video range has {n_frames} of {info.size}")
    box = Letterbox.fit_into(info.size, options.size, style.fit)
    manifest = PreparedManifest(
        fingerprint=fingerprint, source=_source_record(video), source_size=info.size,
        fps=info.fps, start=start, stop=stop, canvas=options.size, letterbox=box, train=train,
        eval=held_out, holdout=options.holdout, frame_format=options.frame_format,
        label_style=style.to_dict(), detector=dict(track.detector), preset=options.preset)
    prepared = PreparedRun(folder, manifest)
    centers = face_centers(track)
    canvas_centers = box.apply_points(np.concatenate([centers, np.ones((len(centers), 1))], 1))
    prepared.write_track(track, canvas_centers[:, :2], _normalization(track))
    prepared.write_manifest()

    prepared.frame_path(0).parent.mkdir()
    written = 0
    for i, frame in enumerate(progress_bar(read_frames(video, start, stop), n_frames,
                                           "prepare frames", progress, report)):
        _write_image(prepared.frame_path(i), box.apply(frame, 0), options.frame_format,
                     options.jpeg_quality)
        written += 1
    if written != n_frames:
        raise InputError(video, f"decoded {written} frames, expected {n_frames}")
    for size in options.label_sizes:
        render_labels(prepared, size, style, progress=progress)
    if options.matte:
        make_background(prepared, video, progress, report)
    manifest.complete = True
    prepared.write_manifest()
    return PreparedRun.open(run_dir)


def make_background(prepared: PreparedRun, video: Path, progress: bool = True,
                    report: ProgressFn | None = None) -> MeasuredPlate:
    """The person's mask in every prepared frame and the background plate (masks/,
    plate.png; the manifest's ``background`` says what was measured). The masks come from
    the video's own frames (segmenting the smaller canvas would lose detail)."""
    from backend.pose.segmentation import PersonSegmenter
    from backend.video import read_frames

    manifest, box = prepared.manifest, prepared.letterbox
    keep = set(sample_indices(prepared.n_frames))
    frames, masks = [], []
    prepared.mask_path(0).parent.mkdir(exist_ok=True)
    with PersonSegmenter() as segment:
        for i, frame in enumerate(progress_bar(read_frames(video, manifest.start, manifest.stop),
                                               prepared.n_frames, "person masks", progress,
                                               report)):
            mask = box.apply(segment(frame))
            cv2.imwrite(str(prepared.mask_path(i)), np.round(mask * 255).astype(np.uint8))
            if i in keep:
                frames.append(box.apply(frame))
                masks.append(mask)
    content = box.apply(np.ones((box.source[1], box.source[0]), np.uint8)) > 0
    background = estimate_background(frames, masks, content)
    _write_image(prepared.plate_path, background.plate, "png", 0)
    manifest.background = background.record()
    prepared.write_manifest()
    return background


def render_labels(prepared: PreparedRun, size: tuple[int, int], style: LabelStyle | None = None,
                  progress: bool = True) -> Path:
    """Draw the label of every frame at ``size`` (cached: a finished folder is kept)."""
    size = (int(size[0]), int(size[1]))
    out = prepared.label_dir(size)
    if prepared.has_labels(size):
        return out
    if style is None:
        style = prepared.style()
    cw, ch = prepared.canvas
    if size[0] * ch != size[1] * cw:
        raise ValueError(f"label size {size} does not have the canvas' aspect ratio {cw}x{ch}")
    out.mkdir(parents=True, exist_ok=True)
    track = prepared.track()
    for i in progress_bar(range(len(track)), len(track), f"labels {size[0]}x{size[1]}", progress):
        label = render_label(track.frame(i), track.size, size, style)
        _write_image(prepared.label_path(i, size), label, "png", 0)
    atomic_write_bytes(out / LABELS_DONE, b"")
    return out
