"""Detection in several processes on the real clips in ../shared/data: the same frames, the same
subject and the same detections as one process, within the detector's own noise.

Why a tolerance and not equality: Holistic tracks from frame to frame (its region of interest
follows the last landmarks, its landmark filter the last frames), so a detector that starts at
a chunk's first frame is in another state than one that has run since the video's start, and
its keypoints differ slightly, also long after the join. One process started at a chunk's
first frame differs from one started at 0 just as much: on hard_multi_person.avi (fast moves,
a moving camera) the hip centre moves by up to 0.17 body heights in a frame where the detector
itself is unsure (the same 0.17 with 3 workers and with one late process), by 0.01 at the
median; on the other clips by under 0.01 at most; detection flags differ in 0 to 3 frames of
200. Two people standing side by side are 0.23 to 0.45 body heights apart (hard_two_people.avi): a hip
centre within `HIP_TOLERANCE` (the subject tracker's own per-frame gate) in every frame, and
within `HIP_MEDIAN` at the median, is the same person; on the two-people clip, where both
people's tracks are known, every frame is also checked to be much nearer its own person.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from backend.pose.chunks import hip_distances
from backend.pose.detector import HolisticConfig, detect_video
from backend.pose.track import PoseTrack
from backend.video import Mp4Writer, probe, read_frames

from .helpers import footage_path

pytestmark = [pytest.mark.footage, pytest.mark.slow]

HIP_TOLERANCE = 0.25  # body heights, in every frame: noise up to 0.17
HIP_MEDIAN = 0.03  # body heights, the median over frames: measured 0.001 to 0.01
RATE_TOLERANCE = 0.02  # detection rate: measured equal; one process's own noise 1.6%
PERSON_B = (765, 627)  # the second person of hard_two_people.avi (hips, frame 0)


def detect(path: Path, workers: int, start: int = 0, hint=None) -> PoseTrack:
    return detect_video(path, HolisticConfig(workers=workers, subject_hint=hint), start=start,
                        progress=False, use_cache=False)


def assert_same_subject(one: PoseTrack, many: PoseTrack) -> None:
    assert len(many) == len(one)
    assert abs(many.detection_rate() - one.detection_rate()) <= RATE_TOLERANCE
    distances = hip_distances(one, many)
    assert (one.detected & many.detected).sum() >= 0.9 * one.detected.sum()
    assert np.nanmax(distances) < HIP_TOLERANCE, np.nanargmax(distances)
    assert np.nanmedian(distances) < HIP_MEDIAN


@pytest.mark.parametrize("clip", ["hard_multi_person.avi", "hard_two_people.avi"])
def test_three_processes_find_the_subject_of_one(clip):
    path = footage_path(clip)
    one, three = detect(path, 1), detect(path, 3)
    assert len(one) == probe(path).frame_count
    assert "chunks" not in one.detector
    chunks = three.detector["chunks"]
    assert len(chunks) == 3 and chunks[0][0] == 0 and chunks[-1][1] == len(one)
    assert_same_subject(one, three)


def test_each_of_two_people_is_kept_by_every_chunk():
    """The default subject and the one a hint picks, each followed by chunks: in every frame
    nearer the one-process track of the same person than the other person is."""
    path = footage_path("hard_two_people.avi")
    a, b = detect(path, 1), detect(path, 1, hint=PERSON_B)
    apart = hip_distances(a, b)
    assert np.nanmin(apart) > 0.15  # two people (0.45 body heights apart at first, 0.23 at last)
    for ours, theirs, chunked in ((a, b, detect(path, 3)), (b, a, detect(path, 2, hint=PERSON_B))):
        assert_same_subject(ours, chunked)
        assert np.nanmax(hip_distances(ours, chunked) / apart) < 0.25


def panned_clip(out: Path) -> Path:
    """hard_two_people.avi seen through a 1080x1080 window that pans from the person on the
    right (the default subject: the more central one) to the one on the left over frames
    12-24: from then on a detector starting afresh picks the left one."""
    source = footage_path("hard_two_people.avi")
    with Mp4Writer(out, probe(source).frame_rate, (1080, 1080), preset="veryfast") as writer:
        for t, frame in enumerate(read_frames(source)):
            centre = 1015 - 255 * min(max(t - 12, 0), 12) / 12
            left = int(round(centre - 540))
            writer.write(np.ascontiguousarray(frame[:, left:left + 1080]))
    return out


def test_a_chunk_that_chose_someone_else_is_detected_again(tmp_path):
    path = panned_clip(tmp_path / "panned.mp4")
    one, two = detect(path, 1), detect(path, 2)
    begin = two.detector["chunks"][1][0] - two.detector["overlap"]
    # A detector starting where the second chunk starts takes the other person ...
    fresh = detect(path, 1, start=begin)
    assert np.nanmax(hip_distances(one.slice(begin, len(one)), fresh)) > 0.3
    # ... so that chunk was detected again, carrying the first chunk's subject on.
    assert two.detector["detected_again"] == [1]
    assert_same_subject(one, two)
