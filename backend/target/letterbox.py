"""How the target's video frame sits in the model's canvas.

The model draws frames of its training resolution (the *canvas*: 512x256 or 1024x512 in the
paper). A target video of any aspect is scaled to fit inside the canvas and centred, the rest
padded (black for frames; labels have their own white background). The keypoint mapping is
exactly ``backend.labels.frame_mapping`` (the label renderer's ``fit="letterbox"``, or
``"stretch"`` when the label style asks for it), so a label drawn with
``render_label(pose, video_size, canvas, style)`` - in training and in transfer alike - lines
up with the frame placed here. Frames land on whole pixels (the scaled image is pasted at the
rounded offset ``paste``): at most half a pixel from the exact mapping.

What transfer's result frames are (a decision for editors): the part of the canvas that holds
the target's frame (``content``), cut out at the canvas' own pixel scale. The bars the model
learnt to paint are no picture, and scaling up would only blur, so a 1280x720 target trained
at 512x256 gives 455x256 frames: the target video's shape, ready to overlay or replace the
source strip. When the target's aspect is the canvas' (or the style stretches), the frames
are the whole canvas.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from ..labels import frame_mapping
from .face import face_box


@dataclass(frozen=True)
class Letterbox:
    """``x_canvas = x * sx + ox`` (and y), from ``source`` (w, h) pixels to ``canvas``."""

    source: tuple[int, int]
    canvas: tuple[int, int]
    sx: float
    sy: float
    ox: float
    oy: float
    fit: str = "letterbox"

    @staticmethod
    def fit_into(source: tuple[int, int], canvas: tuple[int, int],
                 fit: str = "letterbox") -> "Letterbox":
        """The label renderer's mapping of ``source`` into ``canvas``."""
        source = (int(source[0]), int(source[1]))
        canvas = (int(canvas[0]), int(canvas[1]))
        m = frame_mapping(source, canvas, fit)
        return Letterbox(source, canvas, float(m.sx), float(m.sy), float(m.ox), float(m.oy), fit)

    @property
    def content(self) -> tuple[int, int]:
        """(width, height) in canvas pixels of the scaled frame."""
        return (min(self.canvas[0], max(1, round(self.source[0] * self.sx))),
                min(self.canvas[1], max(1, round(self.source[1] * self.sy))))

    @property
    def paste(self) -> tuple[int, int]:
        """Where the scaled frame's top-left pixel goes on the canvas."""
        return (min(round(self.ox), self.canvas[0] - self.content[0]),
                min(round(self.oy), self.canvas[1] - self.content[1]))

    @property
    def is_full(self) -> bool:
        """Whether the frame covers the whole canvas (no bars)."""
        return self.content == self.canvas

    def to_dict(self) -> dict:
        return {"source": list(self.source), "canvas": list(self.canvas), "sx": self.sx,
                "sy": self.sy, "ox": self.ox, "oy": self.oy, "fit": self.fit,
                "content": list(self.content), "paste": list(self.paste)}

    @staticmethod
    def from_dict(data: dict) -> "Letterbox":
        """Inverse of ``to_dict`` (``content`` and ``paste`` are derived, so not read)."""
        return Letterbox((int(data["source"][0]), int(data["source"][1])),
                         (int(data["canvas"][0]), int(data["canvas"][1])), float(data["sx"]),
                         float(data["sy"]), float(data["ox"]), float(data["oy"]),
                         str(data.get("fit", "letterbox")))

    # -- images ------------------------------------------------------------------------------

    def apply(self, image: np.ndarray, pad_value: int | tuple[int, int, int] = 0) -> np.ndarray:
        """``image`` (source size, HxWxC uint8) scaled and padded onto the canvas."""
        h, w = image.shape[:2]
        if (w, h) != self.source:
            raise ValueError(f"letterbox expects {self.source[0]}x{self.source[1]} images, "
                             f"got {w}x{h}")
        content = self.content
        interp = cv2.INTER_AREA if content[0] < w else cv2.INTER_LINEAR  # no aliasing
        scaled = cv2.resize(image, content, interpolation=interp)
        if scaled.ndim < image.ndim:  # cv2 drops a single channel axis
            scaled = scaled[..., None]
        canvas = np.empty((self.canvas[1], self.canvas[0], *image.shape[2:]), image.dtype)
        canvas[...] = pad_value
        x, y = self.paste
        canvas[y:y + content[1], x:x + content[0]] = scaled
        return canvas

    def crop(self, canvas: np.ndarray) -> np.ndarray:
        """The target-frame part of a canvas-sized image (a view, no resampling)."""
        (x, y), (w, h) = self.paste, self.content
        return canvas[y:y + h, x:x + w]

    def pad(self, content: np.ndarray) -> np.ndarray:
        """A canvas image with ``content`` in place and black bars, as training frames are."""
        if self.is_full:
            return content
        (x, y), (w, h) = self.paste, self.content
        if content.shape[:2] != (h, w):
            raise ValueError(f"expected a {w}x{h} frame, got {content.shape[1]}x{content.shape[0]}")
        canvas = np.zeros((self.canvas[1], self.canvas[0], *content.shape[2:]), content.dtype)
        canvas[y:y + h, x:x + w] = content
        return canvas

    # -- keypoints ---------------------------------------------------------------------------

    def apply_points(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) keypoints (x, y, confidence) in source pixels -> canvas pixels; missing
        points (confidence 0) stay at (0, 0), the OpenPose convention."""
        out = np.array(points, dtype=np.float32, copy=True)
        found = out[..., 2] > 0
        out[..., 0] = np.where(found, out[..., 0] * self.sx + self.ox, 0.0)
        out[..., 1] = np.where(found, out[..., 1] * self.sy + self.oy, 0.0)
        return out

    def content_points(self, points: np.ndarray) -> np.ndarray:
        """(..., 3) keypoints in source pixels -> pixels of the cut-out frame (``crop``);
        missing points stay at (0, 0)."""
        out = self.apply_points(points)
        found = out[..., 2] > 0
        px, py = self.paste
        out[..., 0] = np.where(found, out[..., 0] - px, 0.0)
        out[..., 1] = np.where(found, out[..., 1] - py, 0.0)
        return out

    def face_boxes(self, centers: np.ndarray, multiple: int) -> np.ndarray:
        """(T, 4) face boxes in the canvas for (T, 2) face centres in source pixels."""
        xy = np.asarray(centers, np.float64).reshape(-1, 2)
        xy = xy * (self.sx, self.sy) + (self.ox, self.oy)
        return np.array([face_box((x, y), self.canvas, multiple=multiple) for x, y in xy],
                        dtype=np.int64).reshape(-1, 4)


def resize(image: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``image`` resized to (width, height); the same array when it already has that size."""
    h, w = image.shape[:2]
    if (w, h) == tuple(size):
        return image
    interp = cv2.INTER_AREA if size[0] < w else cv2.INTER_LINEAR
    return cv2.resize(image, tuple(size), interpolation=interp)
