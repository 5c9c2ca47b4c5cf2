"""Detection in chunks, without MediaPipe: the split, the check at a join, the records that
key the cache, and the worker processes (real spawned interpreters running small functions)."""

from __future__ import annotations

import os
import time

import numpy as np
import pytest

from backend.errors import BackendError, InputError, NoSpaceError
from backend.pose import cache
from backend.pose.chunks import (MIN_AUTO_CHUNK, MIN_CHUNK, OVERLAP, SAME_PERSON, auto_workers,
                                 hip_distances, plan_chunks, same_subject)
from backend.pose.detector import HolisticConfig, detector_record
from backend.pose.layout import BODY
from backend.pose.processes import run_in_processes
from backend.pose.track import PoseTrack

# ---------------------------------------------------------------- the split


@pytest.mark.parametrize("start, stop, workers", [(0, 1000, 4), (17, 1000, 3), (5, 5 + 3 * MIN_CHUNK, 3),
                                                  (0, 100, 1), (0, 401, 2)])
def test_chunks_cover_the_range_in_order_and_nearly_equal(start, stop, workers):
    plan = plan_chunks(start, stop, workers)
    assert len(plan) == workers
    assert plan.chunks[0][0] == start and plan.chunks[-1][1] == stop
    assert all(a[1] == b[0] for a, b in zip(plan.chunks, plan.chunks[1:]))  # no gap, no overlap
    lengths = [end - begin for begin, end in plan.chunks]
    assert max(lengths) - min(lengths) <= 1 and min(lengths) >= MIN_CHUNK
    assert plan.detect_from(0) == start
    assert all(plan.detect_from(k) == plan.chunks[k][0] - OVERLAP for k in range(1, len(plan)))
    assert plan.frames_detected() == stop - start + (len(plan) - 1) * OVERLAP


def test_too_short_chunks_are_merged_and_one_chunk_records_nothing():
    assert len(plan_chunks(0, 3 * MIN_CHUNK - 1, 3)) == 2
    single = plan_chunks(0, MIN_CHUNK * 2 - 1, 8)
    assert single.chunks == ((0, MIN_CHUNK * 2 - 1),) and single.record() == {}
    assert plan_chunks(10, 10, 4).chunks == ((10, 10),)  # an empty range: one empty chunk
    assert plan_chunks(0, 100, 2).record() == {"chunks": [[0, 50], [50, 100]], "overlap": OVERLAP}
    with pytest.raises(ValueError, match="at least 1"):
        plan_chunks(0, 100, 0)


def test_automatic_workers_follow_cores_and_length():
    assert auto_workers(MIN_AUTO_CHUNK - 1, 16) == 1  # a short clip: one process
    assert auto_workers(2 * MIN_AUTO_CHUNK, 16) == 2
    assert auto_workers(100 * MIN_AUTO_CHUNK, 16) == 16
    assert auto_workers(100 * MIN_AUTO_CHUNK, 1) == 1
    assert len(plan_chunks(0, 10 * MIN_AUTO_CHUNK, None, cores=4)) == 4
    assert len(plan_chunks(0, MIN_AUTO_CHUNK, None, cores=4)) == 1


def test_workers_are_not_a_setting_but_the_chunks_key_the_cache(tmp_path):
    video = tmp_path / "v.mp4"
    video.write_bytes(b"\0" * 1000)
    with pytest.raises(ValueError, match="workers"):
        HolisticConfig(workers=0)
    assert "workers" not in HolisticConfig(workers=3).settings()

    def key(config, plan):
        return cache.track_key(video, detector_record(config, 0, 100, plan))

    one = plan_chunks(0, 100, 1)
    # One process makes the same track whatever was asked for: one cache entry, as before.
    assert key(HolisticConfig(workers=1), one) == key(HolisticConfig(), None)
    assert key(HolisticConfig(workers=2), plan_chunks(0, 100, 2)) != key(HolisticConfig(), one)
    assert key(HolisticConfig(), plan_chunks(0, 100, 2)) != key(HolisticConfig(), plan_chunks(0, 100, 3))


# ---------------------------------------------------------------- the check at a join

SIZE = 300.0  # body height in pixels


def window(hips_x: list[float | None]) -> PoseTrack:
    """A track of len(hips_x) frames: a standing body with its hip centre at (x, 400), or no
    detection (None)."""
    track = PoseTrack.empty(len(hips_x), 30.0, (1280, 720))
    for t, x in enumerate(hips_x):
        if x is None:
            continue
        track.detected[t] = True
        body = track.body[t]
        body[:, 2] = 0.9
        body[:, 0] = x + np.linspace(-40, 40, len(body))
        body[:, 1] = np.linspace(400 - SIZE / 2, 400 + SIZE / 2, len(body))
        body[BODY["MidHip"], :2] = (x, 400)
    return track


def test_the_same_person_within_noise_is_confirmed():
    previous = window([500.0 + t for t in range(12)])
    noisy = window([500.0 + t + (3 if t % 2 else -3) for t in range(12)])  # 0.02 body heights
    assert same_subject(previous, noisy)
    assert np.nanmax(hip_distances(previous, noisy)) == pytest.approx(3 / SIZE, rel=0.05)
    # The new detector still choosing in the first half, or missing a frame later: still confirmed.
    settling = window([None, 700, 650, 600, 550, 505] + [500.0 + t for t in range(6, 12)])
    assert same_subject(previous, settling)
    missed = window([500.0 + t for t in range(11)] + [None])
    assert same_subject(previous, missed)


def test_another_person_or_nobody_is_not_confirmed():
    previous = window([500.0] * 12)
    neighbour = window([500.0 + 0.45 * SIZE] * 12)  # the people of hard_two_people.avi stand this far apart
    assert not same_subject(previous, neighbour)
    assert not same_subject(previous, window([500.0 + 1.01 * SAME_PERSON * SIZE] * 12))
    assert same_subject(previous, window([500.0 + 0.99 * SAME_PERSON * SIZE] * 12))
    # Someone where the previous chunk had lost its subject: perhaps a bystander.
    lost = window([500.0] * 8 + [None] * 4)
    assert not same_subject(lost, window([500.0] * 12))
    # Nobody in view at the join: nothing to confirm.
    assert not same_subject(window([None] * 12), window([None] * 12))
    assert not same_subject(previous, window([500.0] * 6 + [None] * 6))


# ---------------------------------------------------------------- the worker processes


def square_slowly(task: tuple[int, int], tick) -> int:
    """A task for run_in_processes: (value, steps) -> value squared, ticking ``steps`` times."""
    value, steps = task
    for _ in range(steps):
        tick(1)
    return value * value


def fail(task: str, tick) -> None:
    tick(1)
    if task == "input":
        raise InputError("/videos/broken.mp4", "decoded 10 frames, expected 20")
    if task == "space":
        raise NoSpaceError("/out/poses.npz", "3 chunks are kept")
    if task == "value":
        raise ValueError("a library's own error")
    if task == "exit":
        os._exit(3)  # a crash that sends nothing (as a native one would)
    time.sleep(300)  # "slow": killed when another task fails


def test_results_come_back_in_task_order_with_every_tick():
    ticks: list[int] = []
    results = run_in_processes(square_slowly, [(3, 5), (4, 1), (5, 7)], ticks.append)
    assert results == [9, 16, 25]
    assert sum(ticks) == 13


def test_a_childs_error_is_raised_here_and_the_others_are_stopped():
    began = time.monotonic()
    with pytest.raises(InputError, match="decoded 10 frames") as err:
        run_in_processes(fail, ["slow", "input"])
    assert str(err.value.path) == "/videos/broken.mp4"
    assert time.monotonic() - began < 120  # the sleeping child was stopped, not waited for
    with pytest.raises(BackendError, match=r"task 1 of 1\) stopped without a result \(exit code 3\)"):
        run_in_processes(fail, ["exit"])


def test_errors_cross_intact_and_others_as_their_traceback():
    with pytest.raises(NoSpaceError) as err:
        run_in_processes(fail, ["space"])
    assert (str(err.value.path), err.value.note) == ("/out/poses.npz", "3 chunks are kept")
    assert str(err.value) == "disk full while writing /out/poses.npz; 3 chunks are kept"
    with pytest.raises(BackendError, match=r"(?s)a worker process failed:.*ValueError: a "
                                           r"library's own error"):
        run_in_processes(fail, ["value"])


def test_an_error_in_the_parent_stops_the_children():
    def cancel(n: int) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_in_processes(fail, ["slow", "slow"], cancel)
