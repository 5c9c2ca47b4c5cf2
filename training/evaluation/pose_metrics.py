"""Pose metrics (the paper's Tables 3-4): do the keypoints the generator was given come back?

The poses that drove the generator are compared with the poses detected again on its output
frames, per part (body, face, hands), in output pixels:

* **distance**: the mean Euclidean distance between an input keypoint and the re-detected
  one, over the keypoints present in both;
* **missed**: the mean number per frame of keypoints present in the input but not found on
  the output.

"Present" is what the label showed the generator: a body or hand keypoint above the label
style's threshold; a face point of a face the label drew (mean confidence at least the face
threshold) with a confidence above zero. The same rule decides what the detector found.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from backend.labels import LabelStyle
from backend.pose.track import PoseTrack

PARTS = ("body", "face", "hands")


def present(track: PoseTrack, style: LabelStyle) -> dict[str, np.ndarray]:
    """Per part, a (T, K) bool array of the keypoints a label would show (hands: both, 42)."""
    face_shown = track.face[..., 2].mean(axis=1) >= style.face_threshold
    return {
        "body": track.body[..., 2] > style.body_threshold,
        "face": (track.face[..., 2] > 0) & face_shown[:, None],
        "hands": track.hands[..., 2].reshape(len(track), -1) > style.hand_threshold,
    }


def points(track: PoseTrack) -> dict[str, np.ndarray]:
    """Per part, (T, K, 2) keypoint positions."""
    return {"body": track.body[..., :2], "face": track.face[..., :2],
            "hands": track.hands[..., :2].reshape(len(track), -1, 2)}


@dataclass
class PartScore:
    """Sums over frames, so that scores of several runs can be added before averaging."""

    distance_sum: float = 0.0
    matched: int = 0  # keypoints present in both input and output
    missed: int = 0  # present in the input, not found on the output
    frames: int = 0

    @property
    def distance(self) -> float:
        return self.distance_sum / self.matched if self.matched else float("nan")

    @property
    def missed_per_frame(self) -> float:
        return self.missed / self.frames if self.frames else float("nan")

    def to_dict(self) -> dict[str, float | int]:
        return {"distance_px": _round(self.distance), "missed_per_frame": _round(self.missed_per_frame),
                "matched": self.matched, "missed": self.missed, "frames": self.frames}


def _round(value: float) -> float | None:
    return None if not np.isfinite(value) else round(float(value), 4)


def pose_scores(given: PoseTrack, found: PoseTrack, style: LabelStyle) -> dict[str, PartScore]:
    """Scores of the re-detected ``found`` against the ``given`` poses (same frames, same pixels)."""
    if len(given) != len(found):
        raise ValueError(f"{len(given)} input poses but {len(found)} re-detected")
    shown, seen = present(given, style), present(found, style)
    where_given, where_found = points(given), points(found)
    scores = {}
    for part in PARTS:
        both = shown[part] & seen[part]
        error = np.linalg.norm(where_given[part] - where_found[part], axis=-1)
        scores[part] = PartScore(float(error[both].sum()), int(both.sum()),
                                 int((shown[part] & ~seen[part]).sum()), len(given))
    return scores
