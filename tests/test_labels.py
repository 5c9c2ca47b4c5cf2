"""Pose labels: official look (white, palette, blended limbs), determinism, scaling, mapping."""

from __future__ import annotations

import json

import numpy as np
import pytest

from backend.labels import LabelStyle, frame_mapping, render_label, render_track_labels
from backend.pose.layout import BODY, BODY_23_COLORS, BODY_23_FROM_25, BODY_25_COLORS
from backend.pose.track import FramePose, PoseTrack

POSE_SIZE = (1280, 720)
WHITE = np.array([255, 255, 255])


def standing_pose() -> FramePose:
    """A person standing in the middle of a 1280x720 frame, with face and hands."""
    pose = FramePose.empty()
    body = {
        "Nose": (640, 150), "Neck": (640, 220), "RShoulder": (580, 220), "RElbow": (560, 320),
        "RWrist": (550, 410), "LShoulder": (700, 220), "LElbow": (720, 320), "LWrist": (730, 410),
        "MidHip": (640, 400), "RHip": (610, 400), "RKnee": (605, 520), "RAnkle": (600, 640),
        "LHip": (670, 400), "LKnee": (675, 520), "LAnkle": (680, 640), "REye": (625, 140),
        "LEye": (655, 140), "REar": (610, 150), "LEar": (670, 150), "LBigToe": (700, 665),
        "LSmallToe": (710, 660), "LHeel": (675, 650), "RBigToe": (580, 665),
        "RSmallToe": (570, 660), "RHeel": (605, 650),
    }
    for name, xy in body.items():
        pose.body[BODY[name]] = (*xy, 0.9)
    rng = np.random.default_rng(0)
    pose.face[:, :2] = np.array([640, 150]) + rng.uniform(-20, 20, (70, 2))
    pose.face[:, 2] = 0.8
    for side, x in ((0, 730), (1, 550)):
        pose.hands[side, :, :2] = np.array([x, 430]) + rng.uniform(-15, 15, (21, 2))
        pose.hands[side, :, 2] = 0.6
    return pose


def only(pose: FramePose, names: list[str]) -> FramePose:
    """``pose`` with only the named body points (no face, no hands)."""
    out = FramePose.empty()
    for name in names:
        out.body[BODY[name]] = pose.body[BODY[name]]
    return out


def blended(color, background=(255, 255, 255), opacity=0.6) -> np.ndarray:
    return np.round((1 - opacity) * np.array(background) + opacity * np.array(color))


def test_same_input_gives_identical_bytes():
    pose = standing_pose()
    a = render_label(pose, POSE_SIZE, (512, 256))
    b = render_label(pose.copy(), POSE_SIZE, (512, 256))
    assert a.dtype == np.uint8 and a.shape == (256, 512, 3)
    assert a.tobytes() == b.tobytes()


def test_background_is_white_and_configurable():
    pose = standing_pose()
    img = render_label(pose, POSE_SIZE, (256, 128))
    assert (img[0, 0] == WHITE).all() and (img[-1, -1] == WHITE).all()
    grey = render_label(pose, POSE_SIZE, (256, 128), LabelStyle(background=(10, 20, 30)))
    assert tuple(grey[0, 0]) == (10, 20, 30)


@pytest.mark.parametrize("layout, colors, first", [
    ("BODY_25", BODY_25_COLORS, BODY["Neck"]),
    ("BODY_23", BODY_23_COLORS, BODY_23_FROM_25.index(BODY["Neck"])),
])
def test_limb_colour_at_its_midpoint(layout, colors, first):
    """Neck -> MidHip is drawn in the neck's colour, blended at 60 % over white (official)."""
    pose = only(standing_pose(), ["Neck", "MidHip"])
    img = render_label(pose, POSE_SIZE, (1280, 720), LabelStyle(body_layout=layout))
    mid = img[310, 640].astype(int)  # halfway between (640, 220) and (640, 400)
    np.testing.assert_allclose(mid, blended(colors[first]), atol=1)
    assert (img[310, 600] == WHITE).all()  # half-width 4 * 720/1080: nothing 40 px aside
    # The joints themselves are solid circles of the points' colours.
    np.testing.assert_array_equal(img[220, 640], colors[first])


def test_missing_points_are_not_drawn():
    pose = only(standing_pose(), ["Neck", "MidHip"])
    pose.body[BODY["MidHip"], 2] = 0.0  # MidHip missing: no limb, no MidHip joint
    img = render_label(pose, POSE_SIZE, (1280, 720))
    assert (img[310, 640] == WHITE).all() and (img[400, 640] == WHITE).all()
    assert not (img[220, 640] == WHITE).all()  # the neck is still there
    empty = render_label(FramePose.empty(), POSE_SIZE, (256, 128))
    assert (empty == 255).all()


def test_hand_and_face_thresholds():
    pose = standing_pose()
    body_only = render_label(only(pose, list(BODY)), POSE_SIZE, (1024, 576))
    with_all = render_label(pose, POSE_SIZE, (1024, 576))
    assert (with_all != body_only).any()
    unsure = pose.copy()
    unsure.hands[..., 2] = 0.04  # below the official 0.05
    unsure.face[:, 2] = 0.19  # mean below the official 0.2
    img = render_label(unsure, POSE_SIZE, (1024, 576))
    np.testing.assert_array_equal(img, render_label(only(pose, list(BODY)), POSE_SIZE, (1024, 576)))
    off = render_label(pose, POSE_SIZE, (1024, 576), LabelStyle(face=False, hands=False))
    np.testing.assert_array_equal(off, body_only)


def test_sizes_scale_with_output_height():
    pose = only(standing_pose(), ["Neck", "MidHip"])
    style = LabelStyle(antialias=False)
    big = render_label(pose, POSE_SIZE, (1920, 1080), style)
    small = render_label(pose, POSE_SIZE, (960, 540), style)

    def drawn_width(img, row):
        return int((img[row] != 255).any(axis=1).sum())

    # At 1080 px the limb is 2 * 4 = 8 px wide (+1 for the centre row of pixels), at 540 half.
    assert drawn_width(big, 465) in (8, 9)
    assert drawn_width(small, 232) in (4, 5)
    assert (big != 255).any(axis=2).sum() == pytest.approx(4 * (small != 255).any(axis=2).sum(),
                                                           rel=0.15)


def test_letterbox_and_stretch_mappings():
    portrait = (720, 1280)
    m = frame_mapping(portrait, (1024, 512), "letterbox")
    np.testing.assert_allclose(m.apply(np.array([[360.0, 640.0]])), [[512.0, 256.0]])
    np.testing.assert_allclose(m.apply(np.array([[0.0, 0.0], [720.0, 1280.0]])),
                               [[512 - 144, 0], [512 + 144, 512]])
    s = frame_mapping((1280, 720), (1024, 512), "stretch")
    np.testing.assert_allclose(s.apply(np.array([[1280.0, 720.0]])), [[1024.0, 512.0]])
    pose = FramePose.empty()
    pose.body[BODY["Neck"]] = (360, 640, 1.0)
    img = render_label(pose, portrait, (1024, 512), LabelStyle(body_layout="BODY_25"))
    np.testing.assert_array_equal(img[256, 512], BODY_25_COLORS[BODY["Neck"]])


def test_official_channel_swap_option():
    pose = only(standing_pose(), ["RShoulder"])
    style = LabelStyle(body_layout="BODY_25", swap_red_blue=True)
    img = render_label(pose, POSE_SIZE, (1280, 720), style)
    r, g, b = BODY_25_COLORS[BODY["RShoulder"]]
    np.testing.assert_array_equal(img[220, 580], (b, g, r))


def test_style_round_trips_through_json():
    style = LabelStyle(body_layout="BODY_25", face_points=70, background=(0, 0, 0), fit="stretch")
    again = LabelStyle.from_dict(json.loads(json.dumps(style.to_dict())))
    assert again == style
    assert LabelStyle.from_dict({}) == LabelStyle()
    with pytest.raises(ValueError):
        LabelStyle.from_dict({"joint_radus": 3})
    with pytest.raises(ValueError):
        LabelStyle(body_layout="COCO")


def test_track_labels_stream_one_per_frame():
    track = PoseTrack.empty(2, 25.0, POSE_SIZE)
    track.set_frame(0, standing_pose())
    track.detected[:] = [True, False]
    labels = list(render_track_labels(track, (128, 64)))
    assert len(labels) == 2 and labels[0].shape == (64, 128, 3) and (labels[1] == 255).all()
