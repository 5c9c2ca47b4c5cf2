"""Splitting one video's detection into chunks that run side by side, and joining them again.

MediaPipe detection runs on one CPU core at about 13 frames/s, so on a machine with several
cores a long video is split into consecutive chunks, one detector process each (see
`detector.detect_video`). Each chunk after the first starts `OVERLAP` frames early: its
detector has no memory of the frames before, so it chooses a subject afresh there and its
tracking and landmark filter settle over the overlap. Joining checks, on the overlap, that the
chunk's subject is the previous chunk's (`same_subject`); where it is not, the caller detects
that chunk again, carrying the previous chunk's subject on (as one process would).

This module is free of MediaPipe: the plan and the check are plain arithmetic on tracks.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from .layout import BODY
from .track import PoseTrack

# Frames a chunk detects before its own first frame. Holistic's landmark filter looks back 5
# frames and its region of interest follows the last landmarks, so a fresh detector matches a
# running one within detector noise a few frames after it starts (measured on the real clips:
# see the README's pose pipeline section); 12 frames leave room for a slow first lock.
OVERLAP = 12
# The automatic worker count gives each chunk at least this many frames. A worker's fixed cost
# (a new interpreter importing MediaPipe, building its graphs, detecting the overlap twice) is
# about 2-3 s, what one core detects in 30-40 frames; at 300 frames a chunk that cost stays
# near 10% of its work, so shorter clips run in one process (faster there, and exactly the
# single-process track).
MIN_AUTO_CHUNK = 300
# A chunk asked for explicitly (--workers N) still has more frames of its own than overlap.
MIN_CHUNK = 2 * OVERLAP
# Hip centres of the two detections over the overlap closer than this (in body sizes) are the
# same person: the tracker's own per-frame gate (`subject.SubjectTracker.jump`). Two runs of the
# detector on the same person differ by up to 0.17 (a fast move in hard_multi_person.avi); the
# two people of hard_two_people.avi stand 0.45 apart.
SAME_PERSON = 0.25


def available_cores() -> int:
    """CPU cores this process may run on (its affinity where the OS says, else all)."""
    if hasattr(os, "sched_getaffinity"):
        return max(1, len(os.sched_getaffinity(0)))
    return max(1, os.cpu_count() or 1)


def auto_workers(n_frames: int, cores: int) -> int:
    """Worker processes for ``n_frames``: one per core, each with `MIN_AUTO_CHUNK` frames at least."""
    return max(1, min(cores, n_frames // MIN_AUTO_CHUNK))


@dataclass(frozen=True)
class ChunkPlan:
    """Consecutive chunks ``[begin, end)`` of video frames covering one range, in order."""

    chunks: tuple[tuple[int, int], ...]
    overlap: int = OVERLAP

    def __len__(self) -> int:
        return len(self.chunks)

    def detect_from(self, k: int) -> int:
        """The first frame chunk ``k``'s detector sees (its begin, less the overlap after the first)."""
        begin = self.chunks[k][0]
        return begin if k == 0 else max(self.chunks[0][0], begin - self.overlap)

    def frames_detected(self) -> int:
        """Frames detected in all, overlaps included (the progress bar's total)."""
        return sum(end - self.detect_from(k) for k, (_, end) in enumerate(self.chunks))

    def record(self) -> dict[str, Any]:
        """What a track records about the split (nothing for one chunk: one process's track)."""
        if len(self.chunks) == 1:
            return {}
        return {"chunks": [list(c) for c in self.chunks], "overlap": self.overlap}


def plan_chunks(start: int, stop: int, workers: int | None, cores: int | None = None) -> ChunkPlan:
    """Chunks of frames [start, stop) for ``workers`` processes (None: `auto_workers`).

    Chunks are as equal as can be; fewer than asked when they would be shorter than `MIN_CHUNK`.
    """
    n_frames = stop - start
    if workers is None:
        workers = auto_workers(n_frames, available_cores() if cores is None else cores)
    if workers < 1:
        raise ValueError(f"workers must be at least 1, got {workers}")
    count = max(1, min(workers, n_frames // MIN_CHUNK))
    bounds = [start + round(i * n_frames / count) for i in range(count + 1)]
    return ChunkPlan(tuple(zip(bounds[:-1], bounds[1:])))


def body_size(body: np.ndarray) -> float:
    """The longer side of the box around one frame's found body points, in pixels."""
    seen = body[body[:, 2] > 0, :2]
    if len(seen) < 2:
        return 1.0
    return float(max(np.ptp(seen[:, 0]), np.ptp(seen[:, 1]), 1.0))


def hip_distances(a: PoseTrack, b: PoseTrack) -> np.ndarray:
    """Per frame, the distance between the two tracks' hip centres in body sizes (of ``a``);
    NaN where either track has no detection. Tracks of the same frames."""
    hip = BODY["MidHip"]
    out = np.full(len(a), np.nan)
    for t in np.flatnonzero(a.detected & b.detected):
        gap = np.linalg.norm(a.body[t, hip, :2] - b.body[t, hip, :2])
        out[t] = gap / body_size(a.body[t])
    return out


def same_subject(previous: PoseTrack, fresh: PoseTrack) -> bool:
    """Whether ``fresh`` (a new detector's track over the overlap) follows ``previous``'s subject.

    Judged on the overlap's second half, where the new detector has settled: in every frame
    where ``fresh`` finds someone, ``previous`` found its subject there, within `SAME_PERSON`
    body sizes (hip centres), and that happens at least once. ``fresh`` may miss a frame
    (detector noise: then it finds the subject again by its own tracking). Anything else
    (someone ``previous`` did not take for its subject, nobody in view at the join) counts
    as not confirmed, and the caller detects the chunk again with the subject carried on:
    slower, never wrong.
    """
    half = len(previous) // 2
    a, b = previous.slice(half, len(previous)), fresh.slice(half, len(fresh))
    if not b.detected.any() or (b.detected & ~a.detected).any():
        return False
    return bool(np.nanmax(hip_distances(a, b)) < SAME_PERSON)


def put(track: PoseTrack, offset: int, part: PoseTrack) -> None:
    """Copy ``part`` into ``track`` from entry ``offset`` on."""
    end = offset + len(part)
    track.body[offset:end] = part.body
    track.face[offset:end] = part.face
    track.hands[offset:end] = part.hands
    track.detected[offset:end] = part.detected
