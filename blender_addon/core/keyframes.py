"""Sampling keyframed adjustments once per frame of a job (no bpy).

The user keys scale / offset X / offset Y on the strip with the usual keyframe button. When a
job is submitted, each is evaluated at the timeline frame of every job frame and sent to the
backend as a per-frame list (or one number when it does not change, keeping messages small).
The Blender side passes an ``evaluate(frame) -> float`` per property: the F-curve's, when the
property is animated, or None to use the property's current value. The values are the
backend's `Adjustments`, checked by its one rule (backend/checks.py).
"""

from __future__ import annotations

from typing import Callable

from ..backend_client import Adjustments
from .frame_map import FrameMapping

Evaluate = Callable[[float], float]
ADJUSTMENTS = ("scale", "offset_x", "offset_y")


def sample(evaluate: Evaluate | None, constant: float,
           mapping: FrameMapping) -> list[float] | float:
    """One value per job frame, or ``constant`` (a float) when nothing is keyed."""
    if evaluate is None:
        return float(constant)
    values = [float(evaluate(mapping.timeline_frame_of_job_frame(k)))
              for k in range(mapping.job_length)]
    return values[0] if len(set(values)) == 1 else values


def sample_adjustments(evaluators: dict[str, Evaluate | None], constants: dict[str, float],
                       mapping: FrameMapping) -> Adjustments:
    """Every adjustment of :data:`ADJUSTMENTS` sampled for the frames of ``mapping``;
    ValueError in the backend's words for values it refuses (a scale keyed to 0, say)."""
    values = {name: sample(evaluators.get(name), constants[name], mapping)
              for name in ADJUSTMENTS}
    adjustments = Adjustments(**values)
    problem = adjustments.problem(mapping.job_length)
    if problem is not None:
        raise ValueError(problem)
    return adjustments
