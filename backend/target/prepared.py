"""The prepared run: a target video turned into training material, read and written here.

``python -m training prepare VIDEO -o RUN_DIR`` writes ``RUN_DIR/prepared/``::

    manifest.json          `PreparedManifest`: what was prepared from what (the cache key),
                           sizes, the time split, the letterbox, the label style;
                           "complete" once everything is written
    source_track.npz       the target's pose track in video pixels (detect, fill gaps, smooth)
    face_centers.npy       (T, 2) the face-box centre of every frame, canvas pixels
    normalization.json     the target's global pose normalization statistics
    frames/000000.jpg      every frame letterboxed into the canvas (JPEG q95, or PNG)
    labels/WxH/000000.png  stick-figure labels at every training resolution the preset needs
    masks/000000.png       the person's soft mask in every frame, canvas pixels (8-bit)
    plate.png              the background without the person, canvas pixels

The masks and the plate (the "background" of the manifest, with whether the camera is
static) are derived from the same frames, so adding them to a run prepared without them
changes nothing else: they are not part of the fingerprint.

Training reads it (training/data), and so do transfer's nearest-neighbour baseline and the
evaluation: all through `PreparedRun`, so the layout has one description.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from ..errors import InputError
from ..labels import LabelStyle
from ..paths import atomic_write_json
from ..pose.track import PoseTrack
from ..video.images import read_image
from .letterbox import Letterbox

PREPARED_KIND = "everybody-dance-prepared-target"
PREPARED_FORMAT = 1
PREPARED_DIR = "prepared"
MANIFEST = "manifest.json"
TRACK_FILE = "source_track.npz"
FACE_CENTERS_FILE = "face_centers.npy"
NORMALIZATION_FILE = "normalization.json"
FRAMES_DIR = "frames"
LABELS_DIR = "labels"
MASKS_DIR = "masks"
PLATE_FILE = "plate.png"
LABELS_DONE = ".complete"  # in a labels/WxH folder once every label is drawn


@dataclass
class PreparedManifest:
    """``prepared/manifest.json``. Frame ranges are indices into the prepared frames."""

    fingerprint: str  # of everything the preparation was made from (see training's prepare)
    source: dict[str, Any]  # the video: {"path", "identity"} (older runs: "bytes", "mtime_ns")
    source_size: tuple[int, int]  # the video's (width, height)
    fps: float
    start: int  # first video frame used
    stop: int  # the video frame after the last one used
    canvas: tuple[int, int]  # where frames are stored: the largest training resolution
    letterbox: Letterbox  # the video frame inside the canvas
    train: tuple[int, int]  # [first, stop) of the training split
    eval: tuple[int, int]  # [first, stop) of the held-out split (the end of the video)
    holdout: float
    frame_format: str  # "jpg" or "png"
    label_style: dict[str, Any]
    detector: dict[str, Any] = field(default_factory=dict)
    preset: str | None = None
    complete: bool = False
    # The plate's record (training/data/plate.py: "static", "verdict", measurements); None
    # until the masks and the plate are made.
    background: dict[str, Any] | None = None

    @property
    def n_frames(self) -> int:
        return self.stop - self.start

    @property
    def video(self) -> Path:
        return Path(self.source["path"])

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": PREPARED_KIND, "format_version": PREPARED_FORMAT,
            "fingerprint": self.fingerprint, "complete": self.complete, "source": self.source,
            "source_size": list(self.source_size), "fps": self.fps, "start": self.start,
            "stop": self.stop, "n_frames": self.n_frames, "canvas": list(self.canvas),
            "letterbox": self.letterbox.to_dict(),
            "split": {"train": list(self.train), "eval": list(self.eval),
                      "holdout": self.holdout},
            "frame_format": self.frame_format, "label_style": self.label_style,
            "detector": self.detector, "preset": self.preset, "background": self.background,
        }

    @staticmethod
    def from_dict(data: dict[str, Any]) -> "PreparedManifest":
        """Parse a manifest (KeyError/TypeError/ValueError when malformed)."""
        split = data["split"]
        manifest = PreparedManifest(
            fingerprint=str(data["fingerprint"]), source=dict(data["source"]),
            source_size=_pair(data["source_size"], int), fps=float(data["fps"]),
            start=int(data["start"]), stop=int(data["stop"]),
            canvas=_pair(data["canvas"], int), letterbox=Letterbox.from_dict(data["letterbox"]),
            train=_pair(split["train"], int), eval=_pair(split["eval"], int),
            holdout=float(split["holdout"]), frame_format=str(data["frame_format"]),
            label_style=dict(data["label_style"]), detector=dict(data.get("detector") or {}),
            preset=data.get("preset"), complete=bool(data.get("complete")),
            background=data.get("background"))
        if int(data.get("n_frames", manifest.n_frames)) != manifest.n_frames:
            raise ValueError("n_frames disagrees with start and stop")
        if not 0 <= manifest.train[0] < manifest.train[1] <= manifest.n_frames:
            raise ValueError(f"the training split {list(manifest.train)} is not inside the "
                             f"{manifest.n_frames} frames")
        return manifest


def _pair(values: Any, kind: type) -> tuple:
    if not isinstance(values, (list, tuple)) or len(values) != 2:
        raise ValueError(f"expected two values, got {values!r}")
    return (kind(values[0]), kind(values[1]))


def read_manifest_file(folder: Path) -> dict[str, Any] | None:
    """The raw manifest of a prepared folder, or None when absent or unreadable."""
    try:
        data = json.loads((folder / MANIFEST).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


@dataclass
class PreparedRun:
    """A prepared target's files (see the module docstring)."""

    folder: Path  # RUN_DIR/prepared
    manifest: PreparedManifest

    @staticmethod
    def folder_of(run_dir: str | Path) -> Path:
        return Path(run_dir) / PREPARED_DIR

    @staticmethod
    def open(run_dir: str | Path) -> "PreparedRun":
        """The finished preparation of ``run_dir`` (InputError naming the file when unusable)."""
        folder = PreparedRun.folder_of(run_dir)
        path = folder / MANIFEST
        if not path.is_file():
            raise InputError(run_dir, "has no prepared data (prepared/manifest.json); run "
                                      "`python -m training prepare TARGET_VIDEO -o RUN_DIR` first")
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(path, f"unreadable prepared-target manifest ({exc})") from exc
        if not isinstance(data, dict) or data.get("kind") != PREPARED_KIND \
                or data.get("format_version") != PREPARED_FORMAT:
            raise InputError(path, f"not a prepared target of format {PREPARED_FORMAT}; prepare "
                                   f"the target video again with this version")
        if not data.get("complete"):
            raise InputError(path, "the target's preparation did not finish; run `prepare` again")
        try:
            manifest = PreparedManifest.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            raise InputError(path, f"damaged prepared-target manifest ({exc})") from exc
        return PreparedRun(folder, manifest)

    # -- facts ---------------------------------------------------------------------------

    @property
    def n_frames(self) -> int:
        return self.manifest.n_frames

    @property
    def canvas(self) -> tuple[int, int]:
        return self.manifest.canvas

    @property
    def fps(self) -> float:
        return self.manifest.fps

    @property
    def train_range(self) -> tuple[int, int]:
        return self.manifest.train

    @property
    def eval_range(self) -> tuple[int, int]:
        return self.manifest.eval

    @property
    def letterbox(self) -> Letterbox:
        return self.manifest.letterbox

    def letterbox_at(self, size: tuple[int, int]) -> Letterbox:
        """How the target's frame sits in a canvas of ``size`` (a training stage's, or the
        bundle's resolution), as the labels at that size are drawn."""
        return Letterbox.fit_into(self.manifest.source_size, size, self.letterbox.fit)

    @property
    def fingerprint(self) -> str:
        return self.manifest.fingerprint

    def style(self) -> LabelStyle:
        return LabelStyle.from_dict(self.manifest.label_style)

    # -- files ---------------------------------------------------------------------------

    def frame_path(self, index: int) -> Path:
        return self.folder / FRAMES_DIR / f"{index:06d}.{self.manifest.frame_format}"

    def label_dir(self, size: tuple[int, int]) -> Path:
        return self.folder / LABELS_DIR / f"{size[0]}x{size[1]}"

    def label_path(self, index: int, size: tuple[int, int]) -> Path:
        return self.label_dir(size) / f"{index:06d}.png"

    def has_labels(self, size: tuple[int, int]) -> bool:
        return (self.label_dir(size) / LABELS_DONE).is_file()

    def mask_path(self, index: int) -> Path:
        return self.folder / MASKS_DIR / f"{index:06d}.png"

    @property
    def plate_path(self) -> Path:
        return self.folder / PLATE_FILE

    def mask(self, index: int) -> np.ndarray:
        """The person's mask in prepared frame ``index``: float32 H x W in [0, 1]."""
        path = self.mask_path(index)
        image = cv2.imread(str(path), cv2.IMREAD_GRAYSCALE) if path.is_file() else None
        if image is None:
            raise InputError(path, "prepared mask missing or unreadable; run `prepare` again")
        return image.astype(np.float32) / 255.0

    def plate(self) -> np.ndarray:
        """The background plate (the canvas, RGB uint8)."""
        if not self.plate_path.is_file():
            raise InputError(self.plate_path, "no background plate was prepared; run "
                                              "`prepare` again")
        return read_image(self.plate_path)

    def frame(self, index: int) -> np.ndarray:
        """Prepared frame ``index`` (the canvas, RGB uint8)."""
        path = self.frame_path(index)
        if not path.is_file():
            raise InputError(path, "prepared target frame missing; run `prepare` again")
        return read_image(path)

    def track(self) -> PoseTrack:
        """The target's pose track in video pixels (prepared frame i = entry i)."""
        track = PoseTrack.load(self.folder / TRACK_FILE)
        if len(track) != self.n_frames:
            raise InputError(self.folder / TRACK_FILE, f"has {len(track)} frames but the "
                             f"preparation {self.n_frames}; run `prepare` again")
        return track

    def face_centers(self) -> np.ndarray:
        """(T, 2) face-box centres in canvas pixels."""
        return np.load(self.folder / FACE_CENTERS_FILE, allow_pickle=False)

    def normalization(self) -> dict[str, Any]:
        path = self.folder / NORMALIZATION_FILE
        try:
            return json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise InputError(path, f"unreadable normalization statistics ({exc})") from exc

    # -- writing (training's prepare) ----------------------------------------------------

    def write_manifest(self) -> None:
        atomic_write_json(self.folder / MANIFEST, self.manifest.to_dict())

    def write_track(self, track: PoseTrack, face_centers: np.ndarray,
                    normalization: dict[str, Any]) -> None:
        """The pose track, its face centres (canvas pixels) and normalization statistics."""
        track.save(self.folder / TRACK_FILE)
        np.save(self.folder / FACE_CENTERS_FILE, face_centers, allow_pickle=False)
        atomic_write_json(self.folder / NORMALIZATION_FILE, normalization)
