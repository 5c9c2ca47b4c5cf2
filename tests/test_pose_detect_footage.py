"""Holistic detection on short ranges of the real clips in ../shared/data."""

from __future__ import annotations

import mediapipe as mp
import numpy as np
import pytest

from backend.pose.detector import HolisticConfig, HolisticDetector, detect_video
from backend.pose.layout import BODY
from backend.pose.subject import mask_boxes
from backend.video import read_frames

pytestmark = pytest.mark.footage


def body_height(body: np.ndarray) -> float:
    seen = body[body[:, 2] > 0.3]
    return float(seen[:, 1].max() - seen[:, 1].min())


def hip_jumps(track) -> np.ndarray:
    """Moves of the hip centre between consecutive detected frames, in body heights."""
    jumps = [np.linalg.norm(track.body[t, BODY["MidHip"], :2] - track.body[t - 1, BODY["MidHip"], :2])
             / body_height(track.body[t])
             for t in range(1, len(track)) if track.detected[t] and track.detected[t - 1]]
    return np.asarray(jumps)


@pytest.fixture(scope="module")
def taiji(request):
    from tests.helpers import footage_path

    return detect_video(footage_path("target_taiji.mp4"), start=0, stop=24, progress=False,
                        use_cache=False)


@pytest.mark.slow
def test_taiji_every_frame_detected_and_recorded(taiji):
    assert len(taiji) == 24 and taiji.size == (1280, 720)
    assert taiji.fps == pytest.approx(23.976, abs=1e-3)
    assert taiji.detection_rate() == 1.0
    assert taiji.detector["name"] == "mediapipe_holistic"
    assert taiji.detector["mediapipe"] == mp.__version__
    assert taiji.detector["settings"]["model_complexity"] == 1
    assert (taiji.detector["start"], taiji.detector["stop"]) == (0, 24)


@pytest.mark.slow
def test_taiji_confident_keypoints_lie_inside_the_frame(taiji):
    width, height = taiji.size
    for part in (taiji.body, taiji.face, taiji.hands.reshape(len(taiji), -1, 3)):
        confident = part[part[..., 2] > 0.5]
        assert len(confident) > 0
        assert (confident[:, 0] >= 0).all() and (confident[:, 0] < width).all()
        assert (confident[:, 1] >= 0).all() and (confident[:, 1] < height).all()


@pytest.mark.slow
def test_taiji_anatomy_is_sane(taiji):
    for t in range(len(taiji)):
        body, face, hands = taiji.body[t], taiji.face[t], taiji.hands[t]
        size = body_height(body)
        p = {name: body[i, :2] for name, i in BODY.items()}
        shoulders_x = sorted((p["RShoulder"][0], p["LShoulder"][0]))
        assert shoulders_x[0] < p["Neck"][0] < shoulders_x[1]
        assert p["Nose"][1] < p["Neck"][1] < p["MidHip"][1]
        assert p["MidHip"][1] < p["LKnee"][1] < p["LAnkle"][1]
        assert p["MidHip"][1] < p["RKnee"][1] < p["RAnkle"][1]
        # He faces the camera: his left side is on the image's right.
        assert p["LShoulder"][0] > p["RShoulder"][0] and p["LHip"][0] > p["RHip"][0]
        # Hands belong to the wrists of the same side.
        for slot, wrist in ((0, "LWrist"), (1, "RWrist")):
            if hands[slot, 0, 2] > 0:
                assert np.linalg.norm(hands[slot, 0, :2] - p[wrist]) < 0.06 * size
        # The face sits on the body's nose, the pupils inside their eyes.
        assert np.linalg.norm(face[30, :2] - p["Nose"]) < 0.03 * size
        assert face[36, 0] < face[68, 0] < face[39, 0]  # right pupil between its corners
        assert face[42, 0] < face[69, 0] < face[45, 0]


@pytest.mark.slow
def test_two_people_default_subject_is_kept(footage):
    track = detect_video(footage("hard_two_people.avi"), start=0, stop=20, progress=False,
                         use_cache=False)
    assert track.detected.all()
    # The man on the right (more central) is chosen and kept.
    assert (track.body[:, BODY["MidHip"], 0] > 900).all()
    assert hip_jumps(track).max() < 0.03


@pytest.mark.slow
def test_hinted_subject_is_refound_after_being_hidden(footage):
    """The hint picks the man on the left; while he is hidden, the other man is not taken
    for him, and when he shows again he is found again."""
    config = HolisticConfig(subject_hint=(770, 600))
    hidden = range(6, 16)
    found, hip_x = [], []
    with HolisticDetector(config, fps=30.0) as detector:
        for t, frame in enumerate(read_frames(footage("hard_two_people.avi"), 0, 22)):
            if t in hidden:
                frame = mask_boxes(frame, [(600, 250, 900, 1000)])
            pose, ok = detector.process(frame, t)
            found.append(ok)
            hip_x.append(pose.body[BODY["MidHip"], 0])
    hip_x = np.asarray(hip_x)
    assert all(found[:6]) and all(found[17:])
    assert not any(found[t] and hip_x[t] > 900 for t in range(22))  # never the other man
    assert (np.abs(hip_x[found] - 765) < 40).all()


@pytest.mark.slow
def test_multi_person_subject_is_kept(footage):
    track = detect_video(footage("hard_multi_person.avi"), start=150, stop=172, progress=False,
                         use_cache=False)
    assert track.detected.all()
    assert hip_jumps(track).max() < 0.15  # a moving camera, a dancer: no jump to a bystander
    assert (np.abs(track.body[:, BODY["MidHip"], 0] - 700) < 120).all()


@pytest.mark.slow
def test_leaving_the_frame_gives_undetected_entries(footage):
    track = detect_video(footage("hard_leaves_frame.mp4"), start=330, stop=356, progress=False,
                         use_cache=False)
    assert len(track) == 26
    assert track.detected[:10].all()  # walking out at the right edge
    assert not track.detected[-8:].any()  # gone
    gone = ~track.detected
    assert not track.body[gone].any() and not track.face[gone].any() and not track.hands[gone].any()


@pytest.mark.slow
def test_cancelling_stops_detection_and_caches_nothing(footage, private_cache):
    from backend.errors import JobCancelled

    calls = []

    def report(done: int, total: int) -> None:
        calls.append((done, total))
        if done == 2:
            raise JobCancelled("stopped by the user")

    with pytest.raises(JobCancelled):
        detect_video(footage("target_taiji.mp4"), start=0, stop=10, progress=False, report=report)
    assert calls == [(1, 10), (2, 10)]
    assert not list((private_cache / "poses").glob("*.npz"))


@pytest.mark.slow
def test_downscaled_detection_reports_full_frame_pixels(footage):
    """With max_side, detection runs on a smaller copy; the hint and the keypoints stay in
    the pixels of the full 1920x1080 frame."""
    config = HolisticConfig(max_side=640, subject_hint=(770, 600))
    track = detect_video(footage("hard_two_people.avi"), config, start=0, stop=5, progress=False,
                         use_cache=False)
    assert track.size == (1920, 1080) and track.detected.all()
    assert (np.abs(track.body[:, BODY["MidHip"], 0] - 765) < 40).all()
