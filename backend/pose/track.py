"""The pose track: every keypoint of one subject in every frame of one video.

Layouts follow OpenPose so that OpenPose JSON can be imported and the paper's labels
reproduced: ``body`` is BODY_25, ``face`` is the 70-point face (68 + 2 pupils),
``hands`` is (left, right) x 21 points. Each point is ``(x, y, confidence)`` in pixels
of the video frame; a point that was not found has confidence 0 (and x = y = 0, as in
OpenPose). ``detected[t]`` says whether the detector found the subject in frame ``t``:
gap filling fills keypoints but leaves that flag as it was, so gaps stay visible.

On disk a track is an ``.npz`` of plain arrays (no pickled objects):
``body`` (T,25,3), ``face`` (T,70,3), ``hands`` (T,2,21,3), ``detected`` (T,),
``fps`` (), ``size`` (2,) as (width, height), ``detector`` (a JSON string) and
``format_version`` ().
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from ..checks import FPS, Size
from ..errors import FormatVersionError, InputError
from ..paths import atomic_write_bytes

TRACK_FORMAT_VERSION = 1
N_BODY, N_FACE, N_HAND = 25, 70, 21


@dataclass
class FramePose:
    """The keypoints of one frame (views into a track or standalone arrays)."""

    body: np.ndarray  # (25, 3)
    face: np.ndarray  # (70, 3)
    hands: np.ndarray  # (2, 21, 3): left, right

    @staticmethod
    def empty() -> "FramePose":
        return FramePose(
            np.zeros((N_BODY, 3), np.float32),
            np.zeros((N_FACE, 3), np.float32),
            np.zeros((2, N_HAND, 3), np.float32),
        )

    def copy(self) -> "FramePose":
        return FramePose(self.body.copy(), self.face.copy(), self.hands.copy())


@dataclass
class PoseTrack:
    body: np.ndarray  # (T, 25, 3) float32
    face: np.ndarray  # (T, 70, 3) float32
    hands: np.ndarray  # (T, 2, 21, 3) float32
    detected: np.ndarray  # (T,) bool
    fps: float
    size: tuple[int, int]  # (width, height) of the frames the pixels refer to
    detector: dict[str, Any] = field(default_factory=dict)  # who made it, with settings

    def __post_init__(self) -> None:
        t = len(self.detected)
        shapes = {
            "body": (t, N_BODY, 3),
            "face": (t, N_FACE, 3),
            "hands": (t, 2, N_HAND, 3),
        }
        for name, shape in shapes.items():
            arr = getattr(self, name)
            if arr.shape != shape:
                raise ValueError(f"pose track {name} has shape {arr.shape}, expected {shape}")
            setattr(self, name, np.ascontiguousarray(arr, dtype=np.float32))
        self.detected = np.asarray(self.detected, dtype=bool)
        self.size = (int(self.size[0]), int(self.size[1]))
        self.fps = float(self.fps)

    def __len__(self) -> int:
        return len(self.detected)

    @staticmethod
    def empty(n_frames: int, fps: float, size: tuple[int, int], detector: dict | None = None) -> "PoseTrack":
        return PoseTrack(
            np.zeros((n_frames, N_BODY, 3), np.float32),
            np.zeros((n_frames, N_FACE, 3), np.float32),
            np.zeros((n_frames, 2, N_HAND, 3), np.float32),
            np.zeros(n_frames, bool),
            fps,
            size,
            dict(detector or {}),
        )

    def frame(self, i: int) -> FramePose:
        return FramePose(self.body[i], self.face[i], self.hands[i])

    def set_frame(self, i: int, pose: FramePose) -> None:
        self.body[i] = pose.body
        self.face[i] = pose.face
        self.hands[i] = pose.hands

    def copy(self, **changes: Any) -> "PoseTrack":
        """A deep copy, with any fields replaced by ``changes``."""
        base = replace(
            self,
            body=self.body.copy(),
            face=self.face.copy(),
            hands=self.hands.copy(),
            detected=self.detected.copy(),
            detector=dict(self.detector),
        )
        return replace(base, **changes) if changes else base

    def slice(self, start: int, stop: int) -> "PoseTrack":
        return PoseTrack(self.body[start:stop].copy(), self.face[start:stop].copy(),
                         self.hands[start:stop].copy(), self.detected[start:stop].copy(),
                         self.fps, self.size, dict(self.detector))

    def detection_rate(self) -> float:
        return float(self.detected.mean()) if len(self) else 0.0

    # -- disk format ---------------------------------------------------------------

    def to_bytes(self) -> bytes:
        buf = io.BytesIO()
        np.savez_compressed(
            buf,
            body=self.body,
            face=self.face,
            hands=self.hands,
            detected=self.detected,
            fps=np.float64(self.fps),
            size=np.asarray(self.size, np.int64),
            detector=np.asarray(json.dumps(self.detector, sort_keys=True)),
            format_version=np.int64(TRACK_FORMAT_VERSION),
        )
        return buf.getvalue()

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        atomic_write_bytes(path, self.to_bytes())
        return path

    @staticmethod
    def load(path: str | Path) -> "PoseTrack":
        path = Path(path)
        if not path.is_file():
            raise InputError(path, "pose track file not found")
        try:
            with np.load(path, allow_pickle=False) as data:
                version = int(data["format_version"]) if "format_version" in data else None
                if version != TRACK_FORMAT_VERSION:
                    raise FormatVersionError(
                        path, f"pose track format version {version}, this program reads "
                              f"version {TRACK_FORMAT_VERSION}; run `poses` again to remake it")
                track = PoseTrack(
                    body=data["body"], face=data["face"], hands=data["hands"],
                    detected=data["detected"], fps=float(data["fps"]),
                    size=tuple(int(v) for v in data["size"]),
                    detector=json.loads(str(data["detector"])),
                )
        except (InputError, FormatVersionError):
            raise
        except Exception as exc:  # zipfile, KeyError, ValueError: all mean "not a track"
            raise InputError(path, f"not a readable pose track ({exc})") from exc
        if not all(np.isfinite(a).all() for a in (track.body, track.face, track.hands)):
            raise InputError(path, "holds keypoints that are not finite numbers: not a pose "
                                   "track this program wrote; make it again with `poses`")
        if not FPS.accepts(track.fps) or not Size().accepts(track.size):
            raise InputError(path, f"has a frame rate of {track.fps:g} fps and frames of "
                                   f"{track.size[0]}x{track.size[1]}: frame rates must be "
                                   f"{FPS.allowed()}, sizes {Size().allowed()}")
        return track


NO_PERSON = "no person was detected in any frame"


def has_person(track: PoseTrack) -> bool:
    return bool(track.detected.any())


def require_person(track: PoseTrack, path: str | Path, why: str) -> None:
    """Refuse a track in which nobody was ever detected (its poses are all zero): ``why``
    says what needed a person."""
    if not has_person(track):
        raise InputError(path, f"{NO_PERSON}: {why}")
