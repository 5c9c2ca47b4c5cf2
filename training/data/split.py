"""The time split of a prepared video: the last ``holdout`` of it is held out for evaluation."""

from __future__ import annotations

import warnings
from pathlib import Path

from backend.errors import InputError

MIN_TRAIN_FRAMES = 2  # a training step needs two consecutive frames (temporal smoothing)


class EmptyHeldOutWarning(UserWarning):
    """The video is too short for its ``holdout`` to hold out a single frame."""


def time_split(n_frames: int, holdout: float) -> tuple[tuple[int, int], tuple[int, int]]:
    """(train, eval) frame ranges: the last ``holdout`` of the video is held out."""
    n_eval = int(round(n_frames * holdout))
    if n_frames - n_eval < MIN_TRAIN_FRAMES:
        raise ValueError(f"{n_frames} frame(s) leave fewer than {MIN_TRAIN_FRAMES} training "
                         f"frames after holding out {holdout:.0%}")
    return (0, n_frames - n_eval), (n_frames - n_eval, n_frames)


def checked_split(video: Path, n_frames: int, holdout: float) -> tuple[tuple[int, int], tuple[int, int]]:
    """`time_split` of ``video``'s ``n_frames``: too few frames are an `InputError` naming
    the video; a held-out split left empty is an `EmptyHeldOutWarning`."""
    try:
        train, held_out = time_split(n_frames, holdout)
    except ValueError as exc:
        raise InputError(video, f"too short to train on: {exc}") from None
    if holdout > 0 and held_out[0] == held_out[1]:
        warnings.warn(f"{video}: {n_frames} frames are too few to hold out {holdout:.0%} of them: "
                      f"nothing is held out, so `training evaluate` will have no frames to "
                      f"measure (use a longer video or a larger --holdout)",
                      EmptyHeldOutWarning, stacklevel=2)
    return train, held_out
