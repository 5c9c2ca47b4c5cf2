"""The paper's nearest-neighbour baseline: show the target's training frame with the closest pose.

For each normalized source pose, the training frame of the target whose body pose is nearest
(`pose_distances`) is shown, cut to the target's frame like the generator's results. It needs
the target's training frames and poses: a run folder prepared by ``python -m training
prepare``, read through ``backend.target.prepared.PreparedRun``. Only the training part of
its time split is searched.

Pose distance between a source pose s and a target pose t, over the 25 body keypoints, both
in the target's video pixels (so position counts, not only the shape: the paper's baseline
retrieves a frame to show in place):

    d(s, t) = sum_j w_j e_j / sum_j w_j,   w_j = c_s,j * c_t,j,  e_j = |s_j - t_j|^2 / H^2

where a joint missing in t but present in s counts with w_j = c_s,j and e_j = MISSING_PENALTY^2
(a quarter of the frame height away), so a target frame cannot win by lacking the joints that
differ. Joints missing in s do not count. The whole search is one vectorised numpy pass over
all training poses per block of source frames.
"""

from __future__ import annotations

import cv2
import numpy as np

from ..errors import InputError
from ..pose.track import PoseTrack
from ..target.letterbox import Letterbox
from ..target.prepared import PreparedRun

MISSING_PENALTY = 0.25  # frame heights
_BLOCK_ELEMENTS = 4_000_000  # source frames x target frames x joints per numpy block


def pose_distances(source: np.ndarray, targets: np.ndarray, frame_height: float) -> np.ndarray:
    """(S, N) distances (see the module docstring) of (S, J, 3) source to (N, J, 3) target poses.

    A source pose with no joint at all is at distance inf from everything.
    """
    s = np.asarray(source, np.float32)[:, None]  # S, 1, J, 3
    t = np.asarray(targets, np.float32)[None]  # 1, N, J, 3
    cs, ct = np.clip(s[..., 2], 0, None), np.clip(t[..., 2], 0, None)
    both = cs * ct
    missing = cs * (ct <= 0)
    error = ((s[..., :2] - t[..., :2]) ** 2).sum(-1) / np.float32(frame_height) ** 2
    numerator = (both * error).sum(-1) + missing.sum(-1) * np.float32(MISSING_PENALTY ** 2)
    denominator = both.sum(-1) + missing.sum(-1)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(denominator > 0, numerator / denominator, np.inf)


def nearest_frames(source: np.ndarray, targets: np.ndarray, frame_height: float) -> np.ndarray:
    """(S,) index of the nearest target pose for every source pose, in blocks of source frames.

    A source frame with no body joint keeps the choice of the frame before it (of the first
    frame with a pose, at the start; target frame 0 if no frame has any).
    """
    n_src, n_tgt, n_joints = len(source), len(targets), targets.shape[1]
    block = max(1, _BLOCK_ELEMENTS // max(1, n_tgt * n_joints))
    choice = np.zeros(n_src, np.int64)
    for start in range(0, n_src, block):
        d = pose_distances(source[start:start + block], targets, frame_height)
        picked = d.argmin(axis=1)
        picked[~np.isfinite(d.min(axis=1))] = -1
        choice[start:start + block] = picked
    valid = np.flatnonzero(choice >= 0)
    if len(valid) == 0:
        return np.zeros(n_src, np.int64)
    last = np.maximum.accumulate(np.where(choice >= 0, np.arange(n_src), -1))
    last[last < 0] = valid[0]
    return choice[last]


class NearestRenderer:
    """Frame ``i`` of the job: the target training frame nearest to normalized pose ``i``."""

    def __init__(self, target: PreparedRun, normalized: PoseTrack, layout: Letterbox) -> None:
        track = target.track()
        if tuple(normalized.size) != tuple(track.size):
            raise InputError(target.folder, f"the prepared target's video is "
                             f"{track.size[0]}x{track.size[1]} but the poses were normalized "
                             f"onto a {normalized.size[0]}x{normalized.size[1]} target: the "
                             f"model and the run are of different targets")
        self.target = target
        self.layout = layout
        first, stop = target.train_range
        self.first = first
        self.choice = nearest_frames(normalized.body, track.body[first:stop], normalized.size[1])

    def __call__(self, i: int) -> np.ndarray:
        canvas = self.target.frame(self.first + int(self.choice[i]))
        if (canvas.shape[1], canvas.shape[0]) != self.layout.canvas:
            canvas = cv2.resize(canvas, self.layout.canvas, interpolation=cv2.INTER_AREA)
        return np.ascontiguousarray(self.layout.crop(canvas))
