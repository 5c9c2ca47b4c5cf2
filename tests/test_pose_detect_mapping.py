"""MediaPipe -> OpenPose mapping, on hand-built landmark lists (no MediaPipe run)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from backend.pose import mediapipe_map as mm
from backend.pose.layout import BODY, FACE_LEFT_PUPIL, FACE_RIGHT_PUPIL

SIZE = (640, 480)


def standing_pose(visibility: float = 0.9) -> np.ndarray:
    """33 normalized MediaPipe pose landmarks of a person facing the camera.

    Facing the camera, the subject's left side is on the image's right (larger x).
    """
    pose = np.full((33, 3), 0.5)
    pose[:, 2] = visibility

    def put(index: int, x: float, y: float) -> None:
        pose[index, :2] = (x, y)

    put(mm.MP_NOSE, 0.50, 0.15)
    put(mm.MP_LEFT_EYE, 0.52, 0.13)
    put(mm.MP_RIGHT_EYE, 0.48, 0.13)
    put(mm.MP_LEFT_EAR, 0.54, 0.14)
    put(mm.MP_RIGHT_EAR, 0.46, 0.14)
    put(mm.MP_LEFT_SHOULDER, 0.60, 0.30)
    put(mm.MP_RIGHT_SHOULDER, 0.40, 0.30)
    put(mm.MP_LEFT_ELBOW, 0.65, 0.45)
    put(mm.MP_RIGHT_ELBOW, 0.35, 0.45)
    put(mm.MP_LEFT_WRIST, 0.66, 0.58)
    put(mm.MP_RIGHT_WRIST, 0.34, 0.58)
    put(mm.MP_LEFT_HIP, 0.56, 0.60)
    put(mm.MP_RIGHT_HIP, 0.44, 0.60)
    put(mm.MP_LEFT_KNEE, 0.56, 0.75)
    put(mm.MP_RIGHT_KNEE, 0.44, 0.75)
    put(mm.MP_LEFT_ANKLE, 0.56, 0.90)
    put(mm.MP_RIGHT_ANKLE, 0.44, 0.90)
    put(mm.MP_LEFT_HEEL, 0.555, 0.92)
    put(mm.MP_RIGHT_HEEL, 0.445, 0.92)
    put(mm.MP_LEFT_FOOT_INDEX, 0.58, 0.94)
    put(mm.MP_RIGHT_FOOT_INDEX, 0.42, 0.94)
    return pose


def test_body25_points_in_pixels_with_derived_neck_and_midhip():
    pose = standing_pose()
    pose[mm.MP_LEFT_SHOULDER, 2] = 0.7  # neck takes the lower shoulder confidence
    body = mm.body25_from_pose(pose, SIZE)
    assert body.shape == (25, 3) and body.dtype == np.float32
    np.testing.assert_allclose(body[BODY["Nose"]], (320, 72, 0.9), rtol=1e-6)
    np.testing.assert_allclose(body[BODY["Neck"]], (320, 144, 0.7), rtol=1e-6)
    np.testing.assert_allclose(body[BODY["MidHip"]], (320, 288, 0.9), rtol=1e-6)
    np.testing.assert_allclose(body[BODY["LWrist"], :2], (0.66 * 640, 0.58 * 480), rtol=1e-6)
    np.testing.assert_allclose(body[BODY["RAnkle"], :2], (0.44 * 640, 0.90 * 480), rtol=1e-6)
    np.testing.assert_allclose(body[BODY["LBigToe"], :2], (0.58 * 640, 0.94 * 480), rtol=1e-6)
    np.testing.assert_allclose(body[BODY["RHeel"], :2], (0.445 * 640, 0.92 * 480), rtol=1e-6)
    # The subject's left is on the image's right when they face the camera.
    assert body[BODY["LShoulder"], 0] > body[BODY["RShoulder"], 0]
    assert body[BODY["LEar"], 0] > body[BODY["REar"], 0]


def test_small_toes_are_not_measured():
    body = mm.body25_from_pose(standing_pose(), SIZE)
    for name in ("LSmallToe", "RSmallToe"):
        assert tuple(body[BODY[name]]) == (0, 0, 0)


def test_confidence_follows_visibility_and_is_capped_outside_the_frame():
    pose = standing_pose()
    pose[mm.MP_RIGHT_KNEE, 2] = 0.2
    pose[mm.MP_LEFT_ANKLE] = (0.56, 1.1, 0.95)  # below the frame's bottom edge
    pose[mm.MP_RIGHT_WRIST] = (-0.05, 0.5, 0.99)  # left of the frame
    body = mm.body25_from_pose(pose, SIZE)
    assert body[BODY["RKnee"], 2] == pytest.approx(0.2)
    assert body[BODY["LAnkle"], 2] == pytest.approx(mm.OUTSIDE_FRAME_CONFIDENCE)
    assert body[BODY["LAnkle"], 1] == pytest.approx(1.1 * 480)  # position kept
    assert body[BODY["RWrist"], 2] == pytest.approx(mm.OUTSIDE_FRAME_CONFIDENCE)
    assert body[BODY["Nose"], 2] == pytest.approx(0.9)


def face_mesh(points: int = 478) -> np.ndarray:
    """A synthetic mesh: vertex i at a distinct, known place, so mapped points can be checked."""
    i = np.arange(points)
    return np.stack([0.3 + 0.4 * (i % 23) / 22, 0.1 + 0.3 * (i // 23) / 21], axis=1)


def test_face70_uses_the_mesh_correspondences_and_iris_centres():
    mesh = face_mesh(478)
    face = mm.face70_from_mesh(mesh, SIZE, score=0.8)
    assert face.shape == (70, 3)
    px = mesh * SIZE
    np.testing.assert_allclose(face[8, :2], px[152], rtol=1e-5)  # chin
    np.testing.assert_allclose(face[36, :2], px[33], rtol=1e-5)  # right eye, outer corner
    np.testing.assert_allclose(face[45, :2], px[263], rtol=1e-5)  # left eye, outer corner
    np.testing.assert_allclose(face[27, :2], (px[168] + px[6]) / 2, rtol=1e-5)  # averaged pair
    np.testing.assert_allclose(face[FACE_RIGHT_PUPIL, :2], px[468], rtol=1e-5)
    np.testing.assert_allclose(face[FACE_LEFT_PUPIL, :2], px[473], rtol=1e-5)
    np.testing.assert_allclose(face[:, 2], 0.8, rtol=1e-6)


def test_face_mapping_table_is_68_distinct_valid_points():
    assert len(mm.FACE_68_FROM_MESH) == 68
    assert all(0 <= v < 468 for sources in mm.FACE_68_FROM_MESH for v in sources)
    assert len({sources for sources in mm.FACE_68_FROM_MESH}) == 68


def test_pupils_without_iris_landmarks_are_eye_centres_at_half_confidence():
    mesh = face_mesh(468)
    face = mm.face70_from_mesh(mesh, SIZE, score=0.8)
    np.testing.assert_allclose(face[FACE_RIGHT_PUPIL, :2], face[36:42, :2].mean(axis=0), rtol=1e-5)
    assert face[FACE_LEFT_PUPIL, 2] == pytest.approx(0.4)


def test_face_mesh_of_wrong_size_is_refused():
    with pytest.raises(ValueError):
        mm.face70_from_mesh(np.zeros((100, 2)), SIZE, 1.0)


def test_hands_keep_mediapipe_order_and_take_the_pose_hand_confidence():
    pose = standing_pose()
    pose[[15, 17, 19, 21], 2] = (0.3, 0.6, 0.2, 0.1)  # left wrist, pinky, index, thumb
    hand = np.linspace((0.6, 0.55), (0.7, 0.7), 21)
    frame = mm.frame_pose_from_holistic(pose, face_mesh(), hand, None, SIZE)
    np.testing.assert_allclose(frame.hands[0, :, :2], hand * SIZE, rtol=1e-5)
    np.testing.assert_allclose(frame.hands[0, :, 2], 0.6, rtol=1e-6)
    assert not frame.hands[1].any()  # right hand not found: all zero
    assert frame.face[:68, 2].min() == pytest.approx(0.9)  # median visibility of face points


def test_no_pose_means_nothing_detected():
    frame = mm.frame_pose_from_holistic(None, face_mesh(), None, None, SIZE)
    assert not frame.body.any() and not frame.face.any() and not frame.hands.any()


def _landmark_list(rows):
    return SimpleNamespace(landmark=[SimpleNamespace(x=r[0], y=r[1], visibility=r[2] if len(r) > 2 else 0.0)
                                     for r in rows])


def test_frame_pose_from_holistic_results_objects():
    pose = standing_pose()
    results = SimpleNamespace(
        pose_landmarks=_landmark_list(pose),
        face_landmarks=_landmark_list(face_mesh()),
        left_hand_landmarks=None,
        right_hand_landmarks=_landmark_list(np.full((21, 2), 0.3)),
    )
    frame = mm.frame_pose_from_results(results, SIZE)
    np.testing.assert_allclose(frame.body, mm.body25_from_pose(pose, SIZE), rtol=1e-6)
    assert frame.face[FACE_LEFT_PUPIL, 2] > 0
    assert not frame.hands[0].any() and frame.hands[1, :, 2].min() > 0
    assert mm.landmark_array(None) is None
