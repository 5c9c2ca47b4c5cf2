"""Global pose normalization (paper appendix 8.5): source poses sized and placed like the target.

Typical use::

    target_stats = compute_stats(target_track)          # stored in the model bundle
    source_stats = compute_stats(source_track)
    moved = normalize_track(source_track, source_stats, target_stats,
                            Adjustments.from_json("adjust.json", len(source_track)))
"""

from ..adjustments import Adjustments  # the one type of them (also the worker's, the add-on's)
from .stats import (NoAnklesWarning, NormalizationStats, ankle_y, body_height, compute_stats)
from .targets import load_target_stats
from .transform import FrameTransforms, apply_transforms, normalize_track, plan_transforms

__all__ = [
    "Adjustments",
    "FrameTransforms",
    "NoAnklesWarning",
    "NormalizationStats",
    "ankle_y",
    "apply_transforms",
    "body_height",
    "compute_stats",
    "load_target_stats",
    "normalize_track",
    "plan_transforms",
]
