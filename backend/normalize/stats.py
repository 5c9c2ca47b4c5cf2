"""Per-subject statistics for global pose normalization (paper appendix 8.5).

For one subject (one pose track) we measure, over the frames where the subject was detected
and both ankles and the head are visible inside the frame ("usable" frames):

* the ankle y of a frame: the lower of the two ankles on screen (the larger y), as in the
  official code (graph_posenorm.py / renderopenpose.get_pose_stats, ``max_tip_toe``);
* ``close_y``: the largest ankle y (the subject nearest the camera);
* ``far_y``: the official "horizon". The official code picks, among the observed ankle y above
  the median, the farthest one that is less than ``alpha * (close - median)`` above it; i.e.
  the farthest observed ankle position no farther than ``median - alpha * (close - median)``.
  Picking an observed value (not the formula's value itself) guarantees that a subject was
  really seen there, so a body height can be measured near it. No such value: ``far_y = median``;
* the body height of a frame: distance from the head (nose, else the midpoint of the ears) to
  the midpoint of the ankles (official);
* ``close_height`` / ``far_height``: the largest body height among the frames whose ankle y is
  within 5 % of the close-far range of ``close_y`` / ``far_y`` (official ``get_minmax_scales``
  with ``frac = 0.05``; the largest, because crouching or bending only makes a body shorter);
* the official "10 % rule": if the tallest body over all usable frames is more than 10 % taller
  than ``close_height``, ``close_height`` is reset to it (the frames near ``close_y`` showed
  the subject bent, not standing). The official code's "tallest" is a lexicographic max over
  lists of heights (``max(dict.values())[0]``), which is not the tallest; we use the true max.

The official code samples frames at random (``np.random.randint``); we use every detected frame,
so the statistics are deterministic. Frames that gap filling held or interpolated (``detected``
false) are not used: they would count one pose many times.

When no frame is usable (a subject filmed from the waist up never shows its ankles) the
statistics say so (``method = "shoulders"``, with a ``warnings.warn``) and keep a fallback
measure: the shoulder width (90th percentile over frames, so frames where the subject turns
sideways do not shrink it) and the median neck position. With no shoulders either,
``method = "frame"``: only the frame size is known.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..paths import atomic_write_json
from ..pose.layout import BODY
from ..pose.track import PoseTrack

STATS_FORMAT_VERSION = 1
DEFAULT_ALPHA = 0.7  # DESIGN.md; the official script's default is 0.5 ("try 0.5 or 0.7")
BAND_FRACTION = 0.05  # official get_minmax_scales(..., 0.05)
CLOSE_HEIGHT_TOLERANCE = 0.1  # official "reset max_heightclose" rule
SHOULDER_PERCENTILE = 90.0
METHODS = ("ankles", "shoulders", "frame")

NOSE, NECK = BODY["Nose"], BODY["Neck"]
R_EAR, L_EAR = BODY["REar"], BODY["LEar"]
R_ANKLE, L_ANKLE = BODY["RAnkle"], BODY["LAnkle"]
R_SHOULDER, L_SHOULDER = BODY["RShoulder"], BODY["LShoulder"]


_FLOAT_FIELDS = ("alpha", "close_y", "median_y", "far_y", "close_height", "far_height",
                 "tallest_height", "shoulder_width", "neck_x", "neck_y")


class NoAnklesWarning(UserWarning):
    """A subject's ankles are never visible: ankle-based normalization falls back."""


@dataclass(frozen=True)
class NormalizationStats:
    """What global pose normalization needs to know about one subject (pixels of its video)."""

    frame_size: tuple[int, int]  # (width, height) of the video the track refers to
    method: str  # "ankles", or the fallback "shoulders" / "frame"
    alpha: float
    n_frames: int
    n_detected: int
    n_usable: int  # detected frames with the head and both ankles in the frame
    close_y: float | None = None
    median_y: float | None = None
    far_y: float | None = None
    close_height: float | None = None
    far_height: float | None = None
    tallest_height: float | None = None
    close_height_reset: bool = False  # the 10 % rule replaced close_height by tallest_height
    shoulder_width: float | None = None
    neck_x: float | None = None
    neck_y: float | None = None

    def __post_init__(self) -> None:
        width, height = self.frame_size
        object.__setattr__(self, "frame_size", (int(width), int(height)))
        if min(self.frame_size) <= 0:
            raise ValueError(f"frame size must be positive, got {self.frame_size}")
        if self.method not in METHODS:
            raise ValueError(f"normalization method must be one of {METHODS}, got {self.method!r}")
        if self.method == "ankles" and None in (self.close_y, self.far_y, self.close_height,
                                                self.far_height):
            raise ValueError("ankle statistics need close_y, far_y, close_height and far_height")
        if self.method == "shoulders" and None in (self.shoulder_width, self.neck_x, self.neck_y):
            raise ValueError("shoulder statistics need shoulder_width, neck_x and neck_y")
        _check_numbers(self)
        if self.method == "ankles" and self.far_y > self.close_y:
            raise ValueError(f"far ankle y {self.far_y} is below the close one {self.close_y}")

    @property
    def has_ankles(self) -> bool:
        return self.method == "ankles"

    @property
    def has_shoulders(self) -> bool:
        return None not in (self.shoulder_width, self.neck_x, self.neck_y)

    def to_dict(self) -> dict:
        data = asdict(self)
        data["frame_size"] = list(self.frame_size)
        data["format_version"] = STATS_FORMAT_VERSION
        return data

    @staticmethod
    def from_dict(data: dict) -> "NormalizationStats":
        if not isinstance(data, dict):
            raise ValueError("normalization statistics must be a JSON object")
        values = dict(data)
        version = values.pop("format_version", None)
        if version != STATS_FORMAT_VERSION:
            raise ValueError(f"normalization statistics format version {version}, "
                             f"this program reads version {STATS_FORMAT_VERSION}")
        names = {f.name for f in fields(NormalizationStats)}
        unknown = set(values) - names
        if unknown:
            raise ValueError(f"unknown normalization statistics: {sorted(unknown)}")
        return NormalizationStats(**values)

    def save(self, path: str | Path) -> Path:
        path = Path(path)
        atomic_write_json(path, self.to_dict())
        return path

    @staticmethod
    def load(path: str | Path) -> "NormalizationStats":
        path = Path(path)
        if not path.is_file():
            raise InputError(path, "normalization statistics file not found")
        try:
            return NormalizationStats.from_dict(json.loads(path.read_text()))
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            raise InputError(path, f"not readable normalization statistics ({exc})") from exc


def _check_numbers(stats: NormalizationStats) -> None:
    """Finite floats (None where allowed), positive sizes, integer counts; floats normalized."""
    for name in _FLOAT_FIELDS:
        value = getattr(stats, name)
        if value is None and name != "alpha":
            continue
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not number or not math.isfinite(value):
            raise ValueError(f"normalization statistic {name} must be a finite number, "
                             f"got {value!r}")
        object.__setattr__(stats, name, float(value))
    for name in ("close_height", "far_height", "tallest_height", "shoulder_width"):
        if getattr(stats, name) is not None and getattr(stats, name) <= 0:
            raise ValueError(f"normalization statistic {name} must be > 0")
    for name in ("n_frames", "n_detected", "n_usable"):
        if isinstance(getattr(stats, name), bool) or not isinstance(getattr(stats, name), int):
            raise ValueError(f"normalization statistic {name} must be an integer")


def ankle_y(body: np.ndarray, frame_height: int) -> np.ndarray:
    """(T,) the lower ankle's y per frame; NaN where an ankle is missing or outside the frame."""
    ankles = body[:, [R_ANKLE, L_ANKLE]]
    visible = (ankles[..., 2] > 0) & (ankles[..., 1] >= 0) & (ankles[..., 1] <= frame_height)
    return np.where(visible.all(axis=1), ankles[..., 1].max(axis=1), np.nan)


def head_point(body: np.ndarray) -> np.ndarray:
    """(T, 2) the nose, else the midpoint of the ears; NaN where neither is there (official)."""
    nose_ok = body[:, NOSE, 2] > 0
    ears_ok = (body[:, R_EAR, 2] > 0) & (body[:, L_EAR, 2] > 0)
    ears = 0.5 * (body[:, R_EAR, :2] + body[:, L_EAR, :2])
    head = np.where(nose_ok[:, None], body[:, NOSE, :2], ears)
    return np.where((nose_ok | ears_ok)[:, None], head, np.nan)


def body_height(body: np.ndarray) -> np.ndarray:
    """(T,) head to ankle-midpoint distance; NaN where the head or an ankle is missing."""
    ankles_ok = (body[:, R_ANKLE, 2] > 0) & (body[:, L_ANKLE, 2] > 0)
    mid = 0.5 * (body[:, R_ANKLE, :2] + body[:, L_ANKLE, :2])
    height = np.linalg.norm(head_point(body) - mid, axis=1)
    return np.where(ankles_ok, height, np.nan)


def compute_stats(track: PoseTrack, alpha: float = DEFAULT_ALPHA, *,
                  min_usable_frames: int = 3) -> NormalizationStats:
    """The normalization statistics of the subject of ``track`` (deterministic)."""
    if not 0.0 <= alpha <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha}")
    body = track.body[track.detected].astype(np.float64)
    y = ankle_y(body, track.size[1])
    h = body_height(body)
    usable = np.isfinite(y) & np.isfinite(h) & (h > 0)
    base = dict(frame_size=track.size, alpha=float(alpha), n_frames=len(track),
                n_detected=int(track.detected.sum()), n_usable=int(usable.sum()),
                **_shoulder_stats(body))
    if usable.sum() >= max(1, min_usable_frames):
        ankles = _ankle_stats(y[usable], h[usable], alpha)
        return NormalizationStats(method="ankles", **base, **ankles)
    method = "shoulders" if base["shoulder_width"] is not None else "frame"
    warnings.warn(
        f"only {base['n_usable']} of {base['n_detected']} detected frames show the head and both "
        f"ankles (need {min_usable_frames}): ankle-based normalization is not possible for this "
        f"subject; falling back to "
        + ("the shoulder width for scale and the neck for position" if method == "shoulders"
           else "the frame size (no shoulders seen either)"),
        NoAnklesWarning, stacklevel=2)
    return NormalizationStats(method=method, **base)


def _ankle_stats(y: np.ndarray, h: np.ndarray, alpha: float) -> dict:
    close = float(y.max())
    median = float(np.median(y))
    limit = median - alpha * (close - median)
    above = y[(y < median) & (y > limit)]  # official: 0 < median - y < alpha * (close - median)
    far = float(above.min()) if above.size else median
    band = BAND_FRACTION * (close - far)
    close_height = _tallest_near(y, h, close, band)
    far_height = _tallest_near(y, h, far, band)
    tallest = float(h.max())
    reset = tallest - close_height > CLOSE_HEIGHT_TOLERANCE * tallest
    return dict(close_y=close, median_y=median, far_y=far,
                close_height=tallest if reset else close_height, far_height=far_height,
                tallest_height=tallest, close_height_reset=bool(reset))


def _tallest_near(y: np.ndarray, h: np.ndarray, at: float, band: float) -> float:
    """The tallest body among frames whose ankle y is within ``band`` of ``at``.

    With no frame in the band (``at`` is the median of an even count, between two
    observations), the frames nearest to ``at`` are used.
    """
    distance = np.abs(y - at)
    near = distance <= band
    if not near.any():
        near = distance == distance.min()
    return float(h[near].max())


def _shoulder_stats(body: np.ndarray) -> dict:
    both = (body[:, R_SHOULDER, 2] > 0) & (body[:, L_SHOULDER, 2] > 0)
    widths = np.linalg.norm(body[both, R_SHOULDER, :2] - body[both, L_SHOULDER, :2], axis=1)
    neck = body[body[:, NECK, 2] > 0, NECK, :2]
    if widths.size == 0 or neck.size == 0 or np.percentile(widths, SHOULDER_PERCENTILE) <= 0:
        return dict(shoulder_width=None, neck_x=None, neck_y=None)
    return dict(shoulder_width=float(np.percentile(widths, SHOULDER_PERCENTILE)),
                neck_x=float(np.median(neck[:, 0])), neck_y=float(np.median(neck[:, 1])))
