"""Detector settings: validation, the record a track keeps, offline model availability."""

from __future__ import annotations

import json
from pathlib import Path

import mediapipe as mp
import pytest

from backend.errors import BackendError
from backend.pose.detector import HolisticConfig, check_model_available, detector_record


def test_defaults_and_record_are_plain_json():
    config = HolisticConfig(subject_hint=(100, 200.5))
    record = detector_record(config, 5, 50)
    assert json.loads(json.dumps(record)) == record
    assert record["mediapipe"] == mp.__version__
    assert record["settings"] == {
        "model_complexity": 1, "refine_face_landmarks": True, "min_detection_confidence": 0.5,
        "min_tracking_confidence": 0.5, "smooth_landmarks": True, "subject_hint": [100.0, 200.5],
        "max_people": 4, "max_side": None,
    }
    assert (record["start"], record["stop"]) == (5, 50)


@pytest.mark.parametrize("changes", [{"model_complexity": 3}, {"max_people": 0},
                                     {"subject_hint": (1, 2, 3)}, {"max_side": 10}])
def test_invalid_settings_are_refused(changes):
    with pytest.raises(ValueError):
        HolisticConfig(**changes)


def test_missing_model_is_a_clear_error():
    check_model_available(1)  # ships in the wheel
    lite = Path(mp.__file__).parent / "modules" / "pose_landmark" / "pose_landmark_lite.tflite"
    if lite.is_file():
        pytest.skip("the lite model was downloaded on this machine")
    with pytest.raises(BackendError, match="model_complexity=0"):
        check_model_available(0)
