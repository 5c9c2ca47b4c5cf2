"""Temporal smoothing of pose tracks: take detector jitter out without taking the dance out.

Methods (``SmoothingConfig.method``):

* ``"median"`` -- the official code's filter (graph_posenorm.py, ``getmedians_adapt``): per
  keypoint and per coordinate, the median over a window of 7 frames of the frames where the
  point is present. As there, a point is kept only where it is present in at least half of the
  window (``ceil(n/2)`` of its ``n`` frames), so it also fills one-frame dropouts and removes
  one-frame false detections. Unlike the official code, the window is centred and shrinks at
  the ends of the track instead of dropping the first 6 frames. The median flattens fast moves:
  a 2 Hz arm swing loses most of its amplitude.
* ``"one_euro"`` -- the One-Euro filter (Casiez et al., CHI 2012): a low-pass whose cutoff rises
  with speed, so still poses lose their jitter and fast moves keep their shape. Coordinates are
  filtered in units of frame height (so ``beta`` does not depend on the resolution) and, since
  the whole track is known, by default run forwards and backwards and averaged, which cancels
  the lag that the causal filter has on fast moves.
* ``"savgol"`` -- a Savitzky-Golay filter (local polynomial fit, zero phase): keeps peaks.
* ``"none"`` -- unchanged.

Missing points (confidence 0) stay missing for ``one_euro`` and ``savgol``: each run of frames
where a point is present is filtered on its own. Confidences are unchanged except by the
median, which takes the median confidence of the present frames.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy.signal import savgol_filter

from .gaps import stack_points, true_runs, unstack_points
from .track import PoseTrack

METHODS = ("median", "one_euro", "savgol", "none")
_MEDIAN_CHUNK = 1024  # frames per block, so a long video never builds a huge window array


@dataclass(frozen=True)
class SmoothingConfig:
    """How to smooth a track. Defaults: the official 7-frame median."""

    method: str = "median"
    window: int = 7  # frames, odd (median and savgol); the official code uses 7
    polyorder: int = 2  # savgol: degree of the local polynomial
    min_cutoff_hz: float = 1.0  # one_euro: cutoff when still (lower = smoother still poses)
    beta: float = 30.0  # one_euro: cutoff rise per (frame height / s) of speed
    d_cutoff_hz: float = 1.0  # one_euro: cutoff of the speed estimate
    zero_phase: bool = True  # one_euro: forward + backward average (no lag)

    def __post_init__(self) -> None:
        if self.method not in METHODS:
            raise ValueError(f"smoothing method must be one of {METHODS}, got {self.method!r}")
        if self.window < 1 or self.window % 2 == 0:
            raise ValueError(f"smoothing window must be a positive odd number, got {self.window}")
        if self.method == "savgol" and not 0 <= self.polyorder < self.window:
            raise ValueError(f"savgol polyorder must be in [0, window), got {self.polyorder}")
        if self.min_cutoff_hz <= 0 or self.d_cutoff_hz <= 0 or self.beta < 0:
            raise ValueError("one_euro needs min_cutoff_hz > 0, d_cutoff_hz > 0 and beta >= 0")

    def to_dict(self) -> dict:
        return asdict(self)

    @staticmethod
    def from_dict(data: dict) -> "SmoothingConfig":
        unknown = set(data) - set(SmoothingConfig.__dataclass_fields__)
        if unknown:
            raise ValueError(f"unknown smoothing settings: {sorted(unknown)}")
        return SmoothingConfig(**data)


def smooth_track(track: PoseTrack, config: SmoothingConfig = SmoothingConfig()) -> PoseTrack:
    """A smoothed copy of ``track`` (same frames, same ``detected`` flags)."""
    if config.method == "none" or len(track) == 0:
        return track.copy()
    points = stack_points(track).astype(np.float64)
    if config.method == "median":
        out = median_smooth(points, config.window)
    elif config.method == "savgol":
        out = _per_run(points, lambda xy: _savgol(xy, config.window, config.polyorder))
    else:
        out = one_euro_smooth(points, track.fps, float(track.size[1]) or 1.0, config)
    return unstack_points(track, out.astype(np.float32))


def median_smooth(points: np.ndarray, window: int = 7) -> np.ndarray:
    """The official sliding median of (T, P, 3) keypoints; see the module docstring."""
    t_count = points.shape[0]
    half = window // 2
    present = points[..., 2] > 0
    values = np.where(present[..., None], points, np.nan)
    padded = np.pad(values, ((half, half), (0, 0), (0, 0)), constant_values=np.nan)
    out = np.zeros_like(points)
    # How many real frames each (edge-truncated) window holds, and how many of them have the point.
    frames_in_window = _window_sum(np.ones(t_count), window)
    present_count = _window_sum(present.astype(np.float64), window)
    keep = present_count >= np.ceil(frames_in_window / 2)[:, None]
    for start in range(0, t_count, _MEDIAN_CHUNK):
        stop = min(start + _MEDIAN_CHUNK, t_count)
        windows = sliding_window_view(padded[start:stop + 2 * half], window, axis=0)
        block_keep = keep[start:stop]
        med = np.zeros((stop - start,) + points.shape[1:])
        # nanmedian only where the point is kept: all-NaN windows would warn and give NaN.
        med[block_keep] = np.nanmedian(windows[block_keep], axis=-1)
        out[start:stop] = med
    return out


def _window_sum(x: np.ndarray, window: int) -> np.ndarray:
    """Sum over a centred window along axis 0, edges truncated."""
    half = window // 2
    csum = np.concatenate([np.zeros((1,) + x.shape[1:]), np.cumsum(x, axis=0)])
    idx = np.arange(x.shape[0])
    lo = np.clip(idx - half, 0, x.shape[0])
    hi = np.clip(idx + half + 1, 0, x.shape[0])
    return csum[hi] - csum[lo]


def _per_run(points: np.ndarray, smooth_xy) -> np.ndarray:
    """Apply ``smooth_xy`` ((n, 2) -> (n, 2)) to each run of frames where a point is present."""
    out = points.copy()
    present = points[..., 2] > 0
    for p in range(points.shape[1]):
        for start, stop in true_runs(present[:, p]):
            out[start:stop, p, :2] = smooth_xy(points[start:stop, p, :2])
    return out


def _savgol(xy: np.ndarray, window: int, polyorder: int) -> np.ndarray:
    """Savitzky-Golay along time; short runs use the largest odd window that fits."""
    n = len(xy)
    w = min(window, n if n % 2 else n - 1)
    if w <= polyorder:
        return xy  # too short to fit the polynomial: leave as detected
    return savgol_filter(xy, w, polyorder, axis=0, mode="interp")


def one_euro_smooth(points: np.ndarray, fps: float, unit: float,
                    config: SmoothingConfig) -> np.ndarray:
    """One-Euro filtering of (T, P, 3) keypoints, coordinates measured in ``unit`` pixels."""
    if not np.isfinite(fps) or fps <= 0:
        raise ValueError(f"one_euro smoothing needs the track's frame rate, got {fps}")
    xy = points[..., :2] / unit
    present = points[..., 2] > 0
    args = (fps, config.min_cutoff_hz, config.beta, config.d_cutoff_hz)
    smooth = _one_euro_pass(xy, present, *args)
    if config.zero_phase:
        smooth = 0.5 * (smooth + _one_euro_pass(xy[::-1], present[::-1], *args)[::-1])
    out = points.copy()
    out[..., :2] = np.where(present[..., None], smooth * unit, points[..., :2])
    return out


def _one_euro_pass(x: np.ndarray, present: np.ndarray, fps: float, min_cutoff: float,
                   beta: float, d_cutoff: float) -> np.ndarray:
    """The causal One-Euro filter over (T, P, 2) samples, all points at once.

    A point's filter restarts wherever the point reappears after missing frames.
    """
    te = 1.0 / fps

    def alpha(cutoff):
        return 1.0 / (1.0 + 1.0 / (2.0 * np.pi * cutoff * te))

    a_d = alpha(d_cutoff)
    out = x.copy()
    x_hat = x[0].copy()
    dx_hat = np.zeros_like(x[0])
    for i in range(1, len(x)):
        restart = (present[i] & ~present[i - 1])[:, None]
        dx = (x[i] - x_hat) * fps
        new_dx_hat = a_d * dx + (1.0 - a_d) * dx_hat
        a = alpha(min_cutoff + beta * np.abs(new_dx_hat))
        new_x_hat = a * x[i] + (1.0 - a) * x_hat
        x_hat = np.where(restart, x[i], new_x_hat)
        dx_hat = np.where(restart, 0.0, new_dx_hat)
        out[i] = x_hat
    return out
