"""Global pose normalization: put the source's poses where and how big the target would be.

Per source frame, a scale ``s`` and an anchor move every keypoint (body, face, hands)::

    p_target = dst_anchor + s * (p_source - src_anchor)

With ankle statistics for both subjects (paper appendix 8.5, official graph_posenorm.py):

* the frame's ankle y ``a`` (the lower ankle) is placed between the source's far and close
  positions: ``q = (a - far_s) / (close_s - far_s)``;
* the target's ankle y is the same fraction between the target's far and close positions,
  ``m = far_t + q * (close_t - far_t)`` (extrapolated when the source goes beyond them, e.g. a
  jump), and the scale is interpolated linearly, ``s = scale_far + q * (scale_close -
  scale_far)`` with ``scale_close = close_height_t / close_height_s`` and ``scale_far =
  far_height_t / far_height_s`` (``q`` clamped to [0, 1] for the scale only, so a jump keeps the
  far scale instead of shrinking without bound);
* the anchor is on the ground: ``src_anchor = (source width / 2, a)``, ``dst_anchor = (target
  width / 2, m)``: the ankle line lands exactly on ``m`` and horizontal positions scale about
  the frame centre, as in the official code (which scales x about the centre too).

Departures from the official code, and why:

* The official anchor is the lower ankle of the *first* frame, fixed for the whole video, then
  a translation ``m - a`` computed before scaling; so the ankles land at ``m`` only when the
  scale is 1 or the subject stands where it stood in frame 0 (off by ``(s - 1)(a - a0)``
  otherwise). Its ``get_min_point`` also reads ankles with BODY_23 indices whatever the layout.
  Anchoring each frame at its own ankle line puts the feet exactly on ``m``.
* Official "small range" rule: when the source moves over less depth than the target, the
  target's range is shrunk about its middle to the source's, so a dancer stepping on the spot
  is not stretched over the whole of the target's room. The official code compares the two
  ranges in raw pixels (same-size videos assumed); we compare them in units of each subject's
  close body height, so videos of any sizes compare fairly. The target's body height at the
  shrunk range ends comes from the straight line through its (far, far height) and (close,
  close height) -- on a flat floor apparent height is linear in the ankle's image y -- where
  the official code re-measures heights in bands there.
* Frames where the source's ankles are missing hold the transform of the last frame before
  them that has ankles (at the start: of the first frame that has them); the official code
  holds the last one too and drops the frames before the first.

Different frame sizes and aspects need nothing special: positions go through the ankle lines
and sizes through the body heights, each measured in its own video's pixels, so ``s`` already
converts source pixels into target pixels; horizontally the frame centres correspond.

Fallbacks when a subject never shows its ankles (a ``warnings.warn`` says which): scale by the
ratio of shoulder widths and put the source's median neck on the target's (``"shoulders"``);
with no shoulders either, scale by the frame heights about the frame centres (``"frame"``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..pose.track import PoseTrack
from ..adjustments import Adjustments
from .stats import NoAnklesWarning, NormalizationStats, ankle_y

_EPS = 1e-6  # relative to a frame height: ranges smaller than this are "no depth motion"


@dataclass(frozen=True, eq=False)
class FrameTransforms:
    """Per-frame similarity transforms: ``p_target = dst_anchor + scale * (p - src_anchor)``."""

    scale: np.ndarray  # (T,)
    src_anchor: np.ndarray  # (T, 2) source pixels
    dst_anchor: np.ndarray  # (T, 2) target pixels
    method: str  # "ankles", "shoulders" or "frame"
    target_size: tuple[int, int]


def normalize_track(source: PoseTrack, source_stats: NormalizationStats,
                    target_stats: NormalizationStats,
                    adjustments: Adjustments | None = None) -> PoseTrack:
    """The source's poses moved into the target's frame (``size`` = the target's frame size).

    Missing points stay missing; every frame and the ``detected`` flags are kept.
    ``adjustments`` (per-frame scale and offsets) are applied after the normalization.
    """
    transforms = plan_transforms(source, source_stats, target_stats)
    return apply_transforms(source, transforms, adjustments)


def plan_transforms(source: PoseTrack, source_stats: NormalizationStats,
                    target_stats: NormalizationStats) -> FrameTransforms:
    """The per-frame transforms that ``normalize_track`` applies."""
    if tuple(source.size) != source_stats.frame_size:
        raise ValueError(f"the source statistics are for {source_stats.frame_size[0]}x"
                         f"{source_stats.frame_size[1]} frames but the source track is "
                         f"{source.size[0]}x{source.size[1]}: were they computed from this video?")
    if source_stats.has_ankles and target_stats.has_ankles:
        return _ankle_transforms(source, source_stats, target_stats)
    lacking = " and ".join(name for name, st in (("source", source_stats), ("target", target_stats))
                           if not st.has_ankles)
    if source_stats.has_shoulders and target_stats.has_shoulders:
        warnings.warn(f"the {lacking} never shows its ankles: normalizing by shoulder width and "
                      f"neck position instead (no ground contact, check the result)",
                      NoAnklesWarning, stacklevel=3)
        return _shoulder_transforms(source, source_stats, target_stats)
    warnings.warn(f"the {lacking} never shows its ankles and the shoulders are missing too: "
                  f"only scaling by the frame heights", NoAnklesWarning, stacklevel=3)
    return _frame_transforms(source, target_stats)


def apply_transforms(source: PoseTrack, transforms: FrameTransforms,
                     adjustments: Adjustments | None = None) -> PoseTrack:
    """``source`` moved by ``transforms``, then by ``adjustments``, in the target's frame."""
    n = len(source)
    scale, dst = transforms.scale.astype(np.float64), transforms.dst_anchor.astype(np.float64)
    adj_scale, off_x, off_y = (adjustments or Adjustments()).per_frame(n)
    height = transforms.target_size[1]
    # Normalization then adjustment, about the same target anchor, fold into one transform.
    total_scale = scale * adj_scale
    shift = np.stack([off_x, off_y], axis=1) * height

    def move(points: np.ndarray) -> np.ndarray:
        shape = points.shape
        pts = points.reshape(n, -1, 3).astype(np.float64)
        offset = pts[..., :2] - transforms.src_anchor[:, None]
        xy = dst[:, None] + total_scale[:, None, None] * offset + shift[:, None]
        present = pts[..., 2:] > 0
        out = np.concatenate([np.where(present, xy, 0.0), np.where(present, pts[..., 2:], 0.0)],
                             axis=-1)
        return out.reshape(shape).astype(np.float32)

    detector = dict(source.detector)
    detector["normalization"] = {"method": transforms.method,
                                 "target_size": list(transforms.target_size),
                                 "source_size": list(source.size)}
    return PoseTrack(move(source.body), move(source.face), move(source.hands),
                     source.detected.copy(), source.fps, transforms.target_size, detector)


def _ankle_transforms(source: PoseTrack, s: NormalizationStats,
                      t: NormalizationStats) -> FrameTransforms:
    eps_s, eps_t = _EPS * s.frame_size[1], _EPS * t.frame_size[1]
    range_s, range_t = s.close_y - s.far_y, t.close_y - t.far_y
    t_far, t_close = t.far_y, t.close_y
    if range_s / s.close_height < range_t / t.close_height:
        # Official "small range" rule, in body heights: shrink the target's range about its middle.
        middle = 0.5 * (t.close_y + t.far_y)
        half = 0.5 * range_s / s.close_height * t.close_height
        t_far, t_close = middle - half, middle + half

    def target_height(y: float) -> float:
        if range_t <= eps_t:
            return t.close_height
        return t.far_height + (y - t.far_y) / range_t * (t.close_height - t.far_height)

    scale_close = target_height(t_close) / s.close_height
    scale_far = target_height(t_far) / s.far_height
    a = _hold_last(ankle_y(source.body.astype(np.float64), s.frame_size[1]), s.close_y)
    if range_s > eps_s:
        q = (a - s.far_y) / range_s
        m = t_far + q * (t_close - t_far)
    else:  # the source never moves in depth: ankle offsets scale like the body
        q = np.ones_like(a)
        m = t_close + (a - s.close_y) * scale_close
    scale = scale_far + np.clip(q, 0.0, 1.0) * (scale_close - scale_far)
    n = len(source)
    src = np.stack([np.full(n, s.frame_size[0] / 2.0), a], axis=1)
    dst = np.stack([np.full(n, t.frame_size[0] / 2.0), m], axis=1)
    return FrameTransforms(scale, src, dst, "ankles", t.frame_size)


def _shoulder_transforms(source: PoseTrack, s: NormalizationStats,
                         t: NormalizationStats) -> FrameTransforms:
    n = len(source)
    scale = np.full(n, t.shoulder_width / s.shoulder_width)
    src = np.tile([s.neck_x, s.neck_y], (n, 1))
    dst = np.tile([t.neck_x, t.neck_y], (n, 1))
    return FrameTransforms(scale, src.astype(np.float64), dst.astype(np.float64), "shoulders",
                           t.frame_size)


def _frame_transforms(source: PoseTrack, t: NormalizationStats) -> FrameTransforms:
    n = len(source)
    (sw, sh), (tw, th) = source.size, t.frame_size
    scale = np.full(n, th / sh)
    src = np.tile([sw / 2.0, sh / 2.0], (n, 1))
    dst = np.tile([tw / 2.0, th / 2.0], (n, 1))
    return FrameTransforms(scale, src, dst, "frame", t.frame_size)


def _hold_last(values: np.ndarray, default: float) -> np.ndarray:
    """NaNs replaced by the last finite value before (the first one after, at the start)."""
    ok = np.isfinite(values)
    if not ok.any():
        return np.full_like(values, default)
    idx = np.where(ok, np.arange(len(values)), -1)
    last = np.maximum.accumulate(idx)
    last[last < 0] = np.flatnonzero(ok)[0]
    return values[last]
