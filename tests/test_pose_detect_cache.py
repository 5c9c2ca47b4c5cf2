"""The pose-track cache: content-based keys, and a second detection served from the cache."""

from __future__ import annotations

import shutil
import time

import numpy as np
import pytest

from backend.pose import cache
from backend.pose.track import PoseTrack


def write_bytes(path, size: int, seed: int = 0):
    path.write_bytes(np.random.default_rng(seed).integers(0, 256, size, dtype=np.uint8).tobytes())
    return path


@pytest.mark.parametrize("size", [1000, 5 * 1024 * 1024])  # hashed whole / sampled
def test_identity_follows_content_not_name(tmp_path, size):
    original = write_bytes(tmp_path / "a.mp4", size)
    moved = tmp_path / "sub" / "renamed.mov"
    moved.parent.mkdir()
    shutil.copy(original, moved)
    assert cache.video_identity(original) == cache.video_identity(moved)
    data = bytearray(original.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one byte changed, in a sampled chunk
    changed = tmp_path / "changed.mp4"
    changed.write_bytes(bytes(data))
    assert cache.video_identity(changed) != cache.video_identity(original)
    longer = tmp_path / "longer.mp4"
    longer.write_bytes(original.read_bytes() + b"\0")
    assert cache.video_identity(longer) != cache.video_identity(original)


def test_image_folder_identity(tmp_path):
    for i in range(3):
        write_bytes(tmp_path / f"{i:04d}.png", 500, seed=i)
    before = cache.video_identity(tmp_path)
    (tmp_path / "0001.png").rename(tmp_path / "0009.png")
    assert cache.video_identity(tmp_path) != before


def test_key_depends_on_settings(tmp_path):
    video = write_bytes(tmp_path / "v.mp4", 1000)
    a = cache.track_key(video, {"settings": {"model_complexity": 1}, "start": 0, "stop": 10})
    assert a == cache.track_key(video, {"start": 0, "stop": 10, "settings": {"model_complexity": 1}})
    assert a != cache.track_key(video, {"settings": {"model_complexity": 1}, "start": 0, "stop": 11})
    assert a != cache.track_key(video, {"settings": {"model_complexity": 2}, "start": 0, "stop": 10})


def test_store_load_and_damaged_entries(tmp_path):
    track = PoseTrack.empty(4, 25.0, (64, 48), {"name": "test"})
    track.detected[1] = True
    cache.store("k1", track)
    loaded = cache.load_cached("k1")
    assert loaded is not None and loaded.detected.tolist() == [False, True, False, False]
    assert cache.load_cached("absent") is None
    cache.cached_track_path("k2").write_bytes(b"not a zip")
    assert cache.load_cached("k2") is None  # a damaged entry is a miss...
    assert not cache.cached_track_path("k2").exists()  # ...and is removed


@pytest.mark.slow
@pytest.mark.footage
def test_second_detection_comes_from_the_cache(footage, tmp_path, private_cache):
    from backend.pose.detector import detect_video

    video = footage("target_taiji.mp4")
    began = time.perf_counter()
    first = detect_video(video, start=0, stop=6, progress=False)
    detect_s = time.perf_counter() - began
    began = time.perf_counter()
    second = detect_video(video, start=0, stop=6, progress=False)
    cached_s = time.perf_counter() - began
    assert cached_s < 0.25 * detect_s and cached_s < 0.5
    for name in ("body", "face", "hands", "detected"):
        np.testing.assert_array_equal(getattr(first, name), getattr(second, name))
    assert second.detector == first.detector and second.size == first.size
    # A renamed copy hits the same entry; another frame range is a new entry.
    copy = tmp_path / "copy_of_clip.mp4"
    shutil.copy(video, copy)
    began = time.perf_counter()
    third = detect_video(copy, start=0, stop=6, progress=False)
    assert time.perf_counter() - began < 0.25 * detect_s
    np.testing.assert_array_equal(third.body, first.body)
    assert len(list((private_cache / "poses").glob("*.npz"))) == 1
