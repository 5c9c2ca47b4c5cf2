"""The demo performer: exact motions, a deterministic drawing, clips, and MediaPipe seeing a person."""

from __future__ import annotations

import numpy as np
import pytest

from backend.demo import (LOOKS, Appearance, Proportions, background, dance_motion, make_clip,
                          make_demo_clip, render_performer, target_motion)
from backend.demo.skeleton import REST_POSE, keypoints_3d, nearest_distance, stage_camera
from backend.errors import InputError
from backend.pose.layout import BODY
from backend.pose.track import PoseTrack

FPS = 15.0  # few frames cover many seconds of motion


def visible_points(track: PoseTrack) -> np.ndarray:
    """Every visible keypoint of every frame, (N, 2) pixels."""
    pts = np.concatenate([track.body.reshape(-1, 3), track.face.reshape(-1, 3), track.hands.reshape(-1, 3)])
    return pts[pts[:, 2] > 0, :2]


def body_height(track: PoseTrack) -> np.ndarray:
    """Nose to the middle of the ankles, per frame (pixels)."""
    ankles = (track.body[:, BODY["RAnkle"], :2] + track.body[:, BODY["LAnkle"], :2]) / 2
    return np.linalg.norm(track.body[:, BODY["Nose"], :2] - ankles, axis=1)


# -- motions --------------------------------------------------------------------------

@pytest.mark.parametrize("motion", [dance_motion, target_motion])
def test_motion_is_deterministic_per_seed(motion):
    a = motion(40, FPS, (200, 160), seed=3)
    b = motion(40, FPS, (200, 160), seed=3)
    c = motion(40, FPS, (200, 160), seed=4)
    for name in ("body", "face", "hands"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert not np.allclose(a.body, c.body)
    assert a.detected.all() and a.size == (200, 160) and a.fps == FPS
    assert a.detector["name"] == "demo-performer"


@pytest.mark.parametrize("size", [(256, 256), (384, 216), (216, 384)])
@pytest.mark.parametrize("motion", [dance_motion, target_motion])
def test_motion_stays_in_frame(motion, size):
    # 30 s: every dance move appears, the target walks near and far more than once.
    for seed in (0, 1):
        track = motion(450, FPS, size, seed=seed)
        pts = visible_points(track)
        assert pts[:, 0].min() >= 0 and pts[:, 0].max() <= size[0] - 1
        assert pts[:, 1].min() >= 0 and pts[:, 1].max() <= size[1] - 1
        # Confidence 1 everywhere except an ear turned away from the camera.
        assert np.all(track.face[..., 2] == 1) and np.all(track.hands[..., 2] == 1)
        others = np.delete(track.body, [BODY["REar"], BODY["LEar"]], axis=1)
        assert np.all(others[..., 2] == 1)


def test_target_walks_near_and_far():
    size = (320, 240)
    track = target_motion(600, FPS, size, seed=0)
    ankle_y = track.body[:, [BODY["RAnkle"], BODY["LAnkle"]], 1].max(axis=1)
    height = body_height(track)
    assert np.ptp(ankle_y) > 0.12 * size[1]
    # Like a person approaching a camera: lower feet, taller body.
    assert np.corrcoef(ankle_y, height)[0, 1] > 0.9
    close, far = ankle_y >= np.percentile(ankle_y, 90), ankle_y <= np.percentile(ankle_y, 10)
    assert height[close].mean() > 1.4 * height[far].mean()


def test_target_covers_a_wide_range_of_poses():
    track = target_motion(600, FPS, (256, 256), seed=2)
    b = track.body
    torso = np.linalg.norm(b[:, BODY["Neck"], :2] - b[:, BODY["MidHip"], :2], axis=1)
    for wrist in (BODY["RWrist"], BODY["LWrist"]):
        above_head = b[:, wrist, 1] < b[:, BODY["Nose"], 1]
        below_hips = b[:, wrist, 1] > b[:, BODY["MidHip"], 1]
        assert above_head.mean() > 0.05 and below_hips.mean() > 0.05
        reach = np.linalg.norm(b[:, wrist, :2] - b[:, BODY["Neck"], :2], axis=1) / torso
        assert reach.min() < 0.7 and reach.max() > 1.3  # bent in, stretched out
    shoulders = np.abs(b[:, BODY["RShoulder"], 0] - b[:, BODY["LShoulder"], 0]) / torso
    assert shoulders.min() < 0.6 * shoulders.max()  # turns to the side


def test_dance_raises_arms_lifts_knees_and_opens_hands():
    track = dance_motion(600, FPS, (256, 256), seed=0)
    b = track.body
    both_up = (b[:, BODY["RWrist"], 1] < b[:, BODY["Nose"], 1]) & (b[:, BODY["LWrist"], 1] < b[:, BODY["Nose"], 1])
    assert both_up.mean() > 0.05
    lift = np.abs(b[:, BODY["RAnkle"], 1] - b[:, BODY["LAnkle"], 1]) / body_height(track)
    assert lift.max() > 0.15  # a knee lift or a step
    hand_span = np.linalg.norm(track.hands[:, :, 12, :2] - track.hands[:, :, 0, :2], axis=-1)
    assert (hand_span.max(axis=0) > 1.5 * hand_span.min(axis=0)).all()  # fists and open hands
    head_turn = (b[:, BODY["Nose"], 0] - b[:, BODY["Neck"], 0]) / body_height(track)
    assert np.ptp(head_turn) > 0.05


def test_face_and_hands_follow_head_and_wrists():
    for track in (dance_motion(150, FPS, (256, 256), seed=1), target_motion(150, FPS, (256, 256), seed=1)):
        # The torso (neck to mid-hip) is 0.5 m and seldom foreshortened: a ruler.
        torso = np.linalg.norm(track.body[:, BODY["Neck"], :2] - track.body[:, BODY["MidHip"], :2], axis=1)
        height = torso[:, None]
        nose = track.body[:, None, BODY["Nose"], :2]
        face_dist = np.linalg.norm(track.face[..., :2] - nose, axis=-1) / height
        assert face_dist.max() < 0.35  # no face point is more than ~0.15 m from the nose
        np.testing.assert_allclose(track.face[:, 30, :2], track.body[:, BODY["Nose"], :2])
        for hand, wrist in ((0, BODY["LWrist"]), (1, BODY["RWrist"])):
            np.testing.assert_allclose(track.hands[:, hand, 0, :2], track.body[:, wrist, :2], atol=1e-3)
            reach = np.linalg.norm(track.hands[:, hand, :, :2] - track.body[:, None, wrist, :2], axis=-1) / height
            assert reach.max() < 0.55  # a hand is ~0.19 m long
            # The hand points on along the forearm: the middle knuckle is beyond the wrist.
            forearm = track.body[:, wrist, :2] - track.body[:, wrist - 1, :2]
            knuckle = track.hands[:, hand, 9, :2] - track.body[:, wrist, :2]
            cos = np.sum(forearm * knuckle, axis=1) / (
                np.linalg.norm(forearm, axis=1) * np.linalg.norm(knuckle, axis=1) + 1e-9)
            assert np.median(cos) > 0.5


def test_bigger_performer_is_taller_at_the_same_distance():
    pose = dict(REST_POSE)
    small, big = keypoints_3d(pose, Proportions(size=0.9)), keypoints_3d(pose, Proportions(size=1.1))
    assert big.head_top[1] / small.head_top[1] == pytest.approx(1.1 / 0.9, rel=0.02)
    camera = stage_camera((256, 256))
    assert nearest_distance(camera, 1.1) > nearest_distance(camera, 1.0)


def test_bad_motion_arguments():
    with pytest.raises(ValueError):
        dance_motion(0)
    with pytest.raises(ValueError):
        target_motion(10, fps=0)
    with pytest.raises(ValueError):
        stage_camera((8, 8))


# -- drawing --------------------------------------------------------------------------

def test_render_is_deterministic_and_draws_a_person():
    track = dance_motion(10, FPS, (160, 120), seed=0)
    a = render_performer(track.frame(5), (160, 120))
    b = render_performer(track.frame(5), (160, 120))
    assert a.dtype == np.uint8 and a.shape == (120, 160, 3)
    np.testing.assert_array_equal(a, b)
    changed = np.any(a != background((160, 120)), axis=2)
    ys, xs = np.nonzero(changed)
    body = track.body[5]
    # The drawing covers the body's keypoints and not much beyond.
    assert xs.min() <= body[:, 0].min() and xs.max() >= body[:, 0].max()
    assert ys.min() <= body[:, 1].min() and ys.max() >= body[:, 1].max()
    assert 0.05 < changed.mean() < 0.5
    # The background itself is not blank.
    assert background((160, 120)).std() > 10


def test_render_colours_and_missing_points():
    track = dance_motion(3, FPS, (128, 128), seed=0)
    pose = track.frame(0).copy()
    red, teal = render_performer(pose, (128, 128), LOOKS["red"]), render_performer(pose, (128, 128), LOOKS["teal"])
    assert not np.array_equal(red, teal)
    # A frame with no keypoints is the empty room; a canvas of the wrong size is refused.
    pose.body[:] = 0
    np.testing.assert_array_equal(render_performer(pose, (128, 128)), background((128, 128)))
    with pytest.raises(ValueError):
        render_performer(track.frame(0), (128, 128), canvas=np.zeros((10, 10, 3), np.uint8))


def test_appearance_is_a_plain_dataclass():
    look = Appearance(shirt=(0, 0, 255))
    assert look.shirt == (0, 0, 255) and look.skin == Appearance().skin


# -- clips ----------------------------------------------------------------------------

def test_make_clip_writes_png_frames_and_the_track(tmp_path):
    import cv2

    track = dance_motion(4, FPS, (96, 80), seed=0)
    out = make_clip(tmp_path / "frames", track, track_path=tmp_path / "truth.npz", progress=False)
    assert out is track
    files = sorted((tmp_path / "frames").iterdir())
    assert [f.name for f in files] == ["000001.png", "000002.png", "000003.png", "000004.png"]
    first = cv2.cvtColor(cv2.imread(str(files[0])), cv2.COLOR_BGR2RGB)
    np.testing.assert_array_equal(first, render_performer(track.frame(0), (96, 80)))
    np.testing.assert_array_equal(PoseTrack.load(tmp_path / "truth.npz").body, track.body)
    # A folder that already holds frames is refused, and left as it was.
    with pytest.raises(InputError, match="frames"):
        make_clip(tmp_path / "frames", dance_motion(2, FPS, (96, 80), seed=1), progress=False)
    assert len(list((tmp_path / "frames").iterdir())) == 4


def test_make_demo_clip_writes_an_mp4(tmp_path):
    from backend.video import probe, read_frames

    track = make_demo_clip(tmp_path / "dance.mp4", "dance", n_frames=6, fps=FPS, size=(96, 80),
                           progress=False)
    info = probe(tmp_path / "dance.mp4")
    assert (info.width, info.height, info.frame_count) == (96, 80, 6) and len(track) == 6
    frame = next(iter(read_frames(tmp_path / "dance.mp4")))
    expected = render_performer(track.frame(0), (96, 80)).astype(int)
    assert np.abs(frame.astype(int) - expected).mean() < 6  # H.264 is lossy
    with pytest.raises(ValueError, match="motion"):
        make_demo_clip(tmp_path / "x.mp4", "moonwalk", n_frames=2)


# -- a real pose detector sees a person -----------------------------------------------

# MediaPipe pose landmark -> BODY_25 index: shoulders, elbows, wrists, hips, knees, ankles.
MEDIAPIPE_TO_BODY_25 = {11: 5, 12: 2, 13: 6, 14: 3, 15: 7, 16: 4, 23: 12, 24: 9, 25: 13, 26: 10,
                        27: 14, 28: 11}


def holistic_scores(track: PoseTrack, frames: np.ndarray, look: Appearance) -> tuple[float, float]:
    """Detection rate of MediaPipe Holistic on rendered frames, and its mean body keypoint
    error as a fraction of the body height (nose to ankles)."""
    import mediapipe as mp

    width, height = track.size
    found, errors = 0, []
    with mp.solutions.holistic.Holistic(static_image_mode=True, model_complexity=1) as holistic:
        for i in frames:
            result = holistic.process(render_performer(track.frame(i), track.size, look))
            if result.pose_landmarks is None:
                continue
            found += 1
            marks = result.pose_landmarks.landmark
            truth = track.body[i]
            scale = body_height(track)[i]
            errors += [np.hypot(marks[m].x * width - truth[k, 0], marks[m].y * height - truth[k, 1]) / scale
                       for m, k in MEDIAPIPE_TO_BODY_25.items()]
    return found / len(frames), float(np.mean(errors)) if errors else float("inf")


@pytest.mark.slow
@pytest.mark.parametrize("motion,size,look", [
    (dance_motion, (256, 256), "red"),
    (target_motion, (384, 288), "teal"),
])
def test_mediapipe_holistic_sees_the_performer(motion, size, look):
    pytest.importorskip("mediapipe")
    track = motion(450, FPS, size, seed=5)
    frames = np.linspace(0, len(track) - 1, 14).astype(int)
    rate, error = holistic_scores(track, frames, LOOKS[look])
    # Measured: 100% found, errors of 2-3% of the body height.
    assert rate >= 0.9
    assert error < 0.05
