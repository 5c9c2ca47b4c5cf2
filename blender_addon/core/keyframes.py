"""Sampling keyframed adjustments once per frame of a job (no bpy).

The user keys scale / offset X / offset Y on the strip with the usual keyframe button. When a
job is submitted, each is evaluated at the timeline frame of every job frame and sent to the
backend as a per-frame list (or one number when it does not change, keeping messages small).
The Blender side passes an ``evaluate(frame) -> float`` per property: the F-curve's, when the
property is animated, or None to use the property's current value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

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


@dataclass(frozen=True)
class AdjustmentSamples:
    """The three adjustments of a job, each one number or one per job frame."""

    scale: list[float] | float = 1.0
    offset_x: list[float] | float = 0.0
    offset_y: list[float] | float = 0.0

    def check(self) -> None:
        """Raise ValueError with a user-facing message for values the backend rejects."""
        scales = self.scale if isinstance(self.scale, list) else [self.scale]
        bad = [i for i, s in enumerate(scales) if not s > 0]
        if bad:
            raise ValueError(f"the keyed scale is not above 0 on {len(bad)} frame(s) "
                             f"(first at job frame {bad[0]}); scale must stay positive")


def sample_adjustments(evaluators: dict[str, Evaluate | None], constants: dict[str, float],
                       mapping: FrameMapping) -> AdjustmentSamples:
    """Sample every adjustment of :data:`ADJUSTMENTS` for the frames of ``mapping``."""
    values = {name: sample(evaluators.get(name), constants[name], mapping)
              for name in ADJUSTMENTS}
    samples = AdjustmentSamples(**values)
    samples.check()
    return samples
