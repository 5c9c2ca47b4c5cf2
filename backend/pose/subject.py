"""Choosing one subject among several people and keeping the same person across frames.

MediaPipe Holistic follows one person per image: it detects the most prominent person, then
tracks them from frame to frame, and when it loses them it detects again, possibly someone
else. This module holds the logic around that, free of MediaPipe so it can be tested alone:

- `Person`: where one detected person is (box, hip centre, size), from pose landmarks, and
  what their torso looks like (a colour histogram).
- `find_people`: everyone a single-person detector can find in an image, by detecting,
  hiding the person found and detecting again.
- `choose_first`: the subject on the first frame with people: the one nearest a hint point
  if the user gave one, else the largest and most central.
- `SubjectTracker`: accepts a detection only if it can be the same person as last seen
  (its hip centre moved less than a gate that widens while the subject is out of sight,
  its size is similar and, after a gap, its torso colours match), and picks the nearest
  plausible person when re-acquiring.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import cv2
import numpy as np

# MediaPipe pose landmarks used here (see mediapipe_map for the full list).
_LEFT_SHOULDER, _RIGHT_SHOULDER, _LEFT_HIP, _RIGHT_HIP = 11, 12, 23, 24
# Landmarks are joints, not the silhouette: widen their box so a mask covers the person.
BOX_MARGIN = 0.12


@dataclass(frozen=True, eq=False)
class Person:
    """One detected person in image pixels."""

    box: tuple[float, float, float, float]  # x0, y0, x1, y1 around all pose landmarks
    anchor: tuple[float, float]  # mid-hip point: moves least when limbs move
    appearance: np.ndarray | None = None  # torso colour histogram (see torso_appearance)

    @property
    def size(self) -> float:
        """A body scale in pixels (the longer side of the box, so bending keeps it steady)."""
        x0, y0, x1, y1 = self.box
        return float(max(x1 - x0, y1 - y0, 1.0))

    @property
    def center_x(self) -> float:
        return (self.box[0] + self.box[2]) / 2

    def padded_box(self, margin: float = BOX_MARGIN) -> tuple[float, float, float, float]:
        pad = margin * self.size
        x0, y0, x1, y1 = self.box
        return (x0 - pad, y0 - pad, x1 + pad, y1 + pad)


def person_from_pose(pose: np.ndarray, size: tuple[int, int],
                     image: np.ndarray | None = None) -> Person:
    """`Person` from MediaPipe's (33, 2+) normalized pose landmarks in a ``size`` image.

    All 33 landmarks count, visible or not: MediaPipe places hidden ones plausibly, and
    the whole-body extent is what keeps the size steady when the person is partly hidden.
    With the ``image`` itself, the person's torso colours are recorded too.
    """
    xy = np.asarray(pose, np.float64)[:, :2] * np.asarray(size, np.float64)
    x0, y0 = xy.min(axis=0)
    x1, y1 = xy.max(axis=0)
    anchor = (xy[_LEFT_HIP] + xy[_RIGHT_HIP]) / 2
    appearance = None if image is None else torso_appearance(image, xy)
    return Person((float(x0), float(y0), float(x1), float(y1)),
                  (float(anchor[0]), float(anchor[1])), appearance)


def torso_appearance(image: np.ndarray, xy: np.ndarray) -> np.ndarray | None:
    """A hue-saturation histogram of the torso (RGB ``image``, pose landmarks ``xy`` in pixels).

    The torso is the box of shoulders and hips, shrunk a little so that it holds clothing
    rather than background. Hue and saturation change little with lighting; two people in
    different clothes differ clearly (Bhattacharyya distance above 0.75 between the people
    of hard_two_people.avi and hard_multi_person.avi, at most 0.6 for the same person
    across a second). None when the torso is outside the image or too small.
    """
    corners = xy[[_LEFT_SHOULDER, _RIGHT_SHOULDER, _LEFT_HIP, _RIGHT_HIP]]
    (x0, y0), (x1, y1) = corners.min(axis=0), corners.max(axis=0)
    w, h = x1 - x0, y1 - y0
    x0, x1, y0, y1 = x0 + 0.15 * w, x1 - 0.15 * w, y0 + 0.1 * h, y1 - 0.1 * h
    height, width = image.shape[:2]
    cx0, cy0, cx1, cy1 = _clip_box((x0, y0, x1, y1), width, height)
    if (cx1 - cx0) * (cy1 - cy0) < 64:
        return None
    hsv = cv2.cvtColor(np.ascontiguousarray(image[cy0:cy1, cx0:cx1]), cv2.COLOR_RGB2HSV)
    hist = cv2.calcHist([hsv], [0, 1], None, [16, 8], [0, 180, 0, 256]).ravel()
    return (hist / max(hist.sum(), 1.0)).astype(np.float32)


def appearance_distance(a: np.ndarray, b: np.ndarray) -> float:
    """Bhattacharyya distance of two histograms: 0 the same, 1 nothing in common."""
    return float(cv2.compareHist(a, b, cv2.HISTCMP_BHATTACHARYYA))


def box_iou(a: tuple[float, ...], b: tuple[float, ...]) -> float:
    """Intersection over union of two (x0, y0, x1, y1) boxes."""
    ix = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def mask_boxes(image: np.ndarray, boxes: list[tuple[float, ...]],
               keep: tuple[float, ...] | None = None) -> np.ndarray:
    """A copy of ``image`` with ``boxes`` filled with grey, except inside ``keep``."""
    out = image.copy()
    height, width = image.shape[:2]
    keep_region = None
    if keep is not None:
        kx0, ky0, kx1, ky1 = _clip_box(keep, width, height)
        keep_region = (slice(ky0, ky1), slice(kx0, kx1))
        kept = image[keep_region].copy()
    for box in boxes:
        x0, y0, x1, y1 = _clip_box(box, width, height)
        out[y0:y1, x0:x1] = 127
    if keep_region is not None:
        out[keep_region] = kept
    return out


def _clip_box(box: tuple[float, ...], width: int, height: int) -> tuple[int, int, int, int]:
    x0, y0, x1, y1 = box
    return (int(np.clip(np.floor(x0), 0, width)), int(np.clip(np.floor(y0), 0, height)),
            int(np.clip(np.ceil(x1), 0, width)), int(np.clip(np.ceil(y1), 0, height)))


def find_people(image: np.ndarray, detect_one: Callable[[np.ndarray], Person | None],
                max_people: int = 4) -> list[Person]:
    """Everyone ``detect_one`` (a single-person detector) finds, strongest first.

    After each find, that person's padded box is greyed out and the image searched again.
    People much smaller than the frame or hidden behind others may be missed: a
    single-person detector only reports prominent people, who are the candidates anyway.
    """
    people: list[Person] = []
    work = image
    for _ in range(max_people):
        person = detect_one(work)
        if person is None or any(box_iou(person.box, p.box) > 0.5 for p in people):
            break  # nobody left, or the mask did not hide the last one
        people.append(person)
        work = mask_boxes(image, [p.padded_box() for p in people])
    return people


def choose_first(people: list[Person], frame_size: tuple[int, int],
                 hint: tuple[float, float] | None = None) -> int:
    """Index of the subject among ``people`` (non-empty) when none was chosen before.

    With a ``hint`` (x, y) in pixels: the person whose box is nearest the point (0 when
    inside; ties go to the nearer hip centre). Without: the largest and most central,
    scoring size x (1 - half the horizontal distance from the centre, as a fraction of
    half the width), so a slightly smaller person in the middle beats one at the edge.
    """
    if not people:
        raise ValueError("no people to choose from")
    if hint is not None:
        hx, hy = hint

        def distance(p: Person) -> tuple[float, float]:
            x0, y0, x1, y1 = p.box
            dx = max(x0 - hx, 0.0, hx - x1)
            dy = max(y0 - hy, 0.0, hy - y1)
            return (float(np.hypot(dx, dy)), float(np.hypot(p.anchor[0] - hx, p.anchor[1] - hy)))

        return min(range(len(people)), key=lambda i: distance(people[i]))
    half_width = frame_size[0] / 2

    def score(p: Person) -> float:
        off_centre = min(abs(p.center_x - half_width) / half_width, 1.0)
        return p.size * (1.0 - 0.5 * off_centre)

    return max(range(len(people)), key=lambda i: score(people[i]))


@dataclass
class SubjectTracker:
    """Remembers where the subject was last seen and judges whether a detection is them.

    A detection at frame ``t`` is the subject if its hip centre lies within
    ``size * (jump + drift * seconds out of sight)`` of where they were last seen, its size
    is within a factor ``max_size_ratio``, and, when the subject was out of sight in the
    frame before, its torso colours are within ``max_appearance_distance`` of theirs.
    ``jump`` allows for fast motion between consecutive frames (dance and walking move the
    hips by about 0.1 body sizes per frame at most); ``drift`` lets the gate open while the
    subject is out of sight, so someone walking out and back in is found again, and the
    colour check keeps a bystander from being taken for them meanwhile.
    """

    fps: float
    jump: float = 0.25  # body sizes, between consecutive frames
    drift: float = 1.0  # body sizes per second out of sight
    max_size_ratio: float = 2.0
    max_appearance_distance: float = 0.6
    appearance_memory: float = 0.8  # weight of the old histogram when mixing in a new one
    search_interval_s: float = 0.25  # when lost for over a second, search this often
    last: Person | None = None
    last_seen: int = -1
    last_search: int = -(10**9)
    appearance: np.ndarray | None = None

    @property
    def acquired(self) -> bool:
        """Whether a subject has been chosen (seen at least once)."""
        return self.last is not None

    def accepts(self, person: Person, t: int) -> bool:
        """Whether ``person``, detected at frame ``t``, can be the subject."""
        if self.last is None:
            return True
        frames_since = max(t - self.last_seen, 1)
        gate = self.last.size * (self.jump + self.drift * (frames_since - 1) / self.fps)
        distance = float(np.hypot(person.anchor[0] - self.last.anchor[0],
                                  person.anchor[1] - self.last.anchor[1]))
        ratio = person.size / self.last.size
        if distance > gate or not 1.0 / self.max_size_ratio <= ratio <= self.max_size_ratio:
            return False
        if frames_since > 1 and self.appearance is not None and person.appearance is not None:
            return appearance_distance(self.appearance, person.appearance) <= self.max_appearance_distance
        return True

    def choose(self, people: list[Person], t: int, frame_size: tuple[int, int],
               hint: tuple[float, float] | None = None) -> int | None:
        """The subject among ``people``: the first choice, or the nearest plausible one."""
        if not people:
            return None
        if self.last is None:
            return choose_first(people, frame_size, hint)
        plausible = [i for i, p in enumerate(people) if self.accepts(p, t)]
        if not plausible:
            return None
        ax, ay = self.last.anchor
        return min(plausible, key=lambda i: np.hypot(people[i].anchor[0] - ax, people[i].anchor[1] - ay))

    def update(self, person: Person, t: int) -> None:
        """The subject was found at frame ``t``: remember where, and mix in their colours."""
        self.last, self.last_seen = person, t
        if person.appearance is not None:
            if self.appearance is None:
                self.appearance = person.appearance
            else:
                keep = self.appearance_memory
                self.appearance = (keep * self.appearance + (1 - keep) * person.appearance).astype(np.float32)

    def should_search(self, t: int) -> bool:
        """Whether to run the (costly) search for people at frame ``t``.

        Always while the subject was seen within the last second (or never chosen); after
        that every ``search_interval_s`` only, so a long absence with someone else in view
        costs little.
        """
        if self.last is None or (t - self.last_seen) <= self.fps:
            return True
        return (t - self.last_search) >= max(1, round(self.search_interval_s * self.fps))

    def searched(self, t: int) -> None:
        """A search for people ran at frame ``t``."""
        self.last_search = t
