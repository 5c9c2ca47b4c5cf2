"""Keypoints that contradict each other: a face far from the body's head.

When a dancer turns her back, the face goes missing while the body stays found; gap filling
interpolates the face across the turn (the hole is short) and it ends up beside or above
the head: up to four face heights above the body's nose in source_turning_3.mp4, frames
146-161. The face is then drawn, and refined by the face GAN, in the wrong place. Such a
frame's face points are dropped (confidence 0): a label without a face is better than one
with a face in the air.
"""

from __future__ import annotations

import numpy as np

from .layout import BODY
from .track import PoseTrack

NOSE = BODY["Nose"]
MIN_FACE_POINTS = 5  # fewer found points do not make a face to measure


def stray_faces(track: PoseTrack) -> np.ndarray:
    """(T,) True where the found face points' centre is more than the face's own height
    from the body's nose (frames without a nose or a face are never stray)."""
    stray = np.zeros(len(track), bool)
    for i in range(len(track)):
        found = track.face[i, :, 2] > 0
        if found.sum() < MIN_FACE_POINTS or track.body[i, NOSE, 2] <= 0:
            continue
        points = track.face[i, found, :2]
        height = float(np.ptp(points[:, 1]))
        distance = float(np.hypot(*(points.mean(axis=0) - track.body[i, NOSE, :2])))
        stray[i] = distance > max(height, 1.0)
    return stray


def drop_stray_faces(track: PoseTrack) -> PoseTrack:
    """A copy of ``track`` without the face points of frames where they are stray."""
    out = track.copy()
    out.face[stray_faces(track)] = 0.0
    return out
