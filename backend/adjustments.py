"""The user's per-frame corrections of the normalized pose: the one type for them.

The Blender add-on keyframes them (a slider for size, two for position), the worker receives
them in a request's ``adjustments`` field, the command line reads them from ``--adjustments``' JSON
file, and the normalizer applies them after global pose normalization::

    {"scale": 1.0 or [per frame ...], "offset_x": 0.0 or [...], "offset_y": 0.0 or [...]}

* ``scale`` multiplies the normalized pose about its ground anchor (the point between the
  feet that normalization placed on the target's floor), so feet stay on the floor; 1 = as is.
* ``offset_x`` / ``offset_y`` then move it by that fraction of the *target frame height*
  (image axes: +x right, +y down). Fractions of the height, not pixels, so the same keyframes
  work at any resolution.

Each value is one number for the whole clip or one per frame of the job; missing keys keep
the defaults (no change). What each may be is stated once, in `backend.checks`
(`ADJUST_LIMITS`, `adjustments_problem`): beyond the limits the figure is far outside the
frame or too small to draw, which is never what a user meant.

Standard library only (numpy is imported by `per_frame` alone): the worker's protocol, and
through it Blender's Python, use this type.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, ClassVar

from .checks import ADJUST_LIMITS, adjustments_problem
from .errors import InputError, RequestError

FIELDS = tuple(ADJUST_LIMITS)  # "scale", "offset_x", "offset_y"


@dataclass
class Adjustments:
    """Scale and offsets, each one number or one per frame of the job (see the module)."""

    LIMITS: ClassVar[dict[str, tuple[float, float]]] = ADJUST_LIMITS  # for the add-on's sliders

    scale: float | list[float] = 1.0
    offset_x: float | list[float] = 0.0  # fractions of the target frame height
    offset_y: float | list[float] = 0.0

    def __post_init__(self) -> None:
        for f in fields(self):  # an array or a tuple of values: a list (as JSON reads back)
            value = getattr(self, f.name)
            if hasattr(value, "tolist"):
                value = value.tolist()
            if isinstance(value, tuple):
                value = list(value)
            setattr(self, f.name, value)

    def problem(self, n_frames: int | None = None) -> str | None:
        """What is wrong with these values for a job of ``n_frames`` frames (None: any
        number), or None (`checks.adjustments_problem`)."""
        return adjustments_problem(self.values(), n_frames)

    def check(self, n_frames: int | None, name: str) -> None:
        """`RequestError` "NAME: problem" for what `problem` refuses (``name``: the request's
        field, such as ``run.adjustments``)."""
        problem = self.problem(n_frames)
        if problem is not None:
            raise RequestError(f"{name}: {problem}")

    def values(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in FIELDS}

    @property
    def n_frames(self) -> int | None:
        """The number of frames the per-frame values cover; None if all are constants."""
        for value in self.values().values():
            if isinstance(value, list):
                return len(value)
        return None

    def per_frame(self, n_frames: int):
        """(scale, offset_x, offset_y) as float64 arrays of ``n_frames`` values each;
        ValueError for values that `problem` refuses."""
        import numpy as np

        problem = self.problem(n_frames)
        if problem is not None:
            raise ValueError(problem)
        return tuple(np.broadcast_to(np.asarray(getattr(self, name), dtype=np.float64),
                                     (n_frames,)).copy() for name in FIELDS)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values, floats (for job.json's identity and the wire)."""
        return {name: [float(v) for v in value] if isinstance(value, list) else float(value)
                for name, value in self.values().items()}

    @staticmethod
    def from_dict(data: Any) -> "Adjustments":
        """From a JSON object; ValueError naming what is wrong."""
        if not isinstance(data, dict):
            raise ValueError("adjustments must be a JSON object")
        problem = adjustments_problem(data)
        if problem is not None:
            raise ValueError(problem)
        return Adjustments(**data)

    @staticmethod
    def from_json(path: str | Path, n_frames: int | None = None) -> "Adjustments":
        """Adjustments from a JSON file; with ``n_frames``, per-frame lists must be that long."""
        path = Path(path)
        if not path.is_file():
            raise InputError(path, "adjustments file not found")
        try:
            adjustments = Adjustments.from_dict(json.loads(path.read_text()))
            problem = adjustments.problem(n_frames)
        except (ValueError, TypeError, UnicodeDecodeError) as exc:
            raise InputError(path, f"not usable adjustments ({exc})") from exc
        if problem is not None:
            raise InputError(path, f"not usable adjustments ({problem})")
        return adjustments
