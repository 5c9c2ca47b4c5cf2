"""Per-frame user corrections applied after global pose normalization.

The Blender add-on keyframes these (a slider for size, two for position) and sends them in its
request's ``adjust`` field; on the command line (``--adjust``) they come as a small JSON file::

    {"scale": 1.0 or [per frame ...], "offset_x": 0.0 or [...], "offset_y": 0.0 or [...]}

* ``scale`` multiplies the normalized pose about its ground anchor (the point between the
  feet that normalization placed on the target's floor), so feet stay on the floor; 1 = as is.
* ``offset_x`` / ``offset_y`` then move it by that fraction of the *target frame height*
  (image axes: +x right, +y down). Fractions of the height, not pixels, so the same keyframes
  work at any resolution.

Each value is one number for the whole clip or one per frame of the source track; missing keys
keep the defaults (no change). Values must be finite and within the protocol's `ADJUST_LIMITS`
(scale 0.05 to 10, offsets -2 to 2 frame heights): beyond them the figure is far outside the frame or too
small to draw, which is never what a user meant, and extreme values would overflow.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import InputError
from ..worker.protocol import ADJUST_LIMITS, adjust_problem

FIELDS = ("scale", "offset_x", "offset_y")


@dataclass(frozen=True, eq=False)
class Adjustments:
    """Scale and offsets, each a number or a per-frame array."""

    scale: np.ndarray | float = 1.0
    offset_x: np.ndarray | float = 0.0
    offset_y: np.ndarray | float = 0.0

    def __post_init__(self) -> None:
        lengths = set()
        for name in FIELDS:
            value = np.asarray(getattr(self, name), dtype=np.float64)
            if value.ndim > 1:
                raise ValueError(f"adjustment {name} must be a number or a list of numbers")
            _check_range(name, value)
            if value.ndim == 1:
                lengths.add(len(value))
            object.__setattr__(self, name, value)
        if len(lengths) > 1:
            raise ValueError(f"per-frame adjustments have different lengths: {sorted(lengths)}")

    @property
    def n_frames(self) -> int | None:
        """The number of frames the per-frame values cover; None if all are constants."""
        for name in FIELDS:
            value = getattr(self, name)
            if value.ndim == 1:
                return len(value)
        return None

    def per_frame(self, n_frames: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(scale, offset_x, offset_y), each (n_frames,); ValueError if lengths differ."""
        if self.n_frames is not None and self.n_frames != n_frames:
            raise ValueError(f"adjustments have {self.n_frames} frames, "
                             f"the pose track has {n_frames}")
        return tuple(np.broadcast_to(getattr(self, name), (n_frames,)).copy() for name in FIELDS)

    def to_dict(self) -> dict:
        return {name: getattr(self, name).tolist() for name in FIELDS}

    @staticmethod
    def from_dict(data: dict) -> "Adjustments":
        if not isinstance(data, dict):
            raise ValueError("adjustments must be a JSON object")
        unknown = set(data) - set(FIELDS)
        if unknown:
            raise ValueError(f"unknown adjustments {sorted(unknown)}; expected {list(FIELDS)}")
        return Adjustments(**data)

    @staticmethod
    def from_json(path: str | Path, n_frames: int | None = None) -> "Adjustments":
        """Adjustments from a JSON file; with ``n_frames``, per-frame lists must be that long."""
        path = Path(path)
        if not path.is_file():
            raise InputError(path, "adjustments file not found")
        try:
            adjustments = Adjustments.from_dict(json.loads(path.read_text()))
            if n_frames is not None:
                adjustments.per_frame(n_frames)
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            raise InputError(path, f"not usable adjustments ({exc})") from exc
        return adjustments


def _check_range(name: str, value: np.ndarray) -> None:
    """ValueError naming the field (and the frame) of a value outside `ADJUST_LIMITS`, in the
    words of the protocol's check (`adjust_problem`)."""
    problem = adjust_problem(name, value.tolist())
    if problem is not None:
        raise ValueError(problem)
