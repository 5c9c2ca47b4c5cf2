"""Importing OpenPose JSON folders (files written by the tests)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from backend.errors import InputError
from backend.pose.layout import BODY, COCO_18_TO_BODY_25
from backend.pose.openpose_json import load_openpose_folder


def body25(cx: float, height: float = 400.0, conf: float = 0.8) -> np.ndarray:
    """A crude standing BODY_25 skeleton centred at x = cx, feet at y = 650."""
    body = np.zeros((25, 3))
    top = 650 - height
    for i in range(25):
        body[i] = (cx + (i % 5 - 2) * height / 20, top + height * (i / 24), conf)
    body[BODY["MidHip"]] = (cx, top + height * 0.5, conf)
    body[BODY["RSmallToe"]] = (0, 0, 0)  # an undetected point, as OpenPose writes it
    return body


def person_json(body: np.ndarray | None, face: bool = True, hands: bool = True) -> dict:
    person: dict = {"person_id": [-1]}
    if body is not None:
        person["pose_keypoints_2d"] = body.ravel().tolist()
    if face:
        person["face_keypoints_2d"] = np.tile((body[0, 0], body[0, 1], 0.7), 70).tolist()
    if hands:
        person["hand_left_keypoints_2d"] = np.tile((body[7, 0], body[7, 1], 0.6), 21).tolist()
        person["hand_right_keypoints_2d"] = []  # OpenPose writes empty arrays for misses
    return person


def write_frame(folder: Path, number: int, people: list[dict], name: str = "clip") -> Path:
    path = folder / f"{name}_{number:012d}_keypoints.json"
    path.write_text(json.dumps({"version": 1.3, "people": people}))
    return path


def test_body25_folder_follows_one_person_whatever_their_order(tmp_path):
    # Two people; the subject (centre, larger) walks right; the list order changes.
    for t in range(6):
        subject = person_json(body25(640 + 10 * t, height=420))
        other = person_json(body25(200, height=380), face=False, hands=False)
        write_frame(tmp_path, t, [subject, other] if t % 2 else [other, subject])
    track = load_openpose_folder(tmp_path, size=(1280, 720), fps=30)
    assert len(track) == 6 and track.detected.all()
    assert track.size == (1280, 720) and track.fps == 30
    np.testing.assert_allclose(track.body[:, BODY["MidHip"], 0], 640 + 10 * np.arange(6))
    np.testing.assert_allclose(track.face[:, :, 2], 0.7, rtol=1e-6)
    np.testing.assert_allclose(track.hands[:, 0, :, 2], 0.6, rtol=1e-6)
    assert not track.hands[:, 1].any()  # right hand: empty array means not detected
    assert track.detector["name"] == "openpose_json"
    assert track.detector["body_layout"] == "BODY_25"


def test_subject_hint_picks_the_other_person(tmp_path):
    for t in range(3):
        write_frame(tmp_path, t, [person_json(body25(640)), person_json(body25(200))])
    track = load_openpose_folder(tmp_path, size=(1280, 720), subject_hint=(210, 400))
    np.testing.assert_allclose(track.body[:, BODY["MidHip"], 0], 200)


def test_missing_frames_and_people_are_undetected_entries(tmp_path):
    write_frame(tmp_path, 1, [person_json(body25(640))])
    write_frame(tmp_path, 2, [])
    write_frame(tmp_path, 4, [person_json(body25(645))])  # file 3 missing
    track = load_openpose_folder(tmp_path, size=(1280, 720))
    assert track.detector["first_frame"] == 1
    assert track.detected.tolist() == [True, False, False, True]
    assert not track.body[1].any() and not track.body[2].any()


def test_coco18_bodies_are_placed_into_body25(tmp_path):
    full = body25(640)
    coco = full[list(COCO_18_TO_BODY_25)]
    write_frame(tmp_path, 0, [{"pose_keypoints_2d": coco.ravel().tolist()}])
    track = load_openpose_folder(tmp_path, size=(1280, 720))
    body = track.body[0]
    np.testing.assert_allclose(body[list(COCO_18_TO_BODY_25)], coco, rtol=1e-6)
    hips = full[[BODY["RHip"], BODY["LHip"]], :2].mean(axis=0)
    np.testing.assert_allclose(body[BODY["MidHip"], :2], hips, rtol=1e-6)
    assert body[BODY["LBigToe"], 2] == 0  # COCO has no feet
    assert not track.face.any()  # no face array: not detected
    assert track.detector["body_layout"] == "COCO_18"


def test_normalized_keypoints_are_scaled_with_the_size(tmp_path):
    body = body25(640)
    body[:, :2] /= (1280, 720)
    write_frame(tmp_path, 0, [{"pose_keypoints_2d": body.ravel().tolist()}])
    track = load_openpose_folder(tmp_path, size=(1280, 720))
    assert track.body[0, BODY["MidHip"], 0] == pytest.approx(640)
    with pytest.raises(InputError, match="normalized"):
        load_openpose_folder(tmp_path)


def test_size_is_estimated_when_not_given(tmp_path):
    write_frame(tmp_path, 0, [person_json(body25(640))])
    track = load_openpose_folder(tmp_path)
    assert track.detector["size_estimated"] is True
    assert track.size[0] > track.body[0, :, 0].max() and track.size[1] > track.body[0, :, 1].max()


def test_bad_json_names_the_file(tmp_path):
    write_frame(tmp_path, 0, [person_json(body25(640))])
    bad = tmp_path / "clip_000000000001_keypoints.json"
    bad.write_text('{"people": [ {"pose_keypoints_2d": [1, 2')
    with pytest.raises(InputError) as info:
        load_openpose_folder(tmp_path, size=(1280, 720))
    assert info.value.path == bad and bad.name in str(info.value)


@pytest.mark.parametrize("content, problem", [
    ({"people": [{"pose_keypoints_2d": [1.0] * 30}]}, "10 points"),
    ({"people": [{"pose_keypoints_2d": [1.0] * 31}]}, "triples"),
    ({"people": [{"pose_keypoints_2d": body25(640).ravel().tolist(),
                  "face_keypoints_2d": [1.0] * 9}]}, "face_keypoints_2d has 3 points"),
    ({"frames": []}, "people"),
])
def test_malformed_keypoints_are_input_errors(tmp_path, content, problem):
    path = tmp_path / "x_000000000000_keypoints.json"
    path.write_text(json.dumps(content))
    with pytest.raises(InputError, match=problem) as info:
        load_openpose_folder(tmp_path, size=(1280, 720))
    assert info.value.path == path


def test_empty_or_missing_folder(tmp_path):
    with pytest.raises(InputError, match="no OpenPose"):
        load_openpose_folder(tmp_path)
    with pytest.raises(InputError, match="not a folder"):
        load_openpose_folder(tmp_path / "absent")
