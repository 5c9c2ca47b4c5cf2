"""Choosing and keeping one subject: the logic of backend.pose.subject on made-up people."""

from __future__ import annotations

import numpy as np
import pytest

from backend.pose.subject import (
    Person,
    SubjectTracker,
    appearance_distance,
    choose_first,
    find_people,
    mask_boxes,
    person_from_pose,
    torso_appearance,
)

FRAME = (1280, 720)


def person(cx: float, height: float = 400.0, bottom: float = 650.0, appearance=None) -> Person:
    """A standing person of ``height`` pixels centred at x = ``cx``."""
    box = (cx - height / 6, bottom - height, cx + height / 6, bottom)
    return Person(box, (cx, bottom - height / 2), appearance)


def test_person_from_pose_box_anchor_and_size():
    pose = np.zeros((33, 3))
    pose[:, 0] = np.linspace(0.4, 0.6, 33)
    pose[:, 1] = np.linspace(0.1, 0.9, 33)
    pose[23, :2] = (0.48, 0.5)
    pose[24, :2] = (0.52, 0.5)
    p = person_from_pose(pose, FRAME)
    assert p.box == pytest.approx((512, 72, 768, 648))
    assert p.anchor == pytest.approx((640, 360))
    assert p.size == pytest.approx(576)
    assert p.appearance is None


def test_choose_first_prefers_large_and_central_people():
    edge_big = person(100, height=420)
    centre = person(660, height=400)
    small = person(640, height=150)
    assert choose_first([edge_big, centre, small], FRAME) == 1
    # A much larger person wins even off-centre.
    assert choose_first([person(300, height=650), centre], FRAME) == 0


def test_choose_first_with_a_hint_takes_the_person_at_that_point():
    people = [person(300), person(640), person(1000)]
    assert choose_first(people, FRAME, hint=(1010, 400)) == 2  # inside the third box
    assert choose_first(people, FRAME, hint=(420, 100)) == 0  # nearest box
    with pytest.raises(ValueError):
        choose_first([], FRAME)


def test_find_people_lists_everyone_a_single_person_detector_sees():
    image = np.zeros((720, 1280, 3), np.uint8)
    truth = [person(300, 500), person(700, 420), person(1100, 300)]
    for p in truth:
        x0, y0, x1, y1 = (int(v) for v in p.box)
        image[y0:y1, x0:x1] = 255

    def detect_largest_white(img: np.ndarray) -> Person | None:
        # A stand-in single-person detector: the tallest fully white column block.
        candidates = [p for p in truth
                      if (img[int(p.box[1]):int(p.box[3]), int(p.box[0]):int(p.box[2])] == 255).all()]
        return max(candidates, key=lambda p: p.size, default=None)

    found = find_people(image, detect_largest_white, max_people=5)
    assert [p.anchor[0] for p in found] == [300, 700, 1100]
    assert len(find_people(image, detect_largest_white, max_people=2)) == 2


def test_mask_boxes_greys_others_but_keeps_the_subject():
    image = np.full((100, 100, 3), 9, np.uint8)
    out = mask_boxes(image, [(0, 0, 60, 60)], keep=(40, 40, 100, 100))
    assert (out[10, 10] == 127).all()
    assert (out[50, 50] == 9).all()  # overlap with the kept box stays
    assert (image == 9).all()  # input untouched


def test_torso_appearance_tells_clothes_apart():
    xy = np.zeros((33, 2))
    xy[[11, 12, 23, 24]] = [(60, 20), (20, 20), (60, 80), (20, 80)]
    green = np.zeros((100, 100, 3), np.uint8)
    green[..., 1] = 180
    blue = np.zeros((100, 100, 3), np.uint8)
    blue[..., 2] = 180
    noise = np.random.default_rng(0).integers(-20, 20, green.shape)
    noisy_green = np.clip(green.astype(int) + noise, 0, 255).astype(np.uint8)
    a, b = torso_appearance(green, xy), torso_appearance(blue, xy)
    c = torso_appearance(noisy_green, xy)
    assert appearance_distance(a, c) < 0.3
    assert appearance_distance(a, b) > 0.9
    assert torso_appearance(green, xy + 500) is None  # torso outside the image


def test_tracker_accepts_small_moves_and_refuses_jumps_to_someone_else():
    tracker = SubjectTracker(fps=30)
    assert not tracker.acquired
    tracker.update(person(640), 0)
    assert tracker.accepts(person(660), 1)
    assert not tracker.accepts(person(900), 1)  # 0.6 body sizes in one frame
    assert not tracker.accepts(person(645, height=150), 1)  # a much smaller person
    # Out of sight for two seconds: the gate has opened.
    assert tracker.accepts(person(900), 60)


def test_tracker_checks_colours_after_a_gap():
    red, blue = np.zeros(128, np.float32), np.zeros(128, np.float32)
    red[3], blue[90] = 1, 1
    tracker = SubjectTracker(fps=30)
    tracker.update(person(640, appearance=red), 0)
    assert tracker.accepts(person(650, appearance=blue), 1)  # consecutive frames: position only
    assert not tracker.accepts(person(650, appearance=blue), 5)
    assert tracker.accepts(person(650, appearance=red), 5)


def test_tracker_reacquires_the_nearest_plausible_person():
    tracker = SubjectTracker(fps=25)
    tracker.update(person(640), 10)
    people = [person(200), person(700), person(1000)]
    assert tracker.choose(people, 12, FRAME) == 1
    assert tracker.choose([person(200)], 12, FRAME) is None
    assert tracker.choose([], 12, FRAME) is None


def test_tracker_searches_less_often_after_a_long_absence():
    tracker = SubjectTracker(fps=20, search_interval_s=0.25)
    assert tracker.should_search(0)  # nobody chosen yet
    tracker.update(person(640), 0)
    tracker.searched(0)
    assert tracker.should_search(10)  # lost for half a second
    tracker.searched(30)
    assert not tracker.should_search(32)
    assert tracker.should_search(35)
