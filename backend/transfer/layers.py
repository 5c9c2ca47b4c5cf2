"""What a job puts behind the person, and the person layer it composites.

A generator with a matte paints the person alone: a colour and an alpha (`Layer`). Where
the job's frames show it (``TransferJob.background``):

    "target"       over the target's own background plate (the default; the whole frame
                   of a generator without a matte)
    "transparent"  nothing: the frames are RGBA PNGs, the person alone, for compositing
    IMAGE or VIDEO over a still image or a moving background (looped when shorter than the
                   job), letterboxed to the output frame

The videos (result.mp4, the side-by-side) show the person over the plate for
"transparent", else the frames themselves. The generator's previous-frame input is always
the layer over the plate, rounded to 8 bits: what it was trained on, whatever is shown.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..models.images import over
from ..pose.cache import video_identity
from ..target.letterbox import Letterbox
from ..video import probe, read_frames
from ..video.images import IMAGE_EXTENSIONS, read_image

TARGET, TRANSPARENT = "target", "transparent"


@dataclass
class Layer:
    """The person as drawn: colour (H x W x 3 uint8) and alpha (H x W uint8; None for a
    whole frame, which is opaque everywhere)."""

    color: np.ndarray
    alpha: np.ndarray | None = None

    def over(self, background: np.ndarray) -> np.ndarray:
        return over(self.color, self.alpha, background)

    def rgba(self) -> np.ndarray:
        alpha = np.full(self.color.shape[:2], 255, np.uint8) if self.alpha is None else self.alpha
        return np.dstack([self.color, alpha])

    @staticmethod
    def from_rgba(image: np.ndarray) -> "Layer":
        return Layer(np.ascontiguousarray(image[..., :3]), np.ascontiguousarray(image[..., 3]))


@dataclass(frozen=True)
class BackgroundChoice:
    """``kind`` "target", "transparent" or "media" (a still image or a video at ``path``)."""

    kind: str = TARGET
    path: Path | None = None

    @staticmethod
    def parse(text: str | Path | None) -> "BackgroundChoice":
        """From the command line's or the protocol's word: target, transparent or a path.
        A path must be a readable image or video (InputError naming it, before any work)."""
        if text is None or str(text) == TARGET:
            return BackgroundChoice()
        if str(text) == TRANSPARENT:
            return BackgroundChoice(TRANSPARENT)
        path = Path(text)
        if not path.exists():
            raise InputError(path, "background image or video not found (or say target or "
                                   "transparent)")
        if path.is_file() and path.suffix.lower() in IMAGE_EXTENSIONS:
            read_image(path)  # unreadable -> InputError naming it
        else:
            probe(path)  # not a video -> InputError naming it
        return BackgroundChoice("media", path)

    @property
    def needs_matte(self) -> bool:
        return self.kind != TARGET

    def identity(self) -> str | dict | None:
        """What the job's identity records (None for the default: older jobs had none)."""
        if self.kind == TARGET:
            return None
        if self.kind == TRANSPARENT:
            return TRANSPARENT
        assert self.path is not None
        return {"media": self.path.name, "content": video_identity(self.path)}

    def to_text(self) -> str:
        return self.kind if self.path is None else str(self.path)

    def frames(self, size: tuple[int, int], count: int) -> Iterator[np.ndarray]:
        """``count`` background frames letterboxed to ``size`` (the media's, looped)."""
        assert self.kind == "media" and self.path is not None
        if self.path.is_file() and self.path.suffix.lower() in IMAGE_EXTENSIONS:
            still = read_image(self.path)
            fitted = Letterbox.fit_into((still.shape[1], still.shape[0]), size).apply(still)
            return itertools.repeat(fitted, count)
        info = probe(self.path)
        box = Letterbox.fit_into(info.size, size)

        def looped() -> Iterator[np.ndarray]:
            made = 0
            while made < count:
                for frame in read_frames(self.path, 0, min(info.frame_count, count - made)):
                    yield box.apply(frame)
                    made += 1
        return looped()
