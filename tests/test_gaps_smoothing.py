"""Gap filling and temporal smoothing of pose tracks, on synthetic tracks with known answers."""

from __future__ import annotations

import numpy as np
import pytest

from backend.pose.gaps import fill_gaps, gap_frames, stack_points
from backend.pose.smoothing import SmoothingConfig, median_smooth, smooth_track
from backend.pose.track import PoseTrack


def moving_track(n: int = 20, fps: float = 10.0, conf: float = 0.8) -> PoseTrack:
    """Every point moves on a straight line at constant speed (x = 10 + 3t + k, y = 50 + 2t)."""
    track = PoseTrack.empty(n, fps, (640, 480), {"name": "synthetic"})
    t = np.arange(n, dtype=np.float32)[:, None]
    for arr in (track.body, track.face, track.hands.reshape(n, -1, 3)):
        k = np.arange(arr.shape[1], dtype=np.float32)[None, :]
        arr[..., 0] = 10 + 3 * t + k
        arr[..., 1] = 50 + 2 * t
        arr[..., 2] = conf
    track.detected[:] = True
    return track


def lose_frames(track: PoseTrack, frames) -> PoseTrack:
    """The subject not detected in ``frames``: every point missing (x = y = c = 0)."""
    out = track.copy()
    for i in frames:
        out.body[i] = out.face[i] = 0
        out.hands[i] = 0
        out.detected[i] = False
    return out


# -- gap filling ---------------------------------------------------------------------------------

def test_short_gap_is_interpolated_exactly_and_flags_stay():
    clean = moving_track()
    holed = lose_frames(clean, [5, 6, 7])
    filled = fill_gaps(holed, max_gap_frames=5)
    assert len(filled) == len(clean)
    np.testing.assert_array_equal(filled.detected, holed.detected)
    got, want = stack_points(filled), stack_points(clean)
    np.testing.assert_allclose(got[..., :2], want[..., :2], atol=1e-4)  # linear motion: exact
    # Filled points are drawable but marked by half the neighbours' confidence.
    np.testing.assert_allclose(got[5:8, :, 2], 0.4)
    np.testing.assert_allclose(got[:5, :, 2], 0.8)
    added = (stack_points(holed)[..., 2] <= 0) & (got[..., 2] > 0)  # missing before, drawn now
    assert added[5:8].all() and not added[:5].any()


def test_ends_and_long_gaps_hold_the_nearest_pose():
    clean = moving_track(n=30)
    holed = lose_frames(clean, [0, 1, 2] + list(range(10, 20)) + [27, 28, 29])
    filled = fill_gaps(holed, max_gap_frames=4)
    assert len(filled) == 30
    np.testing.assert_array_equal(filled.detected, holed.detected)
    for i in (0, 1, 2):  # leading: the first detected pose (frame 3)
        np.testing.assert_array_equal(filled.body[i, :, :2], clean.body[3, :, :2])
    for i in range(10, 20):  # long interior gap: the last pose before it (frame 9)
        np.testing.assert_array_equal(filled.hands[i, ..., :2], clean.hands[9, ..., :2])
    for i in (27, 28, 29):  # trailing: the last detected pose (frame 26)
        np.testing.assert_array_equal(filled.face[i, :, :2], clean.face[26, :, :2])
    assert np.all(filled.body[10:20, :, 2] == pytest.approx(0.4))


def test_gap_length_in_seconds_uses_fps():
    clean = moving_track(n=60, fps=30.0)
    assert gap_frames(clean, 0.5) == 15
    just_short = fill_gaps(lose_frames(clean, range(20, 35)))  # 15 frames: interpolated
    np.testing.assert_allclose(just_short.body[27, :, :2], clean.body[27, :, :2], atol=1e-3)
    too_long = fill_gaps(lose_frames(clean, range(20, 36)))  # 16 frames: held
    np.testing.assert_array_equal(too_long.body[27, :, :2], clean.body[19, :, :2])


def test_keypoint_dropouts_while_detected():
    clean = moving_track(n=40)
    holed = clean.copy()
    holed.body[10:13, 4] = 0  # the right wrist drops out for 3 frames
    holed.face[20:40] = 0  # the face turns away for good
    filled = fill_gaps(holed, max_gap_frames=5)
    np.testing.assert_allclose(filled.body[10:13, 4, :2], clean.body[10:13, 4, :2], atol=1e-4)
    assert np.all(filled.body[10:13, 4, 2] > 0)
    # A long dropout while the subject is detected is not guessed at.
    assert np.all(filled.face[20:40] == 0)


def test_nothing_detected_is_left_alone():
    empty = PoseTrack.empty(12, 25.0, (320, 240))
    filled = fill_gaps(empty)
    assert len(filled) == 12 and not filled.body.any() and not filled.detected.any()


def test_gap_settings_are_checked():
    track = moving_track()
    with pytest.raises(ValueError):
        fill_gaps(track, filled_confidence_factor=0.0)
    with pytest.raises(ValueError):
        fill_gaps(track.copy(fps=0.0))


# -- smoothing -----------------------------------------------------------------------------------

def one_point_track(x: np.ndarray, fps: float = 30.0, height: int = 1000) -> PoseTrack:
    """A track whose right wrist follows ``x`` (in pixels) horizontally; other points absent."""
    track = PoseTrack.empty(len(x), fps, (height, height))
    track.body[:, 4, 0] = x
    track.body[:, 4, 1] = 500
    track.body[:, 4, 2] = 0.9
    track.detected[:] = True
    return track


def test_median_is_the_official_sliding_median():
    x = np.array([10, 11, 12, 100, 14, 15, 16, 17, 18, 19], np.float64)  # one wild spike
    out = smooth_track(one_point_track(x), SmoothingConfig("median", window=7))
    assert len(out) == 10
    np.testing.assert_allclose(out.body[3, 4, 0], 14.0)  # median of 10, 11, 12, 100, 14, 15, 16
    np.testing.assert_allclose(out.body[0, 4, 0], 11.5)  # edge window shrinks: 10, 11, 12, 100
    assert not out.body[:, :4].any()  # absent points stay absent


def test_median_majority_rule():
    pts = np.zeros((9, 1, 3))
    pts[:, 0] = [5.0, 5.0, 0.9]
    pts[4] = 0  # a one-frame dropout is filled from its present neighbours
    pts[6:] = 0  # ... but where most of the window is missing, the point goes
    out = median_smooth(pts, 7)
    assert out[4, 0, 2] == pytest.approx(0.9) and out[4, 0, 0] == 5.0
    assert out[8, 0, 2] == 0 and out[8, 0, 0] == 0
    assert np.isfinite(out).all()


def test_fast_move_kept_better_than_median_while_jitter_goes():
    """2 s still, then a 2 Hz swing of 10 % of the frame height, with 4 px detector noise."""
    fps, height = 30.0, 1000
    t = np.arange(150) / fps
    clean = np.where(t < 2.0, 500.0, 500.0 + 100.0 * np.sin(2 * np.pi * 2.0 * (t - 2.0)))
    noisy = clean + np.random.default_rng(7).normal(0.0, 4.0, len(t))
    track = one_point_track(noisy, fps, height)
    still, fast = slice(8, 52), slice(70, 140)

    def errors(method: str) -> tuple[float, float]:
        x = smooth_track(track, SmoothingConfig(method)).body[:, 4, 0].astype(np.float64)
        return float(np.std((x - clean)[still])), float(np.sqrt(np.mean((x - clean)[fast] ** 2)))

    raw_jitter, raw_fast = float(np.std((noisy - clean)[still])), 0.0
    med_jitter, med_fast = errors("median")
    assert med_fast > 8.0  # the median flattens the swing: worse than the raw noise
    for method in ("one_euro", "savgol"):
        jitter, fast_err = errors(method)
        assert jitter < 0.75 * raw_jitter, method  # still: jitter removed
        assert fast_err < 0.5 * med_fast, method  # fast: shape kept far better than the median


def test_missing_points_stay_missing_and_no_nan():
    x = np.linspace(100, 400, 40)
    track = one_point_track(x)
    track.body[15:18, 4] = 0
    for method in ("one_euro", "savgol", "none"):
        out = smooth_track(track, SmoothingConfig(method))
        assert np.all(out.body[15:18, 4] == 0), method
        assert np.all(out.body[:15, 4, 2] > 0) and np.isfinite(out.body).all(), method
        # A straight line stays straight (savgol exactly, one_euro nearly).
        np.testing.assert_allclose(out.body[20:35, 4, 0], x[20:35], atol=2.0)


def test_smoothing_config_is_checked():
    with pytest.raises(ValueError):
        SmoothingConfig("gaussian")
    with pytest.raises(ValueError):
        SmoothingConfig(window=6)
    savgol = SmoothingConfig("savgol")
    assert SmoothingConfig.from_dict(savgol.to_dict()) == savgol
