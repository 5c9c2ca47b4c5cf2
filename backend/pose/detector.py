"""Pose detection with MediaPipe Holistic: one subject's OpenPose-layout keypoints per frame.

`detect_video` streams a video through `HolisticDetector` and returns a `PoseTrack` with one
entry per frame (``detected`` False where the subject was not found; gaps are filled by a
later stage). Results are cached by video content and settings (see `cache`). A long video
is split into chunks detected side by side in worker processes and joined so that the same
subject runs through (see `chunks`).

How one subject is kept when several people are in view: Holistic itself follows one
person from frame to frame. Each of its detections is checked against where the subject was
last seen (`subject.SubjectTracker`); on the first frame with people, or when Holistic has
jumped to someone else, everyone in the frame is listed (`subject.find_people`, a static
single-person pose detector run repeatedly with the people found so far greyed out), the
subject is chosen among them, and Holistic is restarted on that frame with the other people
greyed out, so that it locks onto the subject and then tracks them on unmasked frames.
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import cv2
import mediapipe as mp
import numpy as np

from ..errors import BackendError
from ..progress import ProgressCounter, ProgressFn
from ..video import probe, read_frames
from . import cache
from .chunks import ChunkPlan, plan_chunks, put, same_subject
from .mediapipe_map import frame_pose_from_results, landmark_array
from .native_logs import native_logs_hidden
from .processes import run_in_processes
from .subject import Person, SubjectTracker, box_iou, find_people, mask_boxes, person_from_pose
from .track import FramePose, PoseTrack

DETECTOR_NAME = "mediapipe_holistic"
# Bump when the detection logic changes what a track contains, so old cache entries miss.
DETECTOR_VERSION = 1
# Pose landmark model files per model_complexity. Only "full" ships in the mediapipe wheel;
# the others would be downloaded, which fails offline.
_POSE_MODELS = {0: "pose_landmark_lite.tflite", 1: "pose_landmark_full.tflite",
                2: "pose_landmark_heavy.tflite"}


@dataclass(frozen=True)
class HolisticConfig:
    """Settings of the detector. Defaults are MediaPipe Holistic's own, except the iris
    landmarks (``refine_face_landmarks``), which give the two pupils of the OpenPose face."""

    model_complexity: int = 1  # 0 lite, 1 full, 2 heavy (only 1 is available offline)
    refine_face_landmarks: bool = True
    min_detection_confidence: float = 0.5
    min_tracking_confidence: float = 0.5
    smooth_landmarks: bool = True  # Holistic's own temporal filter on its landmarks
    # Which person is the subject when several are in view: the one nearest this (x, y)
    # point in frame pixels; None picks the largest, most central person.
    subject_hint: tuple[float, float] | None = None
    max_people: int = 4  # people listed when choosing or re-finding the subject
    # Detect on a copy of the frame scaled down to this longest side (None: the frame as it
    # is, the default and the recommendation). Holistic only warps the regions it looks at
    # to its models' small inputs, so its cost hardly depends on the frame size (measured:
    # no faster at 640 or 960 px than at 720p, nor at 1280 px than at 4K), while the face
    # and hands lose detail (on target_taiji.mp4 at 640 px, 10% fewer faces and hands found).
    max_side: int | None = None
    # Detector processes for one video, each on a chunk of it (see `chunks`); None: one per
    # core for long videos, one for short ones (`chunks.auto_workers`). How the work is split
    # is recorded in the track (and so in its cache key), not this number.
    workers: int | None = None

    def __post_init__(self) -> None:
        if self.model_complexity not in _POSE_MODELS:
            raise ValueError(f"model_complexity must be 0, 1 or 2, got {self.model_complexity}")
        if self.subject_hint is not None and len(self.subject_hint) != 2:
            raise ValueError(f"subject_hint must be an (x, y) point, got {self.subject_hint!r}")
        if self.max_side is not None and self.max_side < 64:
            raise ValueError(f"max_side must be at least 64 pixels, got {self.max_side}")
        if self.max_people < 1:
            raise ValueError(f"max_people must be at least 1, got {self.max_people}")
        if self.workers is not None and self.workers < 1:
            raise ValueError(f"workers must be at least 1, got {self.workers}")

    def settings(self) -> dict[str, Any]:
        """The settings as plain JSON values (for the track's detector record and the cache).

        ``workers`` is left out: the chunks it makes are recorded instead (`detector_record`)."""
        values = asdict(self)
        del values["workers"]
        if self.subject_hint is not None:
            values["subject_hint"] = [float(v) for v in self.subject_hint]
        return values


def detector_record(config: HolisticConfig, start: int, stop: int,
                    plan: ChunkPlan | None = None) -> dict[str, Any]:
    """What a track records about the detector that made it, the frames it covers and, where
    they ran in several processes, the chunks (a track of one process records none)."""
    return {
        "name": DETECTOR_NAME,
        "version": DETECTOR_VERSION,
        "mediapipe": mp.__version__,
        "settings": config.settings(),
        "start": int(start),
        "stop": int(stop),
        **(plan.record() if plan is not None else {}),
    }


def check_model_available(model_complexity: int) -> None:
    """Fail clearly (instead of a download error deep inside MediaPipe) if the model is missing."""
    model = Path(mp.__file__).parent / "modules" / "pose_landmark" / _POSE_MODELS[model_complexity]
    if not model.is_file():
        raise BackendError(
            f"MediaPipe's pose model for model_complexity={model_complexity} ({model.name}) is not "
            f"installed (only model_complexity=1 ships with mediapipe; the others are downloaded "
            f"on first use, which needs internet access)")


class HolisticDetector:
    """Runs Holistic over consecutive frames of one video and keeps one subject.

    Call `process` with frames in order (frame numbers counted from 0); use as a context
    manager or call `close`.
    """

    def __init__(self, config: HolisticConfig, fps: float,
                 tracker: SubjectTracker | None = None) -> None:
        """``tracker``: the subject as seen before the first frame (a chunk continuing the
        one before it); None chooses the subject afresh."""
        check_model_available(config.model_complexity)
        self.config = config
        self.tracker = tracker if tracker is not None else SubjectTracker(fps=fps)
        self._holistic = mp.solutions.holistic.Holistic(
            static_image_mode=False,
            model_complexity=config.model_complexity,
            smooth_landmarks=config.smooth_landmarks,
            refine_face_landmarks=config.refine_face_landmarks,
            min_detection_confidence=config.min_detection_confidence,
            min_tracking_confidence=config.min_tracking_confidence,
        )
        self._finder: Any = None  # static single-person Pose, made on the first search

    def __enter__(self) -> "HolisticDetector":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._holistic.close()
        if self._finder is not None:
            self._finder.close()

    def process(self, frame: np.ndarray, t: int) -> tuple[FramePose, bool]:
        """The subject's keypoints in ``frame`` (RGB uint8, frame number ``t``), and whether found."""
        frame_size = _size(frame)
        image = self._resize(frame)
        results = self._holistic.process(image)
        person = self._person(results, image)
        tracker = self.tracker
        if person is not None and tracker.acquired and tracker.accepts(person, t):
            tracker.update(person, t)
            return frame_pose_from_results(results, frame_size), True
        if person is None or not tracker.should_search(t):
            return FramePose.empty(), False  # nobody in view, or searched a moment ago
        # Someone is in view, but the subject is still to be chosen or this is someone else.
        results = self._acquire(image, results, person, t, hint=self._hint(image, frame_size))
        if results is None:
            return FramePose.empty(), False
        return frame_pose_from_results(results, frame_size), True

    def _acquire(self, image: np.ndarray, results: Any, person: Person, t: int,
                 hint: tuple[float, float] | None) -> Any | None:
        """Find the subject among everyone in ``image`` and lock Holistic onto them.

        People and the ``hint`` are in the pixels of ``image``."""
        tracker = self.tracker
        tracker.searched(t)
        people = find_people(image, self._detect_one, self.config.max_people) or [person]
        choice = tracker.choose(people, t, _size(image), hint)
        if choice is None:
            return None  # the subject is not among them
        subject = people[choice]
        if box_iou(subject.box, person.box) < 0.5:
            # Holistic follows someone else: restart it on a frame where only the subject shows.
            others = [p.padded_box() for i, p in enumerate(people) if i != choice]
            self._holistic.reset()
            results = self._holistic.process(mask_boxes(image, others, keep=subject.padded_box()))
            person = self._person(results, image)
            if person is None or box_iou(subject.box, person.box) < 0.3:
                self._holistic.reset()  # do not keep tracking whoever it found instead
                return None
        tracker.update(person, t)
        return results

    def _detect_one(self, image: np.ndarray) -> Person | None:
        """The most prominent person in a still image (used to list everyone in view)."""
        if self._finder is None:
            self._finder = mp.solutions.pose.Pose(
                static_image_mode=True,
                model_complexity=self.config.model_complexity,
                min_detection_confidence=self.config.min_detection_confidence,
            )
        return self._person(self._finder.process(image), image)

    @staticmethod
    def _person(results: Any, image: np.ndarray) -> Person | None:
        pose = landmark_array(results.pose_landmarks, with_visibility=True)
        return None if pose is None else person_from_pose(pose, _size(image), image)

    def _resize(self, frame: np.ndarray) -> np.ndarray:
        """The image Holistic sees: the frame, or a copy scaled down to ``max_side``."""
        limit = self.config.max_side
        height, width = frame.shape[:2]
        if limit is None or max(height, width) <= limit:
            return np.ascontiguousarray(frame)
        scale = limit / max(height, width)
        size = (max(1, round(width * scale)), max(1, round(height * scale)))
        return cv2.resize(frame, size, interpolation=cv2.INTER_AREA)

    def _hint(self, image: np.ndarray, frame_size: tuple[int, int]) -> tuple[float, float] | None:
        """The subject hint (given in frame pixels) in the pixels of ``image``."""
        hint = self.config.subject_hint
        if hint is None:
            return None
        scale = image.shape[1] / frame_size[0]
        return (hint[0] * scale, hint[1] * scale)


def _size(image: np.ndarray) -> tuple[int, int]:
    return (image.shape[1], image.shape[0])


@dataclass(frozen=True)
class RangeTask:
    """Detect frames [begin, end) of one video: what a detector process needs (picklable)."""

    path: Path
    config: HolisticConfig
    fps: float | None  # the frame rate of an image folder (movies use their own)
    info_fps: float  # the video's frame rate, as the subject tracker counts time
    size: tuple[int, int]  # (width, height) of the frames
    begin: int
    end: int
    origin: int  # the frame that tracker times count from (the whole track's first)
    tracker: SubjectTracker | None = None  # the subject before ``begin``; None: choose afresh
    snapshot: int | None = None  # keep the subject as it is after this frame (see RangeResult)


@dataclass
class RangeResult:
    track: PoseTrack  # frames [begin, end)
    # The subject after frame ``snapshot``: where the next chunk's detector starts when it has
    # to carry this chunk's subject on (it starts before this chunk ends; see `chunks`).
    snapshot: SubjectTracker | None = None


def detect_range(task: RangeTask, tick: Callable[[int], None]) -> RangeResult:
    """Detect the subject in ``task``'s frames, calling ``tick(1)`` after each frame.

    Runs in this process or in a worker process (see `processes`): frames are streamed from
    the file (a chunk seeks to its first keyframe), so memory does not grow with the range."""
    result = RangeResult(PoseTrack.empty(task.end - task.begin, task.info_fps, task.size))
    frames = read_frames(task.path, task.begin, task.end, task.fps)  # a bad file fails here
    with HolisticDetector(task.config, task.info_fps, copy.deepcopy(task.tracker)) as detector:
        for i, frame in enumerate(frames, task.begin):
            pose, found = detector.process(frame, i - task.origin)
            result.track.set_frame(i - task.begin, pose)
            result.track.detected[i - task.begin] = found
            if i == task.snapshot:
                result.snapshot = copy.deepcopy(detector.tracker)
            tick(1)
    return result


def detect_in_chunks(task: RangeTask, plan: ChunkPlan,
                     counter: ProgressCounter) -> tuple[PoseTrack, list[int]]:
    """`detect_range` over ``task``'s frames, one process per chunk of ``plan``, joined; and
    the chunks detected twice.

    A chunk whose fresh subject is not the previous chunk's (see `chunks.same_subject`) is
    detected again here, from the same first frame, with the previous chunk's subject as it
    was there carried on: what one process would have done, up to Holistic's own state."""
    last = len(plan) - 1
    tasks = [replace(task, begin=plan.detect_from(k), end=end,
                     snapshot=plan.detect_from(k + 1) - 1 if k < last else None)
             for k, (_, end) in enumerate(plan.chunks)]
    results = run_in_processes(detect_range, tasks, counter.advance)
    track = PoseTrack.empty(task.end - task.begin, task.info_fps, task.size)
    put(track, 0, results[0].track)
    again = []
    for k in range(1, len(plan)):
        begin = plan.chunks[k][0]
        lead = begin - tasks[k].begin
        ours = track.slice(tasks[k].begin - task.begin, begin - task.begin)
        if not same_subject(ours, results[k].track.slice(0, lead)):
            counter.add_total(len(results[k].track))
            results[k] = detect_range(replace(tasks[k], tracker=results[k - 1].snapshot),
                                      counter.advance)
            again.append(k)
        put(track, begin - task.begin, results[k].track.slice(lead, len(results[k].track)))
    return track, again


def detect_video(
    path: str | Path,
    config: HolisticConfig = HolisticConfig(),
    start: int = 0,
    stop: int | None = None,
    progress: bool = True,
    report: ProgressFn | None = None,
    use_cache: bool = True,
    fps: float | None = None,
) -> PoseTrack:
    """Keypoints of one subject in frames [start, stop) of the video at ``path``.

    The track has exactly one entry per frame (entry ``i`` is frame ``start + i``), in
    pixels of the full frame. ``progress`` shows a bar on stderr; ``report(done, total)`` is
    called per frame (it may raise `JobCancelled`). With ``use_cache`` a track made before for
    the same video content, settings and range is returned without detecting again. ``fps``
    is the frame rate of an image-sequence folder (movies use their own). Long videos are
    detected in several processes (``config.workers``, see `chunks`), started by "spawn": a
    script that calls this needs Python's ``if __name__ == "__main__":`` guard.
    """
    info = probe(path, fps)
    stop = info.frame_count if stop is None else min(stop, info.frame_count)
    if not 0 <= start <= stop:
        raise ValueError(f"frame range [{start}, {stop}) is not within the video's {info.frame_count} frames")
    plan = plan_chunks(start, stop, config.workers)
    record = detector_record(config, start, stop, plan)
    key = cache.track_key(path, record) if use_cache else None
    if key is not None and (cached := cache.load_cached(key)) is not None:
        return cached
    task = RangeTask(Path(path), config, fps, info.fps, info.size, start, stop, start)
    with native_logs_hidden() as terminal, \
            ProgressCounter(plan.frames_detected(), "poses", progress, report, terminal) as counter:
        if len(plan) == 1:
            track = detect_range(task, counter.advance).track
            track.detector = record
        else:
            track, again = detect_in_chunks(task, plan, counter)
            track.detector = {**record, "detected_again": again}  # not in the key: it follows
    if key is not None:
        cache.store(key, track)
    return track
