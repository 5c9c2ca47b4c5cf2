"""Global pose normalization against values worked out by hand on tiny synthetic tracks.

A "stick" subject stands upright: nose straight above the middle of its ankles at distance
``height``, so its body height (head to ankle midpoint) is exactly ``height``.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest

from backend.errors import InputError
from backend.normalize import (Adjustments, NoAnklesWarning, NormalizationStats, compute_stats,
                               normalize_track, plan_transforms)
from backend.pose.layout import BODY
from backend.pose.track import PoseTrack


def stick_track(ankles, heights, size=(1000, 1000), x=500.0, fps=25.0) -> PoseTrack:
    """One upright subject per frame, ankle line at ``ankles[i]``, body height ``heights[i]``."""
    n = len(ankles)
    track = PoseTrack.empty(n, fps, size, {"name": "synthetic"})
    for i, (a, h) in enumerate(zip(ankles, heights)):
        b = track.body[i]
        b[BODY["Nose"]] = (x, a - h, 1)
        b[BODY["Neck"]] = (x, a - 0.85 * h, 1)
        b[BODY["RShoulder"]] = (x - 0.12 * h, a - 0.82 * h, 1)
        b[BODY["LShoulder"]] = (x + 0.12 * h, a - 0.82 * h, 1)
        b[BODY["MidHip"]] = (x, a - 0.5 * h, 1)
        b[BODY["RAnkle"]] = (x - 0.05 * h, a, 1)
        b[BODY["LAnkle"]] = (x + 0.05 * h, a, 1)
        track.face[i, :, :2] = (x, a - 0.95 * h)
        track.face[i, :, 2] = 0.9
        track.hands[i, :, :, :2] = (x + 0.2 * h, a - 0.45 * h)
        track.hands[i, :, :, 2] = 0.7
    track.detected[:] = True
    return track


# Target: ankles from 900 (close) up to 780; heights = ankle - 300.
#   close = 900, median = 840, limit = 840 - 0.7 * 60 = 798 -> far = 800 (observed, > 798)
#   5 % bands (of 100 px): only the frames at 900 and at 800 -> close height 600, far 500.
T_ANKLES = [900, 880, 860, 840, 820, 800, 780]
T_HEIGHTS = [a - 300 for a in T_ANKLES]
# Source: ankles 600 (close) up to 480; heights = ankle - 300.
#   close = 600, median = 540, limit = 498 -> far = 500; close height 300, far 200.
#   scale_close = 600 / 300 = 2, scale_far = 500 / 200 = 2.5.
S_ANKLES = [600, 580, 560, 540, 520, 500, 480]
S_HEIGHTS = [a - 300 for a in S_ANKLES]


def test_stats_by_hand():
    stats = compute_stats(stick_track(T_ANKLES, T_HEIGHTS))
    assert stats.method == "ankles" and stats.n_usable == 7 and stats.frame_size == (1000, 1000)
    assert stats.close_y == 900 and stats.median_y == 840 and stats.far_y == 800
    assert stats.close_height == pytest.approx(600) and stats.far_height == pytest.approx(500)
    assert not stats.close_height_reset


def test_ten_percent_rule_resets_close_height():
    heights = list(T_HEIGHTS)
    heights[0] = 400  # crouched at the close position; the tallest frame is 580 px
    stats = compute_stats(stick_track(T_ANKLES, heights))
    assert stats.close_height_reset and stats.close_height == pytest.approx(580)


def test_undetected_frames_do_not_count():
    track = stick_track(T_ANKLES + [990], T_HEIGHTS + [50])
    track.detected[-1] = False  # a held/filled frame must not become the "close" position
    assert compute_stats(track).close_y == 900


def test_twice_as_big_source_lands_on_the_target():
    target = stick_track(T_ANKLES, T_HEIGHTS)
    source = stick_track([2 * a for a in T_ANKLES], [2 * h for h in T_HEIGHTS],
                         size=(2000, 2000), x=1000.0)
    out = normalize_track(source, compute_stats(source), compute_stats(target))
    assert out.size == (1000, 1000) and len(out) == len(source)
    np.testing.assert_allclose(out.body, target.body, atol=1e-3)
    np.testing.assert_allclose(out.face, target.face, atol=1e-3)
    np.testing.assert_allclose(out.hands, target.hands, atol=1e-3)


def test_far_close_and_in_between_transforms():
    s_stats = compute_stats(stick_track(S_ANKLES, S_HEIGHTS))
    t_stats = compute_stats(stick_track(T_ANKLES, T_HEIGHTS))
    assert (s_stats.close_y, s_stats.far_y, s_stats.close_height, s_stats.far_height) == \
        (600, 500, 300, 200)
    probe = stick_track([500, 600, 550, 525], [100, 100, 100, 100])
    tf = plan_transforms(probe, s_stats, t_stats)
    np.testing.assert_allclose(tf.dst_anchor[:, 1], [800, 900, 850, 825])  # ankles -> target
    np.testing.assert_allclose(tf.scale, [2.5, 2.0, 2.25, 2.375])  # linear in between
    out = normalize_track(probe, s_stats, t_stats)
    nose = out.body[:, BODY["Nose"], 1]
    np.testing.assert_allclose(nose, [800 - 250, 900 - 200, 850 - 225, 825 - 237.5], atol=1e-3)
    np.testing.assert_allclose(out.body[:, BODY["RAnkle"], 1], [800, 900, 850, 825], atol=1e-3)
    # Horizontally, offsets from the frame centre scale too.
    np.testing.assert_allclose(out.body[0, BODY["RAnkle"], 0], 500 - 2.5 * 5, atol=1e-3)


def test_jump_above_far_extrapolates_position_keeps_far_scale():
    s_stats = compute_stats(stick_track(S_ANKLES, S_HEIGHTS))
    t_stats = compute_stats(stick_track(T_ANKLES, T_HEIGHTS))
    tf = plan_transforms(stick_track([450], [200]), s_stats, t_stats)
    assert tf.dst_anchor[0, 1] == pytest.approx(750) and tf.scale[0] == pytest.approx(2.5)


def test_small_source_range_is_not_stretched():
    """Official "small range" rule: a source stepping on the spot moves 1:1 (in body heights)."""
    t_stats = compute_stats(stick_track(T_ANKLES, T_HEIGHTS))
    # Source: close 600, median 595, limit 595 - 0.7 * 5 = 591.5 -> far 592; range 8 px at
    # height 300 (1/37.5) < the target's 100 px at 600 (1/6).
    ankles = [600, 598, 596, 595, 594, 592, 590]
    s_stats = compute_stats(stick_track(ankles, [300] * 7))
    assert (s_stats.close_y, s_stats.far_y) == (600, 592)
    tf = plan_transforms(stick_track([600, 592], [300, 300]), s_stats, t_stats)
    # Target range shrunk about its middle 850 to 8 * 600/300 = 16 px: 842..858.
    np.testing.assert_allclose(tf.dst_anchor[:, 1], [858, 842])
    # Target heights there, on the line through (800, 500) and (900, 600): 558 and 542.
    np.testing.assert_allclose(tf.scale, [558 / 300, 542 / 300])


def test_adjustments_are_applied_exactly():
    s_stats = compute_stats(stick_track(S_ANKLES, S_HEIGHTS))
    t_stats = compute_stats(stick_track(T_ANKLES, T_HEIGHTS))
    probe = stick_track([500, 600, 550], [100, 100, 100])
    plain = normalize_track(probe, s_stats, t_stats)
    adj = Adjustments(scale=[1.0, 2.0, 0.5], offset_x=[0.0, 0.1, 0.0], offset_y=-0.05)
    moved = normalize_track(probe, s_stats, t_stats, adj)
    anchors = np.array([[500, 800], [500, 900], [500, 850]], np.float64)
    scale = np.array([1.0, 2.0, 0.5])[:, None, None]
    shift = np.array([[0.0, -50.0], [100.0, -50.0], [0.0, -50.0]])[:, None]
    want = anchors[:, None] + scale * (plain.body[..., :2] - anchors[:, None]) + shift
    present = plain.body[..., 2] > 0
    np.testing.assert_allclose(moved.body[..., :2][present], want[present], atol=1e-3)
    np.testing.assert_array_equal(moved.body[..., :2][~present], 0)
    with pytest.raises(ValueError):
        normalize_track(probe, s_stats, t_stats, Adjustments(scale=[1.0, 1.0]))


def test_adjustments_json(tmp_path):
    path = tmp_path / "adjust.json"
    path.write_text(json.dumps({"scale": [1.0, 1.5], "offset_y": 0.25}))
    adj = Adjustments.from_json(path, n_frames=2)
    scale, off_x, off_y = adj.per_frame(2)
    np.testing.assert_array_equal(scale, [1.0, 1.5])
    np.testing.assert_array_equal(off_x, [0.0, 0.0])
    np.testing.assert_array_equal(off_y, [0.25, 0.25])
    for bad in ({"scale": [1.0, 2.0, 3.0]}, {"scale": -1}, {"zoom": 2}, "not json"):
        path.write_text(bad if isinstance(bad, str) else json.dumps(bad))
        with pytest.raises(InputError, match="adjust.json"):
            Adjustments.from_json(path, n_frames=2)


def test_missing_points_stay_missing():
    s_track = stick_track(S_ANKLES, S_HEIGHTS)
    s_track.face[2] = 0
    s_track.hands[3, 1] = 0
    s_track.body[4, BODY["LShoulder"]] = 0
    out = normalize_track(s_track, compute_stats(s_track),
                          compute_stats(stick_track(T_ANKLES, T_HEIGHTS)))
    assert not out.face[2].any() and not out.hands[3, 1].any()
    assert not out.body[4, BODY["LShoulder"]].any()
    assert (out.face[1, :, 2] > 0).all() and np.isfinite(out.body).all()
    np.testing.assert_array_equal(out.detected, s_track.detected)


def test_frames_without_ankles_hold_the_nearest_transform():
    s_stats = compute_stats(stick_track(S_ANKLES, S_HEIGHTS))
    t_stats = compute_stats(stick_track(T_ANKLES, T_HEIGHTS))
    probe = stick_track([560, 500, 600, 550], [100] * 4)
    probe.body[[0, 2], BODY["LAnkle"]] = 0  # frame 0: first valid is frame 1; frame 2: frame 1
    tf = plan_transforms(probe, s_stats, t_stats)
    np.testing.assert_allclose(tf.dst_anchor[:, 1], [800, 800, 800, 850])
    np.testing.assert_allclose(tf.scale, [2.5, 2.5, 2.5, 2.25])


def test_stats_json_round_trip_and_bad_files(tmp_path):
    stats = compute_stats(stick_track(T_ANKLES, T_HEIGHTS))
    path = stats.save(tmp_path / "target_stats.json")
    assert NormalizationStats.load(path) == stats
    path.write_text("{ not json")
    with pytest.raises(InputError, match="target_stats.json"):
        NormalizationStats.load(path)
    data = stats.to_dict()
    data["format_version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(InputError, match="version"):
        NormalizationStats.load(path)
    data = stats.to_dict()
    data["close_height"] = "tall"
    path.write_text(json.dumps(data))
    with pytest.raises(InputError):
        NormalizationStats.load(path)
    with pytest.raises(InputError, match="not found"):
        NormalizationStats.load(tmp_path / "absent.json")


def test_ankle_less_subject_falls_back_without_nan():
    half_body = stick_track(S_ANKLES, S_HEIGHTS, size=(600, 600), x=300.0)
    half_body.body[:, [BODY["RAnkle"], BODY["LAnkle"]], 2] = 0
    with pytest.warns(NoAnklesWarning, match="ankles"):
        s_stats = compute_stats(half_body)
    assert s_stats.method == "shoulders" and s_stats.n_usable == 0 and s_stats.close_y is None
    # Shoulder widths 0.24 * height: 90th percentile of the source's, its median neck.
    assert s_stats.shoulder_width == pytest.approx(0.24 * np.percentile(S_HEIGHTS, 90))
    t_stats = compute_stats(stick_track(T_ANKLES, T_HEIGHTS))
    with pytest.warns(NoAnklesWarning, match="source"):
        out = normalize_track(half_body, s_stats, t_stats)
    assert np.isfinite(out.body).all() and np.isfinite(out.face).all()
    scale = t_stats.shoulder_width / s_stats.shoulder_width
    neck = out.body[:, BODY["Neck"], :2]
    src_neck = half_body.body[:, BODY["Neck"], :2]
    want = np.array([t_stats.neck_x, t_stats.neck_y]) + scale * (
        src_neck - np.array([s_stats.neck_x, s_stats.neck_y]))
    np.testing.assert_allclose(neck, want, atol=1e-3)
    assert not out.body[:, BODY["RAnkle"]].any()  # still missing


def test_subject_with_nothing_usable_uses_frame_size():
    nobody = PoseTrack.empty(5, 25.0, (640, 360))
    with pytest.warns(NoAnklesWarning):
        s_stats = compute_stats(nobody)
    assert s_stats.method == "frame"
    t_stats = compute_stats(stick_track(T_ANKLES, T_HEIGHTS))
    with pytest.warns(NoAnklesWarning):
        out = normalize_track(nobody, s_stats, t_stats)
    assert out.size == (1000, 1000) and not out.body.any()


def test_portrait_source_into_landscape_target():
    target = stick_track(T_ANKLES, T_HEIGHTS, size=(1920, 1080), x=960.0)
    # Source: close 1200, far 1100, heights 600 / 500: the same depth range in body heights.
    source = stick_track(
        [1200, 1180, 1160, 1140, 1120, 1100, 1080], [600, 580, 560, 540, 520, 500, 480],
        size=(720, 1280), x=360.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        out = normalize_track(source, compute_stats(source), compute_stats(target))
    # Feet on the target's floor range, centred, sized like the target.
    ankle = out.body[:, BODY["RAnkle"], 1]
    assert ankle.min() >= 780 - 1e-3 and ankle.max() <= 900 + 1e-3
    np.testing.assert_allclose(out.body[:, BODY["Nose"], 0], 960, atol=1e-3)
    assert out.body[0, BODY["RAnkle"], 1] == pytest.approx(900)
    assert 900 - out.body[0, BODY["Nose"], 1] == pytest.approx(600, rel=1e-4)


def test_stats_for_another_video_are_refused():
    stats = compute_stats(stick_track(T_ANKLES, T_HEIGHTS))
    other = stick_track(T_ANKLES, T_HEIGHTS, size=(1280, 720))
    with pytest.raises(ValueError, match="1000x1000"):
        normalize_track(other, stats, stats)


@pytest.mark.footage
@pytest.mark.slow
def test_real_half_body_subject_falls_back(footage):
    """A dancer filmed from the waist up: no usable ankles, a warning, a finite result."""
    path = footage("hard_half_body.mp4")
    detector = pytest.importorskip("backend.pose.detector")
    track = detector.detect_video(path, stop=20, progress=False)
    with pytest.warns(NoAnklesWarning):
        stats = compute_stats(track)
    assert stats.method == "shoulders" and stats.n_usable == 0
    t_stats = compute_stats(stick_track(T_ANKLES, T_HEIGHTS))
    with pytest.warns(NoAnklesWarning):
        out = normalize_track(track, stats, t_stats)
    assert out.size == (1000, 1000) and len(out) == 20
    assert np.isfinite(out.body).all() and np.isfinite(out.face).all()
    # The source's median neck lands on the target's (medians follow the per-axis affine map).
    neck = np.median(out.body[track.body[:, BODY["Neck"], 2] > 0, BODY["Neck"], :2], axis=0)
    np.testing.assert_allclose(neck, [t_stats.neck_x, t_stats.neck_y], atol=1.0)
