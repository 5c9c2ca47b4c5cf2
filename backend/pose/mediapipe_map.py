"""MediaPipe Holistic landmarks -> OpenPose layouts (BODY_25, 70-point face, 2 x 21 hands).

Everything here is a pure function of numpy arrays, so it can be tested without running
MediaPipe. Inputs are MediaPipe's *normalized* landmarks (x, y in [0, 1] of the image that
was processed); outputs are pixels of a frame of ``size = (width, height)`` with one
confidence per point, as OpenPose writes them.

Decisions, in one place:

- **Body confidence** is MediaPipe's ``visibility`` (its estimate that the point is in the
  image and not occluded). Derived points (Neck = mid-shoulders, MidHip = mid-hips) take the
  lower confidence of their two sources.
- **Small toes** (BODY_25 20 and 23) are left undetected (confidence 0, x = y = 0). MediaPipe
  has one toe landmark per foot ("foot index", the tip of the foot, which we use as the big
  toe) and a heel; the side of the foot the small toe lies on cannot be told from 2D points
  reliably (it flips with the foot's rotation), and a guessed point would be drawn as if it
  were measured. The paper's BODY_23 drops the small toes anyway.
- **Face and hand confidence**: Holistic gives no per-point score for these, but it gives
  them only after finding the face or hand. Each face point gets the median visibility of the
  pose's face landmarks (nose, eyes, ears, mouth); each hand point the best visibility of the
  pose's wrist and finger landmarks on that side. A face seen from behind or a hand hidden
  behind the body therefore gets a low score.
- **Pupils** are the iris centres (landmarks 468 and 473, present with
  ``refine_face_landmarks=True``); without them, the centre of the six eye-contour points at
  half the face confidence.
- **Points outside the frame** keep their coordinates but their confidence is capped at
  `OUTSIDE_FRAME_CONFIDENCE`: MediaPipe extrapolates landmarks beyond the image edge, and
  OpenPose never reports such points.
- **Left and right** are the subject's own: MediaPipe's LEFT_* pose landmarks and Holistic's
  ``left_hand_landmarks`` belong to the person's left side (checked on a frontal frame of
  target_taiji.mp4: the left shoulder, left wrist and left hand's wrist lie on the image's
  right), which is OpenPose's convention too.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .layout import BODY, FACE_LEFT_EYE, FACE_LEFT_PUPIL, FACE_RIGHT_EYE, FACE_RIGHT_PUPIL
from .track import N_BODY, N_FACE, N_HAND, FramePose

OUTSIDE_FRAME_CONFIDENCE = 0.05

# MediaPipe Pose landmark indices (mp.solutions.pose.PoseLandmark), spelled out so this
# module does not need mediapipe to import.
MP_NOSE, MP_LEFT_EYE, MP_RIGHT_EYE, MP_LEFT_EAR, MP_RIGHT_EAR = 0, 2, 5, 7, 8
MP_LEFT_SHOULDER, MP_RIGHT_SHOULDER = 11, 12
MP_LEFT_ELBOW, MP_RIGHT_ELBOW, MP_LEFT_WRIST, MP_RIGHT_WRIST = 13, 14, 15, 16
MP_LEFT_HIP, MP_RIGHT_HIP, MP_LEFT_KNEE, MP_RIGHT_KNEE = 23, 24, 25, 26
MP_LEFT_ANKLE, MP_RIGHT_ANKLE, MP_LEFT_HEEL, MP_RIGHT_HEEL = 27, 28, 29, 30
MP_LEFT_FOOT_INDEX, MP_RIGHT_FOOT_INDEX = 31, 32
MP_FACE_POINTS = tuple(range(0, 11))  # nose, eyes, ears, mouth corners
MP_LEFT_HAND_POINTS = (MP_LEFT_WRIST, 17, 19, 21)  # wrist, pinky, index, thumb
MP_RIGHT_HAND_POINTS = (MP_RIGHT_WRIST, 18, 20, 22)
N_MP_POSE = 33

# BODY_25 point -> the MediaPipe pose landmarks it is the mean of (None: not measured).
BODY_25_FROM_MP: dict[int, tuple[int, ...] | None] = {
    BODY["Nose"]: (MP_NOSE,),
    BODY["Neck"]: (MP_LEFT_SHOULDER, MP_RIGHT_SHOULDER),
    BODY["RShoulder"]: (MP_RIGHT_SHOULDER,),
    BODY["RElbow"]: (MP_RIGHT_ELBOW,),
    BODY["RWrist"]: (MP_RIGHT_WRIST,),
    BODY["LShoulder"]: (MP_LEFT_SHOULDER,),
    BODY["LElbow"]: (MP_LEFT_ELBOW,),
    BODY["LWrist"]: (MP_LEFT_WRIST,),
    BODY["MidHip"]: (MP_LEFT_HIP, MP_RIGHT_HIP),
    BODY["RHip"]: (MP_RIGHT_HIP,),
    BODY["RKnee"]: (MP_RIGHT_KNEE,),
    BODY["RAnkle"]: (MP_RIGHT_ANKLE,),
    BODY["LHip"]: (MP_LEFT_HIP,),
    BODY["LKnee"]: (MP_LEFT_KNEE,),
    BODY["LAnkle"]: (MP_LEFT_ANKLE,),
    BODY["REye"]: (MP_RIGHT_EYE,),
    BODY["LEye"]: (MP_LEFT_EYE,),
    BODY["REar"]: (MP_RIGHT_EAR,),
    BODY["LEar"]: (MP_LEFT_EAR,),
    BODY["LBigToe"]: (MP_LEFT_FOOT_INDEX,),
    BODY["LSmallToe"]: None,
    BODY["LHeel"]: (MP_LEFT_HEEL,),
    BODY["RBigToe"]: (MP_RIGHT_FOOT_INDEX,),
    BODY["RSmallToe"]: None,
    BODY["RHeel"]: (MP_RIGHT_HEEL,),
}

# iBUG-68 point -> the face-mesh landmarks it is the mean of. Correspondences from
# Peizhi Yan's "Mediapipe_2_Dlib_Landmarks" (https://github.com/PeizhiYan/Mediapipe_2_Dlib_Landmarks,
# mediapipe2dlib/mp2dlib.py, published on PyPI as `mediapipe2dlib`), where a dlib point
# between two mesh vertices is their average. Both use the subject's own right/left: iBUG
# 36-41 and mesh vertex 33 are the right eye (checked on a real frame).
FACE_68_FROM_MESH: tuple[tuple[int, ...], ...] = (
    # jaw 0-16, from the subject's right ear round the chin to the left ear
    (127,), (234,), (93,), (132, 58), (58, 172), (136,), (150,), (176,), (152,),
    (400,), (379,), (365,), (397, 288), (361,), (323,), (454,), (356,),
    # right brow 17-21 (outer to inner), left brow 22-26 (inner to outer)
    (70,), (63,), (105,), (66,), (107,),
    (336,), (296,), (334,), (293,), (300,),
    # nose bridge 27-30, nose bottom 31-35
    (168, 6), (197, 195), (5,), (4,),
    (75,), (97,), (2,), (326,), (305,),
    # right eye 36-41, left eye 42-47 (corner, upper lid, corner, lower lid)
    (33,), (160,), (158,), (133,), (153,), (144,),
    (362,), (385,), (387,), (263,), (373,), (380,),
    # outer lips 48-59 (right corner, upper lip, left corner, lower lip)
    (61,), (39,), (37,), (0,), (267,), (269,), (291,), (321,), (314,), (17,), (84,), (91,),
    # inner lips 60-67
    (78,), (82,), (13,), (312,), (308,), (317,), (14,), (87,),
)
MESH_RIGHT_IRIS_CENTER, MESH_LEFT_IRIS_CENTER = 468, 473
N_MESH, N_MESH_REFINED = 468, 478


def landmark_array(landmarks: Any, with_visibility: bool = False) -> np.ndarray | None:
    """A MediaPipe ``NormalizedLandmarkList`` (or None) as an (N, 2) or (N, 3) float array.

    Columns are x, y (normalized) and, with ``with_visibility``, the visibility. Anything
    with a ``.landmark`` sequence of objects having ``x``, ``y`` (and ``visibility``) works.
    """
    if landmarks is None:
        return None
    points = landmarks.landmark
    if with_visibility:
        return np.array([(p.x, p.y, p.visibility) for p in points], np.float64).reshape(-1, 3)
    return np.array([(p.x, p.y) for p in points], np.float64).reshape(-1, 2)


def to_pixels(xy: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Normalized (N, 2) coordinates -> pixels of a ``size = (width, height)`` frame."""
    return np.asarray(xy, np.float64)[:, :2] * np.asarray(size, np.float64)


def cap_outside_frame(points: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Cap the confidence of (N, 3) pixel points lying outside the frame; returns a copy."""
    out = np.array(points, np.float64)
    width, height = size
    x, y = out[:, 0], out[:, 1]
    outside = (x < 0) | (y < 0) | (x > width - 1) | (y > height - 1)
    out[outside, 2] = np.minimum(out[outside, 2], OUTSIDE_FRAME_CONFIDENCE)
    return out


def body25_from_pose(pose: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """BODY_25 (25, 3) pixels + confidence from MediaPipe's 33 pose landmarks (x, y, visibility)."""
    pose = np.asarray(pose, np.float64)
    if pose.shape != (N_MP_POSE, 3):
        raise ValueError(f"expected (33, 3) pose landmarks (x, y, visibility), got {pose.shape}")
    xy = to_pixels(pose[:, :2], size)
    visibility = np.clip(pose[:, 2], 0.0, 1.0)
    body = np.zeros((N_BODY, 3), np.float64)
    for index, sources in BODY_25_FROM_MP.items():
        if sources is None:
            continue  # not measured: stays (0, 0, 0)
        body[index, :2] = xy[list(sources)].mean(axis=0)
        body[index, 2] = visibility[list(sources)].min()
    return cap_outside_frame(body, size).astype(np.float32)


def face_score(pose: np.ndarray) -> float:
    """How much to trust the face landmarks: median visibility of the pose's face points."""
    return float(np.median(np.clip(np.asarray(pose)[list(MP_FACE_POINTS), 2], 0.0, 1.0)))


def hand_score(pose: np.ndarray, side: str) -> float:
    """How much to trust one hand's landmarks: best visibility of the pose's hand points."""
    points = MP_LEFT_HAND_POINTS if side == "left" else MP_RIGHT_HAND_POINTS
    return float(np.clip(np.asarray(pose)[list(points), 2], 0.0, 1.0).max())


def face70_from_mesh(mesh: np.ndarray, size: tuple[int, int], score: float) -> np.ndarray:
    """The 70-point OpenPose face (68 iBUG points + right, left pupil) from the face mesh.

    ``mesh`` is (468, 2) or (478, 2) normalized; ``score`` the confidence of every point.
    """
    mesh = np.asarray(mesh, np.float64)
    if mesh.ndim != 2 or mesh.shape[0] not in (N_MESH, N_MESH_REFINED):
        raise ValueError(f"expected (468, 2) or (478, 2) face mesh landmarks, got {mesh.shape}")
    xy = to_pixels(mesh, size)
    face = np.zeros((N_FACE, 3), np.float64)
    for index, sources in enumerate(FACE_68_FROM_MESH):
        face[index, :2] = xy[list(sources)].mean(axis=0)
    face[:68, 2] = score
    if mesh.shape[0] == N_MESH_REFINED:
        face[FACE_RIGHT_PUPIL] = (*xy[MESH_RIGHT_IRIS_CENTER], score)
        face[FACE_LEFT_PUPIL] = (*xy[MESH_LEFT_IRIS_CENTER], score)
    else:  # no iris landmarks: the middle of the eye contour, trusted less
        face[FACE_RIGHT_PUPIL] = (*face[list(FACE_RIGHT_EYE), :2].mean(axis=0), score / 2)
        face[FACE_LEFT_PUPIL] = (*face[list(FACE_LEFT_EYE), :2].mean(axis=0), score / 2)
    return cap_outside_frame(face, size).astype(np.float32)


def hand21_from_landmarks(hand: np.ndarray, size: tuple[int, int], score: float) -> np.ndarray:
    """OpenPose's 21 hand points from MediaPipe's 21 (the same layout and order)."""
    hand = np.asarray(hand, np.float64)
    if hand.shape[0] != N_HAND:
        raise ValueError(f"expected 21 hand landmarks, got {hand.shape}")
    out = np.zeros((N_HAND, 3), np.float64)
    out[:, :2] = to_pixels(hand, size)
    out[:, 2] = score
    return cap_outside_frame(out, size).astype(np.float32)


def frame_pose_from_holistic(
    pose: np.ndarray | None,
    face: np.ndarray | None,
    left_hand: np.ndarray | None,
    right_hand: np.ndarray | None,
    size: tuple[int, int],
) -> FramePose:
    """One frame's `FramePose` from Holistic's landmark arrays (None where not found).

    ``pose`` is (33, 3) with visibility, the others (N, 2). Without a pose there is no
    subject, so everything stays undetected.
    """
    result = FramePose.empty()
    if pose is None:
        return result
    result.body[:] = body25_from_pose(pose, size)
    if face is not None:
        result.face[:] = face70_from_mesh(face, size, face_score(pose))
    for slot, side, hand in ((0, "left", left_hand), (1, "right", right_hand)):
        if hand is not None:
            result.hands[slot] = hand21_from_landmarks(hand, size, hand_score(pose, side))
    return result


def frame_pose_from_results(results: Any, size: tuple[int, int]) -> FramePose:
    """`FramePose` from a Holistic ``process()`` result on the frame (or a resized copy of it:
    normalized coordinates do not depend on the resolution)."""
    return frame_pose_from_holistic(
        landmark_array(results.pose_landmarks, with_visibility=True),
        landmark_array(results.face_landmarks),
        landmark_array(results.left_hand_landmarks),
        landmark_array(results.right_hand_landmarks),
        size,
    )
