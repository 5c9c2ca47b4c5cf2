"""The person's silhouette in every frame: MediaPipe Pose's segmentation mask.

BlazePose (inside the pinned mediapipe wheel, model_complexity 1, offline) predicts, with the
landmarks, a soft mask of the person it tracks: 1 on the body, 0 on the background, soft at
the edges. Measured on target_taiji.mp4 it covers the whole body, hands and feet included,
where the selfie-segmentation model (10 times faster) loses the legs and lets the wall show
through the arms; so the pose model is used (about 17 frames/s at 720p on one core). It
follows one person, as the pose track does.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .detector import check_model_available


class PersonSegmenter:
    """``segmenter(frame)`` -> the soft person mask (float32 H x W in [0, 1], zeros where
    nobody is found) of consecutive RGB frames of one video. A context manager."""

    def __init__(self) -> None:
        import mediapipe as mp

        check_model_available(1)
        self._pose: Any = mp.solutions.pose.Pose(
            static_image_mode=False, model_complexity=1, enable_segmentation=True,
            smooth_segmentation=True)

    def __call__(self, frame: np.ndarray) -> np.ndarray:
        mask = self._pose.process(np.ascontiguousarray(frame)).segmentation_mask
        if mask is None:
            return np.zeros(frame.shape[:2], np.float32)
        return np.clip(mask, 0.0, 1.0).astype(np.float32, copy=False)

    def __enter__(self) -> "PersonSegmenter":
        return self

    def __exit__(self, *exc: object) -> None:
        self._pose.close()
