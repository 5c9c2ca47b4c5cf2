"""What a transfer writes per frame: the PNG, the result video, the side-by-side video.

The videos are encoded while frames are made (no second pass over the PNGs), each written
under a temporary name and renamed into place only when complete (see `Mp4Writer`). A
resumed job feeds the frames already on disk to the encoders first, so the videos always
hold every frame of the range.
"""

from __future__ import annotations

from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import cv2
import numpy as np

from ..side_by_side import fit_height, panel_width
from ..video import Mp4Writer, PngSequenceWriter

SIDE_BY_SIDE_MIN_HEIGHT = 256  # panels of tiny models are scaled up to stay readable
NO_DANCER = "no dancer"  # the side-by-side's label panel on frames without one


@dataclass
class OutputFrame:
    """One finished frame and what the side-by-side video shows next to it."""

    index: int  # 0-based within the range
    picture: np.ndarray  # the frame's PNG: RGB, or RGBA (a transparent background)
    shown: np.ndarray  # what the videos show, RGB uint8 (the picture itself when it is RGB)
    new: bool  # True: write its PNG (False: it is already on disk)
    label: np.ndarray | None = None  # the label, cut like the result
    source: np.ndarray | None = None  # the source frame
    layer: np.ndarray | None = None  # the person layer (RGBA) to keep beside the picture
    absent: bool = False  # no dancer in the source frame: the side-by-side says so


@dataclass(frozen=True)
class VideoSettings:
    fps: float | Fraction
    frame_size: tuple[int, int]  # (w, h) of the result frames
    source_size: tuple[int, int]
    audio_from: Path | None  # the source, when it has sound
    audio_start_s: float


class Outputs:
    """``with Outputs(...) as out: out.write(frame)`` for every frame of the range, in order."""

    def __init__(self, pngs: PngSequenceWriter, video: Path, settings: VideoSettings,
                 side_by_side: Path | None = None, layers: PngSequenceWriter | None = None) -> None:
        self.pngs = pngs
        self.layers = layers
        self.settings = settings
        audio = dict(audio_from=settings.audio_from, audio_start_s=settings.audio_start_s)
        self.video = Mp4Writer(video, settings.fps, settings.frame_size, **audio)
        self.side: Mp4Writer | None = None
        try:
            if side_by_side is not None:
                self.panel_height = max(settings.frame_size[1], SIDE_BY_SIDE_MIN_HEIGHT)
                self.side = Mp4Writer(side_by_side, settings.fps, self.side_by_side_size(), **audio)
        except BaseException:
            self.video.__exit__(RuntimeError, None, None)
            raise

    def side_by_side_size(self) -> tuple[int, int]:
        h = self.panel_height
        return (panel_width(self.settings.source_size, h)
                + 2 * panel_width(self.settings.frame_size, h), h)

    def write(self, out: OutputFrame) -> None:
        if out.new:
            if self.pngs.next_number != self.pngs.start_number + out.index:
                raise RuntimeError(f"frame {out.index + 1} out of order: the next PNG is "
                                   f"{self.pngs.next_number}")
            if self.layers is not None:
                if out.layer is None:
                    raise ValueError("this job keeps every frame's person layer")
                self.layers.write(out.layer)
            self.pngs.write(out.picture)
        self.video.write(out.shown)
        if self.side is not None:
            if out.label is None or out.source is None:
                raise ValueError("the side-by-side video needs the label and source frames")
            self.side.write(self.side_by_side(out))

    def side_by_side(self, out: OutputFrame) -> np.ndarray:
        """source | label | result, all at one height (labels and results only ever grow)."""
        h = self.panel_height
        size = (panel_width(self.settings.frame_size, h), h)
        label = cv2.resize(out.label, size, interpolation=cv2.INTER_LINEAR)
        if out.absent:
            label = no_dancer_panel(label)
        return np.hstack([fit_height(out.source, h), label,
                          cv2.resize(out.shown, size, interpolation=cv2.INTER_LINEAR)])

    def __enter__(self) -> "Outputs":
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        """Finish both videos, or on an exception discard both (no partial file appears)."""
        try:
            self.video.__exit__(exc_type, exc, tb)
        finally:
            if self.side is not None:
                self.side.__exit__(exc_type, exc, tb)


def no_dancer_panel(label: np.ndarray) -> np.ndarray:
    """The label panel of a frame without a dancer: its background (the held pose it would
    show is nobody's) and "no dancer" across the middle, in grey."""
    panel = np.empty_like(label)
    panel[:] = label[0, 0]
    h, w = panel.shape[:2]
    scale = w / 320
    (tw, th), _ = cv2.getTextSize(NO_DANCER, cv2.FONT_HERSHEY_SIMPLEX, scale, 2)
    cv2.putText(panel, NO_DANCER, ((w - tw) // 2, (h + th) // 2), cv2.FONT_HERSHEY_SIMPLEX,
                scale, (128, 128, 128), max(1, round(2 * scale)), cv2.LINE_AA)
    return panel
