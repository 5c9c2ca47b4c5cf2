"""Where the face GAN looks: the face-box centre of every pose, and the box around it.

The official code refines a 128x128 box (at 1024x512) around the nose of the label. Training
takes the centres from the target's own poses, transfer from the normalized source poses;
both use ``face_centers`` and ``face_box`` from here.
"""

from __future__ import annotations

import math

import numpy as np

from ..pose.layout import BODY
from ..pose.track import PoseTrack

Box = tuple[int, int, int, int]  # (x0, y0, x1, y1) in pixels, x1/y1 exclusive

# The official code draws 128x128 face boxes on 1024x512 frames: a quarter of the height.
FACE_BOX_AT_512 = 128
NOSE, NECK, MID_HIP = BODY["Nose"], BODY["Neck"], BODY["MidHip"]


def face_centers(track: PoseTrack) -> np.ndarray:
    """(T, 2) face-box centres per frame, in the track's pixels.

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


def face_box_size(image_height: int, multiple: int = 8) -> int:
    """The face box side for frames ``image_height`` tall: 128 at 512, scaled with the height
    and rounded to a multiple of ``multiple`` (the face generator's size multiple)."""
    side = round(FACE_BOX_AT_512 * image_height / 512 / multiple) * multiple
    return max(multiple, side)


def face_box(nose_xy: tuple[float, float], image_size: tuple[int, int],
             box: int | None = None, multiple: int = 8) -> Box:
    """A square box of side ``box`` centred on the nose, shifted to lie inside the image.

    ``image_size`` is (width, height). ``box`` defaults to ``face_box_size(height)`` (128 at
    1024x512); it is rounded down to a multiple of ``multiple`` and cut down to fit the image.
    Returns (x0, y0, x1, y1) with x1 - x0 == y1 - y0 == the side.
    """
    width, height = image_size
    x, y = float(nose_xy[0]), float(nose_xy[1])
    if not (math.isfinite(x) and math.isfinite(y)):
        raise ValueError(f"face_box: nose position {nose_xy} is not finite")
    side = face_box_size(height, multiple) if box is None else int(box)
    side = (min(side, width, height) // multiple) * multiple
    if side < multiple:
        raise ValueError(f"face_box: image {width}x{height} is too small for a face box")
    x0 = min(max(round(x - side / 2), 0), width - side)
    y0 = min(max(round(y - side / 2), 0), height - side)
    return (x0, y0, x0 + side, y0 + side)


def scaled_face_boxes(centers: np.ndarray, canvas: tuple[int, int], size: tuple[int, int],
                      multiple: int) -> np.ndarray:
    """(T, 4) face boxes at ``size`` for (T, 2) centres in ``canvas`` pixels (a training
    stage smaller than the prepared canvas)."""
    sx, sy = size[0] / canvas[0], size[1] / canvas[1]
    return np.array([face_box((x * sx, y * sy), size, multiple=multiple) for x, y in centers],
                    dtype=np.int64).reshape(-1, 4)


def box_of(boxes: np.ndarray, i: int) -> Box:
    """Row ``i`` of a (T, 4) box array as a tuple of Python ints."""
    x0, y0, x1, y1 = (int(v) for v in boxes[i])
    return (x0, y0, x1, y1)
