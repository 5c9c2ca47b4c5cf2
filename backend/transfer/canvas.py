"""The training canvas: where the target's frame sits in it, and where the face box goes.

The model draws frames of the bundle's training resolution (the *canvas*, 512x256 or
1024x512 in the paper). Training fitted the target video into that canvas the way the label
renderer maps keypoints (``backend.labels.frame_mapping``; letterboxed and centred for an
aspect that is not the canvas', black bars around it), so transfer draws labels the same
way: ``render_label(pose, target_size, canvas, style)`` with the source's poses normalized
into the target's video pixels.

What the result frames are (a decision for editors): the part of the canvas that holds the
target's frame, cut out at the canvas' own pixel scale. The bars the model learnt to paint
are no picture, and scaling up would only blur, so a 1280x720 target trained at 512x256
gives 455x256 frames: the target video's shape, which is what the model draws, ready to
overlay or replace the source strip (Blender fits a strip to the scene either way). When
the target's aspect is the canvas' (or the label style stretches), the frames are the
whole canvas.

Where pixels land is exactly as training's letterbox (training/data/letterbox.py): the scaled
frame covers ``content`` pixels pasted at the rounded offset ``paste``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..labels import frame_mapping
from ..models.networks import Box, face_box
from ..pose.layout import BODY
from ..pose.track import PoseTrack

NOSE, NECK, MID_HIP = BODY["Nose"], BODY["Neck"], BODY["MidHip"]


@dataclass(frozen=True)
class CanvasLayout:
    """The target's frame (``target_size``) inside the canvas (``canvas_size``), (w, h) both."""

    target_size: tuple[int, int]
    canvas_size: tuple[int, int]
    fit: str = "letterbox"

    @property
    def mapping(self):
        return frame_mapping(self.target_size, self.canvas_size, self.fit)

    @property
    def content(self) -> tuple[int, int]:
        """(width, height) of the target's frame in canvas pixels (as training's Letterbox)."""
        m, (cw, ch) = self.mapping, self.canvas_size
        return (min(cw, max(1, round(self.target_size[0] * m.sx))),
                min(ch, max(1, round(self.target_size[1] * m.sy))))

    @property
    def paste(self) -> tuple[int, int]:
        """Canvas pixel of the content's top-left corner (as training's Letterbox)."""
        m, (cw, ch), (w, h) = self.mapping, self.canvas_size, self.content
        return (min(round(m.ox), cw - w), min(round(m.oy), ch - h))

    @property
    def is_full(self) -> bool:
        return self.content == tuple(self.canvas_size)

    def crop(self, canvas: np.ndarray) -> np.ndarray:
        """The target-frame part of a canvas image (a view, no resampling)."""
        (x, y), (w, h) = self.paste, self.content
        return canvas[y:y + h, x:x + w]

    def pad(self, content: np.ndarray) -> np.ndarray:
        """A canvas image with ``content`` in place and black bars, as training frames are."""
        if self.is_full:
            return content
        (x, y), (w, h) = self.paste, self.content
        if content.shape[:2] != (h, w):
            raise ValueError(f"expected a {w}x{h} frame, got {content.shape[1]}x{content.shape[0]}")
        canvas = np.zeros((self.canvas_size[1], self.canvas_size[0], 3), np.uint8)
        canvas[y:y + h, x:x + w] = content
        return canvas

    def face_boxes(self, centers: np.ndarray, multiple: int) -> np.ndarray:
        """(T, 4) face boxes in the canvas for (T, 2) face centres in target pixels."""
        xy = self.mapping.apply(np.asarray(centers, np.float64))
        return np.array([face_box((x, y), self.canvas_size, multiple=multiple) for x, y in xy],
                        dtype=np.int64).reshape(-1, 4)


def face_centers(track: PoseTrack) -> np.ndarray:
    """(T, 2) face-box centres per frame, the rule training uses for its boxes.

    The nose; else the mean of the face points; else a third of the neck-to-hip distance
    above the neck (about one head height). Frames with none of these take the nearest
    frame that has one; a track with none at all uses the top middle of the frame.
    """
    t = len(track)
    centers = np.full((t, 2), np.nan, np.float64)
    body, face = track.body, track.face
    nose = body[:, NOSE, 2] > 0
    face_seen = (face[..., 2] > 0).any(axis=1)
    neck = body[:, NECK, 2] > 0
    for i in range(t):
        if nose[i]:
            centers[i] = body[i, NOSE, :2]
        elif face_seen[i]:
            centers[i] = face[i, face[i, :, 2] > 0, :2].mean(axis=0)
        elif neck[i]:
            hip = (body[i, MID_HIP, :2] if body[i, MID_HIP, 2] > 0
                   else body[i, NECK, :2] + [0.0, track.size[1] / 4])
            centers[i] = body[i, NECK, :2] - (hip - body[i, NECK, :2]) / 3
    known = np.flatnonzero(~np.isnan(centers[:, 0]))
    if len(known) == 0:
        centers[:] = (track.size[0] / 2, track.size[1] / 4)
        return centers
    frames = np.arange(t)
    after = known[np.clip(np.searchsorted(known, frames), 0, len(known) - 1)]
    before = known[np.clip(np.searchsorted(known, frames) - 1, 0, len(known) - 1)]
    nearest = np.where(np.abs(before - frames) <= np.abs(after - frames), before, after)
    return centers[nearest]


def box_of(boxes: np.ndarray, i: int) -> Box:
    x0, y0, x1, y1 = (int(v) for v in boxes[i])
    return (x0, y0, x1, y1)
