"""``python -m training prepare``: turn a target video into a training folder.

What it writes under ``RUN_DIR/prepared/``::

    manifest.json        what was prepared from what (the cache key), sizes, the time split,
                         the letterbox, the label style; "complete" once everything is written
    source_track.npz     the pose track in video pixels: detect -> fill gaps -> smooth
    face_centers.npy     (T, 2) the face-box centre (nose) of every frame, canvas pixels
    normalization.json   the target's global pose normalization statistics
    frames/000000.jpg    every frame letterboxed to the canvas (JPEG q95, or PNG)
    labels/WxH/000000.png  stick-figure labels at every training resolution the preset needs

The canvas is the preset's largest training resolution (1024x512 for the paper): frames are
stored once at that size and resized on load for smaller stages. Labels are drawn at each
stage's size straight from the video-pixel track with ``render_label(pose, video_size,
size, style)``, exactly as transfer draws them, so training and inference labels are the
same pixels (a stick figure drawn small is not a shrunk big one: line widths, anti-aliasing).

Frames are streamed from the video (never held in memory). The last ``holdout`` fraction of
the video (15% by default) is held out for evaluation: a time split, so no held-out frame is
a near copy of a training frame. A second ``prepare`` with the same inputs returns at once.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from backend.errors import InputError
from backend.labels import LabelStyle, render_label
from backend.paths import atomic_write_bytes, atomic_write_json
from backend.pose.track import PoseTrack
from backend.progress import ProgressFn, progress_bar
from backend.transfer.canvas import face_centers  # one rule for training and transfer

from .letterbox import Letterbox

PREPARED_KIND = "everybody-dance-prepared-target"
PREPARED_FORMAT = 1
PREPARED_DIR = "prepared"
MANIFEST = "manifest.json"


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


# --------------------------------------------------------------------------------------------
# Reading a prepared folder
# --------------------------------------------------------------------------------------------


@dataclass
class Prepared:
    """A prepared target: paths and facts, read from ``manifest.json``."""

    folder: Path
    manifest: dict[str, Any]
    face_centers: np.ndarray = field(repr=False)

    @staticmethod
    def open(run_dir: str | Path) -> "Prepared":
        """The prepared data of ``run_dir`` (InputError naming the file when unusable)."""
        folder = Path(run_dir) / PREPARED_DIR
        path = folder / MANIFEST
        if not path.is_file():
            raise InputError(Path(run_dir), "has no prepared data; run `python -m training "
                                            "prepare VIDEO -o RUN_DIR` first")
        try:
            manifest = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(path, f"unreadable prepared-data manifest ({exc})") from exc
        if manifest.get("kind") != PREPARED_KIND or manifest.get("format_version") != PREPARED_FORMAT:
            raise InputError(path, "not prepared data of this version; prepare the video again")
        if not manifest.get("complete"):
            raise InputError(path, "preparation did not finish; run `prepare` again")
        centers = np.load(folder / "face_centers.npy", allow_pickle=False)
        return Prepared(folder, manifest, centers)

    @property
    def n_frames(self) -> int:
        return int(self.manifest["n_frames"])

    @property
    def canvas(self) -> tuple[int, int]:
        return tuple(self.manifest["canvas"])  # type: ignore[return-value]

    @property
    def fps(self) -> float:
        return float(self.manifest["fps"])

    @property
    def train_range(self) -> tuple[int, int]:
        return tuple(self.manifest["split"]["train"])  # type: ignore[return-value]

    @property
    def eval_range(self) -> tuple[int, int]:
        return tuple(self.manifest["split"]["eval"])  # type: ignore[return-value]

    @property
    def letterbox(self) -> Letterbox:
        return Letterbox.from_dict(self.manifest["letterbox"])

    @property
    def label_style(self) -> dict[str, Any]:
        return dict(self.manifest["label_style"])

    @property
    def fingerprint(self) -> str:
        return str(self.manifest["fingerprint"])

    def frame_path(self, index: int) -> Path:
        return self.folder / "frames" / f"{index:06d}.{self.manifest['frame_format']}"

    def label_dir(self, size: tuple[int, int]) -> Path:
        return self.folder / "labels" / f"{size[0]}x{size[1]}"

    def label_path(self, index: int, size: tuple[int, int]) -> Path:
        return self.label_dir(size) / f"{index:06d}.png"

    def track(self) -> PoseTrack:
        """The target's pose track in video pixels (detected, gap-filled, smoothed)."""
        return PoseTrack.load(self.folder / "source_track.npz")

    def style(self) -> LabelStyle:
        return LabelStyle.from_dict(self.label_style)

    def normalization(self) -> dict[str, Any]:
        return json.loads((self.folder / "normalization.json").read_text())

    def has_labels(self, size: tuple[int, int]) -> bool:
        return (self.label_dir(size) / ".complete").is_file()


# --------------------------------------------------------------------------------------------
# Preparing
# --------------------------------------------------------------------------------------------


def _file_identity(path: Path) -> dict[str, Any]:
    st = path.stat()
    return {"path": str(path.resolve()), "bytes": st.st_size, "mtime_ns": st.st_mtime_ns}


def _fingerprint(parts: dict[str, Any]) -> str:
    text = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _identifying(options: PrepareOptions) -> dict[str, Any]:
    """The options that decide what a preparation holds (how fast poses are found does not)."""
    values = asdict(options)
    del values["pose_workers"]
    return values


def time_split(n_frames: int, holdout: float) -> tuple[tuple[int, int], tuple[int, int]]:
    """(train, eval) frame ranges: the last ``holdout`` of the video is held out."""
    n_eval = int(round(n_frames * holdout))
    if n_frames - n_eval < 2:
        raise ValueError(f"{n_frames} frames leave fewer than 2 training frames after holding "
                         f"out {holdout:.0%}")
    return (0, n_frames - n_eval), (n_frames - n_eval, n_frames)


def _write_image(path: Path, rgb: np.ndarray, fmt: str, quality: int) -> None:
    params = [cv2.IMWRITE_JPEG_QUALITY, quality] if fmt == "jpg" else [cv2.IMWRITE_PNG_COMPRESSION, 3]
    ok, data = cv2.imencode(f".{fmt}", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), params)
    if not ok:
        raise OSError(f"could not encode {path}")
    path.write_bytes(data.tobytes())  # not atomic per frame: "complete" in the manifest is


def detect_track(video: Path, start: int, stop: int | None, progress: bool,
                 report: ProgressFn | None, smoothing: Any = None,
                 workers: int | None = None) -> PoseTrack:
    """The target's pose track for frames [start, stop): detect, fill gaps, smooth."""
    from backend.pose.detector import HolisticConfig, detect_video
    from backend.pose.gaps import fill_gaps
    from backend.pose.smoothing import SmoothingConfig, smooth_track

    raw = detect_video(video, HolisticConfig(workers=workers), start, stop, progress, report)
    if len(raw) and not raw.detected.any():
        raise InputError(video, "no person was found in any frame; a target video must show "
                                "the person to learn")
    return smooth_track(fill_gaps(raw), smoothing or SmoothingConfig())


def _compute_normalization(track: PoseTrack) -> dict[str, Any]:
    from backend.normalize import compute_stats

    stats = compute_stats(track)
    return dict(stats.to_dict())


def prepare(video: str | Path, run_dir: str | Path, options: PrepareOptions = PrepareOptions(),
            label_style: LabelStyle | None = None, track: PoseTrack | None = None, smoothing: Any = None,
            progress: bool = True, report: ProgressFn | None = None,
            force: bool = False) -> Prepared:
    """Prepare ``video`` for training into ``run_dir/prepared`` (see the module docstring).

    ``track`` skips pose detection (an imported OpenPose track, or the demo performer's exact
    one); it must cover frames [start, stop) of the video. ``label_style`` defaults to the
    paper's. A finished preparation with the same inputs is returned as it is; one with other
    inputs is an error unless ``force``.
    """
    video = Path(video)
    folder = Path(run_dir) / PREPARED_DIR
    from backend.video import probe, read_frames

    info = probe(video)
    style = label_style if label_style is not None else LabelStyle()
    start = options.start
    stop = info.frame_count if options.stop is None else min(options.stop, info.frame_count)
    if not 0 <= start < stop:
        raise InputError(video, f"frame range [{start}, {stop}) is empty (the video has "
                                f"{info.frame_count} frames)")
    n_frames = stop - start
    key = {
        "video": _file_identity(video), "start": start, "stop": stop,
        "options": {**_identifying(options), "stop": stop}, "label_style": style.to_dict(),
        "smoothing": None if smoothing is None else smoothing.to_dict(),
        "track": None if track is None else hashlib.sha256(track.to_bytes()).hexdigest(),
        "format": PREPARED_FORMAT,
    }
    fingerprint = _fingerprint(key)
    existing = _read_manifest(folder)
    if existing is not None and existing.get("fingerprint") == fingerprint and existing.get("complete"):
        return Prepared.open(run_dir)
    if existing is not None and existing.get("complete") and existing.get("fingerprint") != fingerprint \
            and not force:
        raise InputError(folder, "was prepared from another video or other settings; use a new "
                                 "run folder, or --force to prepare again (checkpoints trained "
                                 "on the old data become meaningless)")
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)

    if track is None:
        track = detect_track(video, start, stop, progress, report, smoothing, options.pose_workers)
    if len(track) != n_frames or tuple(track.size) != info.size:
        raise InputError(video, f"the pose track has {len(track)} frames of {track.size}, the "
                                f"video range has {n_frames} of {info.size}")
    box = Letterbox.fit_into(info.size, options.size, style.fit)
    track.save(folder / "source_track.npz")
    centers = face_centers(track)
    centers = box.apply_points(np.concatenate([centers, np.ones((len(centers), 1))], 1))[:, :2]
    np.save(folder / "face_centers.npy", centers, allow_pickle=False)
    atomic_write_json(folder / "normalization.json", _compute_normalization(track))
    train, held_out = time_split(n_frames, options.holdout)

    manifest = {
        "kind": PREPARED_KIND, "format_version": PREPARED_FORMAT, "fingerprint": fingerprint,
        "complete": False, "source": key["video"], "source_size": list(info.size),
        "fps": info.fps, "start": start, "stop": stop, "n_frames": n_frames,
        "canvas": list(options.size), "letterbox": box.to_dict(),
        "split": {"train": list(train), "eval": list(held_out), "holdout": options.holdout},
        "frame_format": options.frame_format, "label_style": style.to_dict(),
        "detector": track.detector, "preset": options.preset,
    }
    atomic_write_json(folder / MANIFEST, manifest)

    frames_dir = folder / "frames"
    frames_dir.mkdir()
    written = 0
    for i, frame in enumerate(progress_bar(read_frames(video, start, stop), n_frames,
                                           "prepare frames", progress, report)):
        _write_image(frames_dir / f"{i:06d}.{options.frame_format}", box.apply(frame, 0),
                     options.frame_format, options.jpeg_quality)
        written += 1
    if written != n_frames:
        raise InputError(video, f"decoded {written} frames, expected {n_frames}")
    prepared = Prepared(folder, manifest, centers)
    for size in options.label_sizes:
        render_labels(prepared, size, style, progress=progress)
    manifest["complete"] = True
    atomic_write_json(folder / MANIFEST, manifest)
    return Prepared.open(run_dir)


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    try:
        return json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None


def render_labels(prepared: Prepared, size: tuple[int, int], style: LabelStyle | None = None,
                  progress: bool = True) -> Path:
    """Draw the label of every frame at ``size`` (cached: a finished folder is kept)."""
    size = (int(size[0]), int(size[1]))
    out = prepared.label_dir(size)
    marker = out / ".complete"
    if marker.is_file():
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
        _write_image(out / f"{i:06d}.png", label, "png", 0)
    atomic_write_bytes(marker, b"")
    return out


def prepared_size_for(sizes: list[tuple[int, int]]) -> tuple[int, int]:
    """The canvas for a set of training resolutions: the largest one."""
    return max(sizes, key=lambda s: s[0] * s[1])


