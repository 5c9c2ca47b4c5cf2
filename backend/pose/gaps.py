"""Gap filling: give every frame of a pose track a pose, without dropping any frame.

Two kinds of holes are filled, point by point (body, face and hands alike):

* **Short holes** -- a point missing for at most ``max_gap`` frames with the point present on
  both sides (the whole subject lost for a moment, or one keypoint dropping out while the subject
  is still detected) -- are linearly interpolated between the frames on each side.
* **Long holes while the subject is not detected** (and the frames before the first or after the
  last detection) hold the nearest detected pose: the last one before the hole, or the first one
  after it for frames before the first detection.

A point missing for *long* while the subject *is* detected is left missing: that is a face
turned away or a hand hidden behind the back, and drawing the last seen one for seconds would
be wrong. ``detected`` is copied as it was, so filled frames stay flagged as not detected.

Filled points keep a positive confidence, so the label renderer draws them like their
neighbours, but with a reduced one: ``filled_confidence_factor`` (0.5) times the confidence it
was filled from (the interpolated confidence of its two neighbours, or the held point's), so
anything weighing points by confidence trusts filled ones less. The filled points are those
missing before (confidence 0) and present after.
"""

from __future__ import annotations

import numpy as np

from .track import N_BODY, N_FACE, N_HAND, PoseTrack

DEFAULT_MAX_GAP_S = 0.5  # about one dance beat: longer holes are not guessed at


def stack_points(track: PoseTrack) -> np.ndarray:
    """All keypoints of every frame as one (T, 137, 3) array: body, face, left hand, right hand."""
    t = len(track)
    return np.concatenate(
        [track.body, track.face, track.hands.reshape(t, 2 * N_HAND, 3)], axis=1)


def unstack_points(track: PoseTrack, points: np.ndarray) -> PoseTrack:
    """A copy of ``track`` whose keypoints are replaced by ``points`` (T, 137, 3)."""
    t = len(track)
    body = points[:, :N_BODY]
    face = points[:, N_BODY:N_BODY + N_FACE]
    hands = points[:, N_BODY + N_FACE:].reshape(t, 2, N_HAND, 3)
    return track.copy(body=body.copy(), face=face.copy(), hands=hands.copy())


def gap_frames(track: PoseTrack, max_gap_s: float = DEFAULT_MAX_GAP_S,
               max_gap_frames: int | None = None) -> int:
    """The longest hole (in frames) that is interpolated rather than held."""
    if max_gap_frames is not None:
        if max_gap_frames < 0:
            raise ValueError(f"max_gap_frames must be >= 0, got {max_gap_frames}")
        return int(max_gap_frames)
    if not np.isfinite(track.fps) or track.fps <= 0:
        raise ValueError(f"pose track has no usable frame rate ({track.fps}); give max_gap_frames")
    if max_gap_s < 0:
        raise ValueError(f"max_gap_s must be >= 0, got {max_gap_s}")
    return int(round(max_gap_s * track.fps))


def fill_gaps(track: PoseTrack, max_gap_s: float = DEFAULT_MAX_GAP_S, *,
              max_gap_frames: int | None = None,
              filled_confidence_factor: float = 0.5) -> PoseTrack:
    """A copy of ``track`` with short holes interpolated and undetected stretches held.

    ``max_gap_s`` (converted with the track's fps) or ``max_gap_frames`` is the longest hole
    that is interpolated. Every frame is kept and ``detected`` is unchanged.
    """
    if not 0.0 < filled_confidence_factor <= 1.0:
        raise ValueError("filled_confidence_factor must be in (0, 1], "
                         f"got {filled_confidence_factor}")
    max_gap = gap_frames(track, max_gap_s, max_gap_frames)
    points = stack_points(track).astype(np.float64)
    filled = _interpolate_short_holes(points, max_gap, filled_confidence_factor)
    _hold_undetected_runs(points, filled, track.detected, max_gap, filled_confidence_factor)
    return unstack_points(track, points.astype(np.float32))


def away_frames(detected: np.ndarray, max_gap: int) -> np.ndarray:
    """(T,) bool: the frames of runs of more than ``max_gap`` undetected frames, where the
    subject is away rather than lost for a moment (there `fill_gaps` holds the nearest pose
    instead of interpolating one; a run at either end no longer than ``max_gap`` counts as a
    moment too)."""
    away = np.zeros(len(detected), bool)
    for start, stop in true_runs(~np.asarray(detected, bool)):
        if stop - start > max_gap:
            away[start:stop] = True
    return away


def _interpolate_short_holes(points: np.ndarray, max_gap: int, factor: float) -> np.ndarray:
    """Interpolate, in place, holes of at most ``max_gap`` frames; returns the filled mask."""
    t_count = points.shape[0]
    present = points[..., 2] > 0
    frames = np.arange(t_count)[:, None]
    # For each (frame, point): the nearest frame at or before / at or after with the point present.
    prev = np.maximum.accumulate(np.where(present, frames, -1), axis=0)
    nxt = np.minimum.accumulate(np.where(present, frames, t_count)[::-1], axis=0)[::-1]
    hole = ~present & (prev >= 0) & (nxt < t_count) & (nxt - prev - 1 <= max_gap)
    if not hole.any():
        return hole
    t_idx, p_idx = np.nonzero(hole)
    a, b = prev[hole], nxt[hole]
    w = ((t_idx - a) / (b - a))[:, None]
    value = (1.0 - w) * points[a, p_idx] + w * points[b, p_idx]
    value[:, 2] *= factor
    points[t_idx, p_idx] = value
    return hole


def _hold_undetected_runs(points: np.ndarray, filled: np.ndarray, detected: np.ndarray,
                          max_gap: int, factor: float) -> None:
    """Give the undetected frames of long (or leading/trailing) runs the nearest detected pose."""
    detected_idx = np.flatnonzero(detected)
    if detected_idx.size == 0:
        return  # nobody was ever found: there is no pose to hold
    for start, stop in true_runs(~detected):
        interior = start > 0 and stop < len(detected)
        if interior and stop - start <= max_gap:
            continue  # short: already interpolated point by point
        source = start - 1 if start > 0 else detected_idx[0]
        src = points[source]
        # A held copy of an already-filled point keeps its (already reduced) confidence.
        conf = np.where(filled[source], src[:, 2], src[:, 2] * factor)
        for t in range(start, stop):
            missing = points[t, :, 2] <= 0
            points[t, missing, :2] = src[missing, :2]
            points[t, missing, 2] = conf[missing]
            filled[t] |= missing & (conf > 0)


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """The [start, stop) ranges where ``mask`` is True."""
    padded = np.concatenate([[False], mask.astype(bool), [False]])
    edges = np.flatnonzero(padded[1:] != padded[:-1])
    return list(zip(edges[0::2].tolist(), edges[1::2].tolist()))
