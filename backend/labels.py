"""Pose labels: the coloured stick figures that the generator learns to turn into a person.

Drawn as the official code draws them (data_prep/renderopenpose.py, used by graph_train.py and
graph_posenorm.py), at any output size:

* a white canvas;
* the body: a filled circle of radius 8 for every point with confidence > 0, in the point's
  colour, then every limb whose two points are present as a filled ellipse of half-width 4
  along the limb, in the colour of its *first* point, blended at 60 % over what is below
  (``addWeighted(canvas, 0.4, limb, 0.6)``). Sizes are at 1080 px height and scale with the
  output height (the official code draws at 1920x1080 and then resizes to 1024x512);
* the face: only if the mean confidence of its 70 points is >= 0.2, black dots of radius 4 at
  8 chosen points (brow centre, nose tip and base, chin, jaw ends, pupils) -- the official
  default; 9, 22 or all 70 points can be chosen;
* the hands (right, then left): points with confidence > 0.05 as circles of radius 3, then each
  finger bone as an ellipse of half-width 2 in the colour of its outer point, blended at 60 %.

Where we differ from the official code, on purpose:

* The official scripts draw RGB colour tuples into an OpenCV (BGR) canvas and then swap the
  channels, so their saved labels show every colour with red and blue exchanged. We draw the
  palettes as written (OpenPose's own rendering colours); ``swap_red_blue=True`` reproduces
  the official pixels.
* Shapes are drawn straight at the output size with sub-pixel precision and, by default,
  anti-aliased edges, which looks like the official draw-at-1080p-then-downscale without its
  cost. The official ``int()`` truncation of angles and lengths is not copied.
* ``face_points=70`` draws all 70 points (the official code silently draws 8 for it).
* The default body layout is BODY_25, not the official BODY_23 (see ``LabelStyle``); BODY_23
  is drawn exactly as the official ``renderpose23`` (its points, limbs and palette).
* Limbs take the colour of their first point as in the official renderer; OpenPose's own
  renderer uses the second point's (so OpenPose's k-th BODY_25 limb is not drawn in colour ``k``).

Keypoints are mapped from the pose frame (``pose_size``) to the output (``out_size``), both
(width, height). ``fit="letterbox"`` scales uniformly and centres (the official
``scale_resize`` for frames that are not 16:9); ``fit="stretch"`` scales x and y independently
(the official 1920x1080 -> 1024x512 resize). Frames must be resized the same way:
``frame_mapping`` gives the mapping to use.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Iterator

import cv2
import numpy as np

from .pose.layout import (BODY_23_COLORS, BODY_23_FROM_25, BODY_23_LIMBS, BODY_25_COLORS,
                          HAND_FINGERS, HAND_LEFT, HAND_RIGHT)
from .pose.track import FramePose, PoseTrack

Color = tuple[int, int, int]

# The official BODY_25 stick figure (renderpose25): limbs in its order, each in the colour of
# its first point.
EDN_BODY_25_LIMBS: tuple[tuple[int, int], ...] = (
    (0, 1), (0, 15), (0, 16), (1, 2), (1, 5), (1, 8), (2, 3), (3, 4), (5, 6), (6, 7), (8, 9),
    (8, 12), (9, 10), (10, 11), (11, 22), (11, 24), (12, 13), (13, 14), (14, 19), (14, 21),
    (15, 17), (16, 18), (19, 20), (22, 23),
)
# The official hand palette (renderhand), one colour per hand point.
HAND_COLORS: tuple[Color, ...] = (
    (230, 53, 40), (231, 115, 64), (233, 136, 31), (213, 160, 13), (217, 200, 19),
    (170, 210, 35), (139, 228, 48), (83, 214, 45), (77, 192, 46), (83, 213, 133),
    (82, 223, 190), (80, 184, 197), (78, 140, 189), (86, 112, 208), (83, 73, 217),
    (123, 46, 183), (189, 102, 255), (218, 83, 232), (229, 65, 189), (236, 61, 141),
    (255, 102, 145),
)
# The face points drawn for each ``face_points`` choice (renderface_sparse).
FACE_POINT_SETS: dict[int, tuple[int, ...]] = {
    8: (27, 30, 8, 0, 16, 33, 68, 69),
    9: (27, 30, 8, 0, 16, 33, 68, 69, 62),
    22: (27, 30, 8, 0, 16, 31, 33, 35, 68, 69, 36, 39, 42, 45, 17, 21, 22, 26, 48, 51, 54, 57),
    70: tuple(range(70)),
}
BODY_LAYOUTS = ("BODY_23", "BODY_25")
FITS = ("letterbox", "stretch")
_SHIFT = 4  # OpenCV fixed-point bits: coordinates in 1/16 pixel
_ONE = 1 << _SHIFT
_ELLIPSE_VERTICES = 32


@dataclass(frozen=True)
class LabelStyle:
    """How labels look. Defaults are the official code's (sizes in pixels at 1080 px height)."""

    # The official scripts use OpenPose's BODY_23 (graph_posenorm.py: poselen = 69), which keeps
    # the small toes and drops the heels. Our detector (MediaPipe) has heels and no small toes,
    # so BODY_23 would lose real foot points and keep absent ones: BODY_25 draws what we have.
    body_layout: str = "BODY_25"
    background: Color = (255, 255, 255)
    reference_height: int = 1080  # the height at which the sizes below hold
    joint_radius: float = 8.0
    limb_half_width: float = 4.0
    limb_opacity: float = 0.6  # addWeighted(canvas, 0.4, limb, 0.6)
    body_threshold: float = 0.0  # draw points with confidence above this
    face: bool = True
    face_points: int = 8  # 8, 9, 22 or 70
    face_color: Color = (0, 0, 0)
    face_dot_radius: float = 4.0
    face_threshold: float = 0.2  # on the mean confidence of the 70 points
    hands: bool = True
    hand_threshold: float = 0.05
    hand_joint_radius: float = 3.0
    hand_limb_half_width: float = 2.0
    fit: str = "letterbox"  # "letterbox" or "stretch" when pose and output aspects differ
    antialias: bool = True
    swap_red_blue: bool = False  # True: the official scripts' (channel-swapped) colours

    def __post_init__(self) -> None:
        if self.body_layout not in BODY_LAYOUTS:
            raise ValueError(f"body_layout must be one of {BODY_LAYOUTS}, got {self.body_layout!r}")
        if self.face_points not in FACE_POINT_SETS:
            raise ValueError(f"face_points must be one of {sorted(FACE_POINT_SETS)}, "
                             f"got {self.face_points}")
        if self.fit not in FITS:
            raise ValueError(f"fit must be one of {FITS}, got {self.fit!r}")
        for name in ("background", "face_color"):
            value = tuple(int(v) for v in getattr(self, name))
            if len(value) != 3 or not all(0 <= v <= 255 for v in value):
                raise ValueError(f"{name} must be three values in 0..255, "
                                 f"got {getattr(self, name)}")
            object.__setattr__(self, name, value)
        sizes = ("joint_radius", "limb_half_width", "face_dot_radius", "hand_joint_radius",
                 "hand_limb_half_width")
        if any(getattr(self, s) < 0 for s in sizes) or self.reference_height <= 0:
            raise ValueError("label sizes must be >= 0 and reference_height > 0")
        if not 0.0 <= self.limb_opacity <= 1.0:
            raise ValueError(f"limb_opacity must be in [0, 1], got {self.limb_opacity}")

    def to_dict(self) -> dict:
        """Plain JSON-ready values, for a model bundle's manifest."""
        data = asdict(self)
        data["background"] = list(self.background)
        data["face_color"] = list(self.face_color)
        return data

    @staticmethod
    def from_dict(data: dict) -> "LabelStyle":
        """The style stored by ``to_dict``; missing keys take the defaults."""
        known = {f.name for f in fields(LabelStyle)}
        unknown = set(data) - known
        if unknown:
            raise ValueError(f"unknown label style settings: {sorted(unknown)}")
        values = dict(data)
        for name in ("background", "face_color"):
            if name in values:
                values[name] = tuple(values[name])
        return LabelStyle(**values)


@dataclass(frozen=True)
class PixelMapping:
    """Pose pixels -> output pixels: ``x_out = x * sx + ox``, ``y_out = y * sy + oy``."""

    sx: float
    sy: float
    ox: float
    oy: float

    def apply(self, xy: np.ndarray) -> np.ndarray:
        return xy * np.array([self.sx, self.sy]) + np.array([self.ox, self.oy])


def frame_mapping(pose_size: tuple[int, int], out_size: tuple[int, int],
                  fit: str = "letterbox") -> PixelMapping:
    """How a frame of ``pose_size`` is placed in ``out_size`` (both (width, height))."""
    pw, ph = pose_size
    ow, oh = out_size
    if min(pw, ph, ow, oh) <= 0:
        raise ValueError(f"frame sizes must be positive, got pose {pose_size}, output {out_size}")
    if fit == "stretch":
        return PixelMapping(ow / pw, oh / ph, 0.0, 0.0)
    if fit != "letterbox":
        raise ValueError(f"fit must be one of {FITS}, got {fit!r}")
    s = min(ow / pw, oh / ph)
    return PixelMapping(s, s, (ow - s * pw) / 2.0, (oh - s * ph) / 2.0)


def render_label(pose: FramePose, pose_size: tuple[int, int], out_size: tuple[int, int],
                 style: LabelStyle = LabelStyle()) -> np.ndarray:
    """The label of one pose: an RGB uint8 image of ``out_size`` (width, height)."""
    ow, oh = int(out_size[0]), int(out_size[1])
    mapping = frame_mapping(pose_size, (ow, oh), style.fit)
    painter = _LabelPainter((ow, oh), style, oh / style.reference_height)
    _draw_body(painter, pose.body, mapping, style)
    if style.face:
        _draw_face(painter, pose.face, mapping, style)
    if style.hands:
        for side in (HAND_RIGHT, HAND_LEFT):  # official order: right hand, then left
            _draw_hand(painter, pose.hands[side], mapping, style)
    return painter.canvas


def render_track_labels(track: PoseTrack, out_size: tuple[int, int],
                        style: LabelStyle = LabelStyle()) -> Iterator[np.ndarray]:
    """The labels of every frame of ``track``, one at a time (nothing is held in memory)."""
    for i in range(len(track)):
        yield render_label(track.frame(i), track.size, out_size, style)


class _LabelPainter:
    """Sub-pixel OpenCV drawing on an RGB canvas, sizes scaled to the output."""

    def __init__(self, out_size: tuple[int, int], style: LabelStyle, size_scale: float) -> None:
        w, h = out_size
        self.swap = style.swap_red_blue
        self.canvas = np.zeros((h, w, 3), np.uint8)
        # cv2 fills far faster than numpy broadcasts a 3-value colour over the image.
        cv2.rectangle(self.canvas, (0, 0), (w - 1, h - 1), self.color(style.background), -1)
        self.scale = size_scale
        self.line = cv2.LINE_AA if style.antialias else cv2.LINE_8
        self.opacity = style.limb_opacity

    def color(self, rgb: Color) -> tuple[int, int, int]:
        return (int(rgb[2]), int(rgb[1]), int(rgb[0])) if self.swap else tuple(map(int, rgb))

    def dots(self, xy: np.ndarray, radius: float, colors: list[Color]) -> None:
        """Filled circles at the (n, 2) points ``xy``."""
        centers = np.round(xy * _ONE).astype(int).tolist()
        r = int(round(radius * self.scale * _ONE))
        for center, rgb in zip(centers, colors):
            cv2.circle(self.canvas, center, r, self.color(rgb), -1, self.line, _SHIFT)

    def limbs(self, a: np.ndarray, b: np.ndarray, half_width: float, colors: list[Color]) -> None:
        """Filled ellipses from ``a[k]`` to ``b[k]``, each blended over the canvas in turn."""
        if len(a) == 0:
            return
        polygons = _ellipse_polygons(a, b, half_width * self.scale)
        h, w = self.canvas.shape[:2]
        lo = np.maximum(np.floor(polygons.min(axis=1)).astype(int) - 1, 0)
        hi = np.minimum(np.ceil(polygons.max(axis=1)).astype(int) + 2, (w, h))
        fixed = np.round((polygons - lo[:, None, :]) * _ONE).astype(np.int32)
        for k, rgb in enumerate(colors):
            (x0, y0), (x1, y1) = lo[k], hi[k]
            if x0 >= x1 or y0 >= y1:
                continue  # entirely outside the canvas
            # Blending only the limb's bounding box gives the same pixels as the official
            # whole-canvas addWeighted (0.4 * v + 0.6 * v == v outside the ellipse), far faster.
            roi = self.canvas[y0:y1, x0:x1]
            layer = roi.copy()
            cv2.fillConvexPoly(layer, fixed[k], self.color(rgb), self.line, _SHIFT)
            roi[:] = cv2.addWeighted(roi, 1.0 - self.opacity, layer, self.opacity, 0.0)


_UNIT_CIRCLE = np.stack([np.cos(np.linspace(0.0, 2.0 * np.pi, _ELLIPSE_VERTICES, endpoint=False)),
                         np.sin(np.linspace(0.0, 2.0 * np.pi, _ELLIPSE_VERTICES, endpoint=False))],
                        axis=1)


def _ellipse_polygons(a: np.ndarray, b: np.ndarray, half_width: float) -> np.ndarray:
    """(k, V, 2) vertices of the ellipses whose long axes run from ``a[k]`` to ``b[k]``."""
    center = (a + b) / 2.0
    d = b - a
    length = np.hypot(d[:, 0], d[:, 1])
    half_length = length / 2.0
    # Unit vectors along and across the limb (a zero-length limb is drawn as a circle).
    along = np.where(length[:, None] > 0, d / np.maximum(length, 1e-12)[:, None], (1.0, 0.0))
    across = np.stack([-along[:, 1], along[:, 0]], axis=1)
    ex = half_length[:, None] * _UNIT_CIRCLE[None, :, 0]
    ey = half_width * _UNIT_CIRCLE[None, :, 1]
    return (center[:, None, :] + ex[..., None] * along[:, None, :]
            + ey[..., None] * across[:, None, :])


def _body_view(body: np.ndarray, layout: str):
    """The body points, limbs and palette of the chosen layout."""
    if layout == "BODY_23":
        return body[list(BODY_23_FROM_25)], BODY_23_LIMBS, BODY_23_COLORS
    return body, EDN_BODY_25_LIMBS, BODY_25_COLORS


def _draw_body(p: _LabelPainter, body: np.ndarray, mapping: PixelMapping,
               style: LabelStyle) -> None:
    points, limbs, colors = _body_view(body, style.body_layout)
    xy = mapping.apply(points[:, :2].astype(np.float64))
    ok = points[:, 2] > style.body_threshold
    shown = np.flatnonzero(ok)
    p.dots(xy[shown], style.joint_radius, [colors[i] for i in shown])
    drawn = [(a, b) for a, b in limbs if ok[a] and ok[b]]
    if drawn:
        a, b = np.array(drawn).T
        p.limbs(xy[a], xy[b], style.limb_half_width, [colors[i] for i in a])


def _draw_face(p: _LabelPainter, face: np.ndarray, mapping: PixelMapping,
               style: LabelStyle) -> None:
    if face[:, 2].mean() < style.face_threshold:
        return  # the official code skips an unsure face as a whole
    shown = [i for i in FACE_POINT_SETS[style.face_points] if face[i, 2] > 0]
    xy = mapping.apply(face[shown, :2].astype(np.float64))
    p.dots(xy, style.face_dot_radius, [style.face_color] * len(shown))


# Official hand bone order: along each finger, then wrist to the finger's base.
_HAND_BONES: tuple[tuple[int, int], ...] = tuple(
    bone for finger in HAND_FINGERS
    for bone in list(zip(finger[:-1], finger[1:])) + [(0, finger[0])])


def _draw_hand(p: _LabelPainter, hand: np.ndarray, mapping: PixelMapping,
               style: LabelStyle) -> None:
    ok = hand[:, 2] > style.hand_threshold
    if not ok.any():
        return
    xy = mapping.apply(hand[:, :2].astype(np.float64))
    shown = np.flatnonzero(ok)
    p.dots(xy[shown], style.hand_joint_radius, [HAND_COLORS[i] for i in shown])
    drawn = [(a, b) for a, b in _HAND_BONES if ok[a] and ok[b]]
    if drawn:
        a, b = np.array(drawn).T
        # A bone takes the colour of its outer point.
        p.limbs(xy[a], xy[b], style.hand_limb_half_width, [HAND_COLORS[i] for i in b])
