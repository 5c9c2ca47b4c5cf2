"""Importing OpenPose's JSON output (``--write_json``) as a `PoseTrack`.

OpenPose writes one ``<name>_<frame number>_keypoints.json`` per frame, holding
``{"people": [{"pose_keypoints_2d": [x, y, c, ...], "face_keypoints_2d": [...],
"hand_left_keypoints_2d": [...], "hand_right_keypoints_2d": [...]}, ...]}``. The body is
BODY_25 (75 values) or COCO-18 (54 values); a missing or empty array means that part was
not detected. Several people per frame are reduced to one subject, chosen and followed as
for our own detector (`subject`). Keypoints written normalized to [0, 1]
(``--keypoint_scale 3``) are scaled to pixels with ``size``.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import InputError
from .layout import BODY, COCO_18_TO_BODY_25
from .subject import Person, SubjectTracker
from .track import N_BODY, N_FACE, N_HAND, FramePose, PoseTrack

_FRAME_NUMBER = re.compile(r"(\d+)(?!.*\d)")  # the last run of digits in the name
_SUFFIX = "_keypoints.json"
# Array names in current OpenPose, then the names used before version 1.2.
_KEYS = {
    "body": ("pose_keypoints_2d", "pose_keypoints"),
    "face": ("face_keypoints_2d", "face_keypoints"),
    "left": ("hand_left_keypoints_2d", "hand_left_keypoints"),
    "right": ("hand_right_keypoints_2d", "hand_right_keypoints"),
}


def keypoint_files(folder: Path) -> dict[int, Path]:
    """The ``*_keypoints.json`` files of ``folder`` by frame number."""
    files: dict[int, Path] = {}
    for path in sorted(folder.glob(f"*{_SUFFIX}")):
        match = _FRAME_NUMBER.search(path.name[: -len(_SUFFIX)])
        if match is None:
            raise InputError(path, "has no frame number in its name (expected NAME_<number>_keypoints.json)")
        number = int(match.group(1))
        if number in files:
            raise InputError(path, f"has the same frame number ({number}) as {files[number].name}")
        files[number] = path
    if not files:
        raise InputError(folder, "contains no OpenPose *_keypoints.json files")
    return files


def read_people(path: Path, layouts: set[str] | None = None) -> list[FramePose]:
    """Every person in one OpenPose JSON file, in BODY_25 / face-70 / hand-21 layouts.

    The body layouts met ("BODY_25", "COCO_18") are added to ``layouts`` if given.
    """
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputError(path, f"is not readable OpenPose JSON ({exc})") from exc
    people = data.get("people") if isinstance(data, dict) else None
    if not isinstance(people, list):
        raise InputError(path, 'has no "people" list: not OpenPose keypoint JSON')
    return [_person_pose(path, person, layouts if layouts is not None else set()) for person in people]


def _person_pose(path: Path, person: Any, layouts: set[str]) -> FramePose:
    if not isinstance(person, dict):
        raise InputError(path, "has a person entry that is not an object")
    pose = FramePose.empty()
    body = _points(path, person, "body")
    if body is not None:
        pose.body[:] = _body25(path, body)
        layouts.add("BODY_25" if len(body) == N_BODY else "COCO_18")
    face = _points(path, person, "face")
    if face is not None:
        pose.face[:] = _expect(path, face, N_FACE, "face_keypoints_2d")
    for slot, side in ((0, "left"), (1, "right")):
        hand = _points(path, person, side)
        if hand is not None:
            pose.hands[slot] = _expect(path, hand, N_HAND, f"hand_{side}_keypoints_2d")
    return pose


def _points(path: Path, person: dict, part: str) -> np.ndarray | None:
    """One keypoint array as (N, 3), or None where it is missing or empty."""
    values = next((person[k] for k in _KEYS[part] if k in person), None)
    if values is None or len(values) == 0:
        return None
    try:
        arr = np.asarray(values, np.float64)
    except (TypeError, ValueError) as exc:
        raise InputError(path, f"has non-numeric {_KEYS[part][0]} values") from exc
    if arr.ndim != 1 or len(arr) % 3 or not np.all(np.isfinite(arr)):
        raise InputError(path, f"{_KEYS[part][0]} must be a flat list of x, y, confidence triples")
    return arr.reshape(-1, 3)


def _expect(path: Path, points: np.ndarray, count: int, name: str) -> np.ndarray:
    if len(points) != count:
        raise InputError(path, f"{name} has {len(points)} points, expected {count}")
    return points


def _body25(path: Path, body: np.ndarray) -> np.ndarray:
    """BODY_25 as it is, or COCO-18 placed into BODY_25 (MidHip from the two hips)."""
    if len(body) == N_BODY:
        return body
    if len(body) != len(COCO_18_TO_BODY_25):
        raise InputError(path, f"pose_keypoints_2d has {len(body)} points; expected 25 (BODY_25) "
                               f"or 18 (COCO)")
    out = np.zeros((N_BODY, 3))
    out[list(COCO_18_TO_BODY_25)] = body
    hips = out[[BODY["RHip"], BODY["LHip"]]]
    if np.all(hips[:, 2] > 0):
        out[BODY["MidHip"]] = (*hips[:, :2].mean(axis=0), hips[:, 2].min())
    return out


def person_from_keypoints(pose: FramePose) -> Person | None:
    """Where a person of an OpenPose file is (for choosing and following one), or None if empty."""
    points = pose.body[pose.body[:, 2] > 0, :2]
    if len(points) == 0:
        return None
    (x0, y0), (x1, y1) = points.min(axis=0), points.max(axis=0)
    hips = pose.body[[BODY["MidHip"], BODY["RHip"], BODY["LHip"]]]
    seen = hips[hips[:, 2] > 0, :2]
    anchor = seen[0] if len(seen) else points.mean(axis=0)  # MidHip first, then either hip
    return Person((float(x0), float(y0), float(x1), float(y1)), (float(anchor[0]), float(anchor[1])))


def _scale_normalized(frames: dict[int, list[FramePose]], size: tuple[int, int] | None,
                      folder: Path) -> None:
    """Scale keypoints written in [0, 1] (OpenPose ``--keypoint_scale 3``) to pixels, in place."""
    coords = [arr[arr[..., 2] > 0, :2] for people in frames.values() for p in people
              for arr in (p.body, p.face, p.hands)]
    coords = [c for c in coords if len(c)]
    if not coords or np.concatenate(coords).max() > 1.0:
        return  # already in pixels
    if size is None:
        raise InputError(folder, "keypoints are normalized to [0, 1]; give the frame size to scale them")
    scale = np.asarray(size, np.float32)
    for people in frames.values():
        for p in people:
            for arr in (p.body, p.face, p.hands):
                arr[..., :2] *= scale


def _estimated_size(frames: dict[int, list[FramePose]], folder: Path) -> tuple[int, int]:
    """A frame size that holds every keypoint, when the caller does not know the real one."""
    if not any((arr[..., 2] > 0).any() for people in frames.values() for p in people
               for arr in (p.body, p.face, p.hands)):
        raise InputError(folder, f"no person was detected in any of its {len(frames)} files, so "
                                 f"the frame size cannot be estimated from the keypoints; give "
                                 f"the video (--video) or the size (--size WxH)")
    width = height = 1.0
    for people in frames.values():
        for p in people:
            for arr in (p.body, p.face, p.hands):
                seen = arr[arr[..., 2] > 0]
                if len(seen):
                    width, height = max(width, seen[:, 0].max() + 1), max(height, seen[:, 1].max() + 1)
    return int(np.ceil(width)), int(np.ceil(height))


def load_openpose_folder(folder: str | Path, size: tuple[int, int] | None = None, fps: float = 25.0,
                         subject_hint: tuple[float, float] | None = None) -> PoseTrack:
    """A `PoseTrack` from a folder of OpenPose JSON files, one subject followed across frames.

    Entry ``i`` of the track is the file numbered ``first + i`` (``first``, the lowest
    number, is recorded in the track's detector dict); numbers missing in between become
    undetected frames. ``size`` is the video's (width, height); without it, the smallest
    size that holds every keypoint is used (and the track records that it was estimated; a
    folder with nobody in it has no size to estimate, an `InputError`).
    ``subject_hint`` picks the person nearest that point as in `detector.HolisticConfig`.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputError(folder, "is not a folder of OpenPose JSON files")
    files = keypoint_files(folder)
    layouts: set[str] = set()
    frames = {number: read_people(path, layouts) for number, path in files.items()}
    _scale_normalized(frames, size, folder)
    track_size = size if size is not None else _estimated_size(frames, folder)
    first, last = min(files), max(files)
    record = {"name": "openpose_json", "folder": str(folder), "first_frame": first,
              "files": len(files), "body_layout": "+".join(sorted(layouts)) or "none",
              "size_estimated": size is None}
    track = PoseTrack.empty(last - first + 1, fps, track_size, record)
    tracker = SubjectTracker(fps=fps)
    for number, people in sorted(frames.items()):
        candidates = [(pose, person_from_keypoints(pose)) for pose in people]
        candidates = [(pose, person) for pose, person in candidates if person is not None]
        choice = tracker.choose([person for _, person in candidates], number - first,
                                track_size, subject_hint)
        if choice is None:
            continue
        pose, person = candidates[choice]
        tracker.update(person, number - first)
        track.set_frame(number - first, pose)
        track.detected[number - first] = True
    return track

