"""A small 3D human skeleton: joint angles in, exact OpenPose keypoints out.

The demo performer is a stick of bones with plausible adult proportions (1.75 m tall).
A pose is a dictionary of joint angles in degrees (see ``REST_POSE`` for every name);
``keypoints_3d`` turns it into 3D points by forward kinematics and ``project`` places
them on the image of a pinhole camera standing on the same floor. Because the camera is
above the floor, a performer walking towards it grows *and* its feet move down the
image, as with a real person: what global pose normalization looks for.

Body frame (metres): x is the performer's left, y is up, z is forward; the origin is on
the floor under the pelvis. A performer with yaw 0 faces the camera, so its left side
is on the right of the image, as for a real person seen from the front.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..pose.layout import BODY
from ..pose.track import N_BODY, N_FACE, N_HAND, FramePose

# Every joint angle (degrees) or amount (0..1) a motion can set; the values are a
# relaxed standing pose. ``r_``/``l_`` prefixes are the performer's right and left.
REST_POSE: dict[str, float] = {
    "x": 0.0,  # metres, sideways on the floor (+ = right of the image)
    "dist": 2.5,  # metres from the camera
    "yaw": 0.0,  # body turned to its left (+) or right (-)
    "pelvis_tilt": 0.0,  # sideways tilt of the hips
    "chest_twist": 0.0,
    "chest_side": 0.0,  # sideways bend of the spine
    "chest_lean": 3.0,  # forward bend of the spine
    "head_yaw": 0.0,
    "head_pitch": 0.0,  # nodding down (+)
    "head_roll": 0.0,
    "mouth_open": 0.1,  # 0..1
    "brow_raise": 0.0,  # 0..1
    "gaze_x": 0.0,  # -1..1, pupils to the image's right (+)
}
for _side in ("r_", "l_"):
    REST_POSE.update({
        _side + "hip_flex": 0.0,  # thigh forward (+)
        _side + "hip_abd": 4.0,  # thigh outward
        _side + "knee": 3.0,  # knee bend
        _side + "foot_out": 8.0,  # toes turned outward
        _side + "shoulder_abd": 8.0,  # arm raised sideways (90 = horizontal)
        _side + "shoulder_flex": 5.0,  # arm raised forward
        _side + "arm_twist": 0.0,  # outward turn of the upper arm: elbow bends up (+)
        _side + "elbow": 15.0,
        _side + "pronation": 60.0,  # 0: palm forward, 90: palm to the body
        _side + "wrist": 0.0,  # wrist bend towards the palm
        _side + "curl": 0.25,  # fingers: 0 open .. 1 fist
        _side + "spread": 0.3,  # fingers spread 0..1
    })


@dataclass(frozen=True)
class Proportions:
    """Bone lengths in metres of a 1.75 m adult (anthropometric averages).

    ``size`` scales the whole person (face and hands included): 1.1 is a 1.93 m tall
    performer, 0.9 one of 1.58 m; source and target of different heights are what
    global pose normalization is for.
    """

    size: float = 1.0
    thigh: float = 0.43
    shin: float = 0.42
    ankle_height: float = 0.085
    hip_half_width: float = 0.095
    spine: float = 0.50  # mid-hip to neck (OpenPose's neck: the base of the neck)
    shoulder_half_width: float = 0.175
    upper_arm: float = 0.29
    forearm: float = 0.255
    neck_pivot: float = 0.08  # neck keypoint to where the head turns
    head_center: float = 0.10  # that pivot to the centre of the skull


@dataclass(frozen=True)
class Camera:
    """A pinhole camera on a tripod, facing the performer; pixels of a ``size`` frame."""

    size: tuple[int, int]  # (width, height)
    focal: float  # pixels
    horizon: float  # pixel row of the principal point
    height_m: float = 1.0  # camera height above the floor

    def project(self, points: np.ndarray, x: float, dist: float, yaw_deg: float) -> np.ndarray:
        """Pixels (N, 2) of body-frame points of a performer standing at ``x``, ``dist``."""
        world = points @ _ry(np.radians(yaw_deg)).T
        # Camera frame (OpenCV): x right, y down, z away from the camera. The performer
        # faces the camera, so its forward (+z) points to -z and its up (+y) to -y.
        cx = world[:, 0] + x
        cy = self.height_m - world[:, 1]
        cz = np.maximum(dist - world[:, 2], 0.1)
        u = self.size[0] / 2 + self.focal * cx / cz
        v = self.horizon + self.focal * cy / cz
        return np.stack([u, v], axis=1)


# The stage, for a performer of size 1: fingertips of raised arms reach 2.2 m above the
# floor and 0.95 m to either side. Margins are fractions of the frame height.
REACH_M, ARM_SPAN_M = 2.2, 0.95
TOP_MARGIN, BOTTOM_MARGIN, SIDE_MARGIN = 0.03, 0.08, 0.03


def stage_camera(size: tuple[int, int], camera_height_m: float = 1.0) -> Camera:
    """The camera for a ``size`` frame, framed for a performer of size 1.

    At the nearest distance (`nearest_distance`) such a performer with raised arms just
    fits in the frame: the floor under it lies ``BOTTOM_MARGIN`` above the lower edge
    (room for toes and steps towards the camera), the hands stay ``TOP_MARGIN`` below the
    upper edge and ``SIDE_MARGIN`` off the sides.
    """
    width, height = size
    if width < 16 or height < 16:
        raise ValueError(f"frame size {size} is too small for the demo performer")
    focal = float(height)  # a normal lens: about 53 degrees of vertical view
    usable = (1.0 - TOP_MARGIN - BOTTOM_MARGIN) * height
    near = max(focal * REACH_M / usable, focal * ARM_SPAN_M / (width / 2 - SIDE_MARGIN * height))
    # Centre the performer's reach (feet to raised hands) between the margins; in a wide
    # frame it fills them, in a narrow one the arm span keeps it further away.
    above = focal * (REACH_M - camera_height_m) / near
    below = focal * camera_height_m / near
    horizon = (TOP_MARGIN * height + (1.0 - BOTTOM_MARGIN) * height + above - below) / 2
    return Camera(size=(width, height), focal=focal, horizon=horizon, height_m=camera_height_m)


def nearest_distance(camera: Camera, body_size: float = 1.0) -> float:
    """How close a performer of ``body_size`` may come with feet, raised hands and
    outstretched arms all in the frame."""
    width, height = camera.size
    f, h = camera.focal, camera.height_m
    feet = f * h / ((1.0 - BOTTOM_MARGIN) * height - camera.horizon)
    hands = f * (REACH_M * body_size - h) / max(camera.horizon - TOP_MARGIN * height, 1.0)
    sides = f * ARM_SPAN_M * body_size / (width / 2 - SIDE_MARGIN * height)
    return max(feet, hands, sides)


def _rx(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[1, 0, 0], [0, c, -s], [0, s, c]])


def _ry(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, 0, s], [0, 1, 0], [-s, 0, c]])


def _rz(a: float) -> np.ndarray:
    c, s = np.cos(a), np.sin(a)
    return np.array([[c, -s, 0], [s, c, 0], [0, 0, 1]])


def _deg(pose: dict[str, float], name: str) -> float:
    return float(np.radians(pose[name]))


DOWN = np.array([0.0, -1.0, 0.0])


# -- face: the 68 iBUG points plus two pupils, in metres around the skull centre ------

def face_template(mouth_open: float, brow_raise: float, gaze_x: float) -> np.ndarray:
    """The 70 face points (x = the face's left, y up, z forward) of a neutral face."""
    pts = np.zeros((N_FACE, 3))
    opening = 0.016 * float(np.clip(mouth_open, 0, 1))
    # Jaw 0-16 from the right ear (image left) round the chin; the chin drops as the mouth opens.
    s = np.pi * np.arange(17) / 16
    pts[0:17] = np.stack([-0.068 * np.cos(s), -0.005 - (0.112 + 0.5 * opening) * np.sin(s) ** 1.2,
                          0.005 + 0.08 * np.sin(s)], axis=1)
    # Brows 17-21 (right, outer to inner) and 22-26 (left, inner to outer): arches.
    lift = 0.007 * float(np.clip(brow_raise, 0, 1))
    k = np.arange(5) / 4
    brow_x = -0.058 + 0.046 * k
    brow_y = 0.036 + lift + 0.009 * np.sin(np.pi * (0.2 + 0.7 * k))
    pts[17:22] = np.stack([brow_x, brow_y, 0.078 + 0.01 * k], axis=1)
    pts[22:27] = pts[17:22][::-1] * [-1, 1, 1]
    # Nose: bridge 27-30 down to the tip, then the base 31-35 from right to left.
    k = np.arange(4) / 3
    pts[27:31] = np.stack([0 * k, 0.018 - 0.05 * k, 0.09 + 0.026 * k], axis=1)
    pts[31:36] = np.array([[-0.017, -0.038, 0.094], [-0.009, -0.042, 0.101], [0, -0.044, 0.105],
                           [0.009, -0.042, 0.101], [0.017, -0.038, 0.094]])
    # Eyes: 36-41 right (outer corner, top, top, inner corner, bottom, bottom), 42-47 left.
    right_eye = np.array([[-0.046, 0.012], [-0.037, 0.0175], [-0.027, 0.0175],
                          [-0.018, 0.012], [-0.027, 0.0065], [-0.037, 0.0065]])
    pts[36:42] = np.c_[right_eye, [0.080, 0.084, 0.086, 0.087, 0.086, 0.084]]
    left = pts[36:42][[3, 2, 1, 0, 5, 4]] * [-1, 1, 1]
    pts[42:48] = left
    # Lips: outer 48-59 from the right corner over the top and back under; inner 60-67.
    outer_top = np.array([[-0.025, -0.071], [-0.016, -0.064], [-0.006, -0.061], [0.0, -0.063],
                          [0.006, -0.061], [0.016, -0.064], [0.025, -0.071]])
    outer_bottom = np.array([[0.016, -0.079], [0.006, -0.083], [0.0, -0.084],
                             [-0.006, -0.083], [-0.016, -0.079]])
    outer_bottom[:, 1] -= opening
    pts[48:55, :2], pts[55:60, :2] = outer_top, outer_bottom
    inner = np.array([[-0.020, -0.071], [-0.008, -0.068], [0.0, -0.068], [0.008, -0.068],
                      [0.020, -0.071], [0.008, -0.074], [0.0, -0.074], [-0.008, -0.074]])
    inner[5:, 1] -= opening
    pts[60:68, :2] = inner
    pts[48:68, 2] = 0.096 - 0.5 * np.abs(pts[48:68, 0])  # lips curve round the face
    # Pupils: the eye centres, moved by the gaze.
    shift = 0.004 * float(np.clip(gaze_x, -1, 1))
    pts[68] = [-0.032 + shift, 0.012, 0.088]
    pts[69] = [0.032 + shift, 0.012, 0.088]
    return pts


HEAD_EARS = np.array([[-0.075, -0.005, -0.005], [0.075, -0.005, -0.005]])  # right, left


# -- hands: 21 points of a left hand; a right hand is its mirror image ---------------

# Knuckles (MCP) of index, middle, ring and pinky; lengths of their three bones.
_KNUCKLES = np.array([[0.026, -0.088, 0], [0.008, -0.092, 0], [-0.010, -0.087, 0],
                      [-0.026, -0.078, 0]])
_BONES = np.array([[0.040, 0.024, 0.020], [0.045, 0.028, 0.022], [0.042, 0.026, 0.021],
                   [0.033, 0.019, 0.018]])
_SPLAY = np.radians([8.0, 0.0, -8.0, -16.0])  # finger directions fan out from the middle


def hand_template(curl: float, spread: float) -> np.ndarray:
    """21 points of a left hand: palm facing +z, fingers down (-y), thumb on the +x side."""
    curl = float(np.clip(curl, 0, 1))
    pts = np.zeros((N_HAND, 3))
    z = np.array([0.0, 0.0, 1.0])
    for f in range(4):
        splay = _SPLAY[f] * (0.4 + float(np.clip(spread, 0, 1)))
        d0 = np.array([np.sin(splay), -np.cos(splay), 0.0])
        p = _KNUCKLES[f].copy()
        pts[5 + 4 * f] = p
        bend = 0.0
        for j, (length, angle) in enumerate(zip(_BONES[f], (75.0, 100.0, 65.0))):
            bend += np.radians(angle) * curl  # each joint folds further towards the palm
            p = p + length * (d0 * np.cos(bend) + z * np.sin(bend))
            pts[6 + 4 * f + j] = p
    # Thumb: base (CMC), knuckle (MCP), then two bones that fold across the palm.
    pts[1] = [0.022, -0.024, 0.012]
    pts[2] = [0.042, -0.052, 0.022]
    d_open = np.array([0.45, -0.88, 0.15])
    d_fold = np.array([-0.55, -0.45, 0.70])
    p = pts[2].copy()
    for j, length in enumerate((0.032, 0.027)):
        t = curl * (0.6 + 0.4 * j)
        d = d_open * (1 - t) + d_fold * t
        p = p + length * d / np.linalg.norm(d)
        pts[3 + j] = p
    return pts


# -- forward kinematics ---------------------------------------------------------------

@dataclass
class Points3D:
    """Body-frame 3D points of one pose and which of them the camera can see."""

    body: np.ndarray  # (25, 3)
    face: np.ndarray  # (70, 3)
    hands: np.ndarray  # (2, 21, 3) left, right
    head_top: np.ndarray  # (3,)
    ear_dirs: np.ndarray  # (2, 3) outward directions of the right and left ear


# Each side of the body: its prefix in a pose, its sign along x (the performer's left is +x),
# its BODY_25 names and its hand's index in a track.
_SIDES = (("r_", -1.0, "R", 1), ("l_", 1.0, "L", 0))
_FEET = [BODY[n] for n in ("LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel")]


def _leg(pose: dict[str, float], prop: Proportions, body: np.ndarray, pelvis_rot: np.ndarray,
         side: str, sign: float, name: str) -> None:
    """Hip, knee, ankle and foot of one leg, into ``body``."""
    hip = body[BODY["MidHip"]] + pelvis_rot @ [sign * prop.hip_half_width, 0, 0]
    thigh_rot = pelvis_rot @ _rz(sign * _deg(pose, side + "hip_abd")) @ _rx(-_deg(pose, side + "hip_flex"))
    knee = hip + thigh_rot @ (DOWN * prop.thigh)
    shin_rot = thigh_rot @ _rx(_deg(pose, side + "knee"))
    ankle = knee + shin_rot @ (DOWN * prop.shin)
    # The foot stays nearly level, pointing where the hips point, toes turned out;
    # it tips down a little when the shin swings back (a lifted heel).
    shin_dir = shin_rot @ DOWN
    shin_back = np.arctan2(-shin_dir[2], -shin_dir[1])
    foot_rot = pelvis_rot @ _ry(sign * _deg(pose, side + "foot_out")) @ _rx(0.6 * max(shin_back, 0.0))
    points = {
        "Hip": hip, "Knee": knee, "Ankle": ankle,
        "BigToe": ankle + foot_rot @ [-sign * 0.025, -0.070, 0.165],
        "SmallToe": ankle + foot_rot @ [sign * 0.035, -0.072, 0.135],
        "Heel": ankle + foot_rot @ [0.0, -0.068, -0.055],
    }
    for joint, point in points.items():
        body[BODY[name + joint]] = point


def _arm(pose: dict[str, float], prop: Proportions, body: np.ndarray, chest_rot: np.ndarray,
         side: str, sign: float, name: str) -> np.ndarray:
    """Shoulder, elbow and wrist of one arm, into ``body``; returns its hand's 21 points."""
    shoulder = body[BODY["Neck"]] + chest_rot @ [sign * prop.shoulder_half_width, -0.025, -0.01]
    upper_rot = (chest_rot @ _rz(sign * _deg(pose, side + "shoulder_abd"))
                 @ _rx(-_deg(pose, side + "shoulder_flex")) @ _ry(sign * _deg(pose, side + "arm_twist")))
    elbow = shoulder + upper_rot @ (DOWN * prop.upper_arm)
    fore_rot = upper_rot @ _rx(-_deg(pose, side + "elbow"))
    wrist = elbow + fore_rot @ (DOWN * prop.forearm)
    for joint, point in (("Shoulder", shoulder), ("Elbow", elbow), ("Wrist", wrist)):
        body[BODY[name + joint]] = point
    hand_rot = fore_rot @ _ry(-sign * _deg(pose, side + "pronation")) @ _rx(-_deg(pose, side + "wrist"))
    local = hand_template(pose[side + "curl"], pose[side + "spread"]) * [sign, 1, 1]  # mirrored for the right
    return wrist + local @ hand_rot.T


def keypoints_3d(pose: dict[str, float], prop: Proportions = Proportions()) -> Points3D:
    """Forward kinematics: every keypoint of ``pose`` with the lower foot on the floor."""
    body = np.zeros((N_BODY, 3))
    hands = np.zeros((2, N_HAND, 3))
    # The hips turn a little against the chest, as in a twist.
    pelvis_rot = _ry(_deg(pose, "chest_twist") * -0.3) @ _rz(_deg(pose, "pelvis_tilt"))
    body[BODY["MidHip"]] = [0.0, prop.thigh + prop.shin + prop.ankle_height, 0.0]
    chest_rot = _ry(_deg(pose, "chest_twist")) @ _rz(_deg(pose, "chest_side")) @ _rx(_deg(pose, "chest_lean"))
    body[BODY["Neck"]] = body[BODY["MidHip"]] + chest_rot @ [0, prop.spine, 0]
    for side, sign, name, hand in _SIDES:
        _leg(pose, prop, body, pelvis_rot, side, sign, name)
        hands[hand] = _arm(pose, prop, body, chest_rot, side, sign, name)

    head_rot = (chest_rot @ _ry(_deg(pose, "head_yaw")) @ _rx(_deg(pose, "head_pitch"))
                @ _rz(_deg(pose, "head_roll")))
    center = body[BODY["Neck"]] + chest_rot @ [0, prop.neck_pivot, 0] + head_rot @ [0, prop.head_center, 0.015]
    face = center + face_template(pose["mouth_open"], pose["brow_raise"], pose["gaze_x"]) @ head_rot.T
    body[BODY["Nose"]] = face[30]
    body[BODY["REye"]], body[BODY["LEye"]] = face[68], face[69]
    body[BODY["REar"]], body[BODY["LEar"]] = center + HEAD_EARS @ head_rot.T
    head_top = center + head_rot @ [0, 0.125, -0.01]

    # Scale to the performer's size, then stand on the floor: shift everything so that
    # the lowest foot point touches it.
    k = prop.size
    shift = np.array([0.0, k * body[_FEET, 1].min() - 0.012, 0.0])
    return Points3D(k * body - shift, k * face - shift, k * hands - shift, k * head_top - shift,
                    np.stack([head_rot @ [-1, 0, 0], head_rot @ [1, 0, 0]]))


def project_pose(points: Points3D, camera: Camera, x: float, dist: float, yaw: float,
                 hidden_ear_after_deg: float = 30.0) -> FramePose:
    """The FramePose that ``camera`` sees; an ear turned away from it has confidence 0.

    Everything else is visible (confidence 1), as OpenPose reports a person seen from
    the front or three-quarters, which is all the demo motions do.
    """
    frame = FramePose.empty()
    frame.body[:, :2] = camera.project(points.body, x, dist, yaw)
    frame.face[:, :2] = camera.project(points.face, x, dist, yaw)
    frame.hands[:, :, :2] = camera.project(points.hands.reshape(-1, 3), x, dist, yaw).reshape(2, N_HAND, 2)
    frame.body[:, 2] = frame.face[:, 2] = 1.0
    frame.hands[:, :, 2] = 1.0
    # An ear is hidden once it points away from the camera (the camera is at +z).
    towards_camera = (points.ear_dirs @ _ry(np.radians(yaw)).T)[:, 2]
    for ear, facing in zip((BODY["REar"], BODY["LEar"]), towards_camera):
        if facing < -np.sin(np.radians(hidden_ear_after_deg)):
            frame.body[ear] = 0.0
    return frame
