"""What the pose preview draws the stick figure over: the target's background, at the canvas size.

A model bundle may carry two pictures of its target, both at the bundle's resolution (the
training canvas, letterbox bars included, exactly as training saw its frames):

* ``plate.png``: the target's clean background (no person), where training made one;
* ``target_frame.png``: one frame of the target's training video, written at export.

`preview_background` picks the best of them; a bundle with neither gets a neutral grey.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from ..models.bundle import PLATE_FILE
from ..paths import atomic_write_bytes
from ..target.letterbox import resize
from ..video.images import read_image

TARGET_FRAME_FILE = "target_frame.png"
NEUTRAL_GREY = (128, 128, 128)


@dataclass(frozen=True)
class PreviewBackground:
    """A canvas-sized RGB picture and what it is ("plate", "target frame" or "grey")."""

    image: np.ndarray
    kind: str


def preview_background(bundle: Path, resolution: tuple[int, int]) -> PreviewBackground:
    """The picture the preview draws poses over, at ``resolution`` (width, height).

    The bundle's ``plate.png`` (its target's clean background) when it has one, else its
    ``target_frame.png`` (a frame of the target's training video), else a neutral grey
    canvas. A picture of another size is resized to ``resolution``; an unreadable one is an
    `InputError` naming the file (a damaged bundle should be noticed, not papered over).
    """
    for name, kind in ((PLATE_FILE, "plate"), (TARGET_FRAME_FILE, "target frame")):
        path = Path(bundle) / name
        if path.is_file():
            return PreviewBackground(resize(read_image(path), resolution), kind)
    width, height = resolution
    return PreviewBackground(np.full((height, width, 3), NEUTRAL_GREY, np.uint8), "grey")


def write_target_frame(bundle: Path, canvas_frame: np.ndarray, resolution: tuple[int, int]) -> Path:
    """Save ``canvas_frame`` (a target frame already fitted into the training canvas, RGB) as
    the bundle's ``target_frame.png`` at ``resolution``; returns its path."""
    ok, encoded = cv2.imencode(".png", cv2.cvtColor(resize(canvas_frame, resolution),
                                                    cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError("OpenCV could not encode the target frame as PNG")
    path = Path(bundle) / TARGET_FRAME_FILE
    atomic_write_bytes(path, encoded.tobytes())
    return path
