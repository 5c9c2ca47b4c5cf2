"""Reading "the target" the way users give it: a pose track or saved statistics."""

from __future__ import annotations

from pathlib import Path

from ..pose.track import PoseTrack, require_person
from .stats import NormalizationStats, compute_stats


def load_target_stats(path: str | Path, alpha: float = 0.7) -> NormalizationStats:
    """Statistics from a ``.json`` statistics file, or computed from a ``.npz`` pose track."""
    path = Path(path)
    if path.suffix.lower() == ".json":
        return NormalizationStats.load(path)
    track = PoseTrack.load(path)
    require_person(track, path, "the target's size and place cannot be measured")
    return compute_stats(track, alpha=alpha)
