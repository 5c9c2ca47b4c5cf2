"""Draw the demo performer: a cartoon person built around OpenPose keypoints.

Every body part is placed at the keypoints of a ``FramePose`` (body, face and hands), so
the keypoints a detector should find on the picture are known exactly. Shapes are
filled, antialiased cv2 polygons with a darker outline and a soft highlight, so that a
pose detector trained on real people (MediaPipe) takes the character for a person.

Sizes are in metres of a 1.75 m person and turned into pixels with a scale measured
from the keypoints, so the character looks the same at any frame size or distance.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import cv2
import numpy as np

from ..pose.layout import BODY, HAND_FINGERS
from ..pose.track import FramePose

RGB = tuple[int, int, int]
NOSE, NECK, MID_HIP = BODY["Nose"], BODY["Neck"], BODY["MidHip"]
R_SHOULDER, L_SHOULDER, R_HIP, L_HIP = BODY["RShoulder"], BODY["LShoulder"], BODY["RHip"], BODY["LHip"]
SUBPIXEL = 4  # cv2 fixed-point bits: coordinates are drawn at 1/16 pixel
_ONE = 1 << SUBPIXEL


@dataclass(frozen=True)
class Appearance:
    """How the performer looks: colours (RGB) and sizes (metres of a 1.75 m person)."""

    skin: RGB = (226, 176, 140)
    hair: RGB = (58, 38, 28)
    shirt: RGB = (206, 58, 62)
    trousers: RGB = (48, 68, 120)
    shoes: RGB = (36, 34, 38)
    lips: RGB = (176, 84, 84)
    iris: RGB = (70, 96, 140)
    eye_white: RGB = (245, 245, 240)
    wall_top: RGB = (198, 208, 214)
    wall_bottom: RGB = (170, 182, 190)
    floor_far: RGB = (150, 118, 88)
    floor_near: RGB = (186, 148, 108)
    floor_line: float = 0.58  # where the wall meets the floor, fraction of the height
    sleeve: float = 0.55  # sleeve length: 0.5 half the upper arm, 1 to the elbow, 2 to the wrist
    limb_width: float = 1.0  # scales every limb radius
    head_width: float = 0.084  # half-width of the skull with hair
    outline: float = 0.62  # outline colour = part colour x this
    highlight: float = 1.1  # highlight colour = part colour x this (on the lit side)


# A few ready-made looks: a source dancer and a target of another build look different.
LOOKS: dict[str, Appearance] = {
    "red": Appearance(),
    "teal": Appearance(skin=(168, 116, 84), hair=(24, 18, 16), shirt=(34, 142, 136),
                       trousers=(62, 60, 66), shoes=(230, 230, 226), lips=(140, 70, 64),
                       iris=(60, 40, 30)),
    "yellow": Appearance(skin=(240, 202, 172), hair=(168, 112, 52), shirt=(236, 186, 54),
                         trousers=(96, 64, 48), shoes=(120, 40, 36), sleeve=1.9, iris=(60, 120, 90)),
}


# -- drawing primitives (float pixel coordinates, antialiased) ----------------------

def _fixed(points: np.ndarray) -> np.ndarray:
    return np.round(np.asarray(points, np.float64) * _ONE).astype(np.int32)


def _shade(color: RGB, factor: float) -> tuple[int, int, int]:
    return tuple(int(min(255, max(0, c * factor))) for c in color)


def _unit_circle(n: int) -> np.ndarray:
    a = np.linspace(0, 2 * np.pi, n, endpoint=False)
    return np.stack([np.cos(a), np.sin(a)], axis=1)


_CIRCLE_SMALL, _CIRCLE_LARGE = _unit_circle(12), _unit_circle(24)


def _hull(img: np.ndarray, centers: np.ndarray, radii: np.ndarray | float, color: RGB) -> None:
    """Fill the convex hull of circles (a capsule for two, a blob for more)."""
    radii = np.maximum(np.broadcast_to(np.asarray(radii, np.float64), (len(centers),)), 0.5)
    circle = _CIRCLE_SMALL if radii.max() < 6 else _CIRCLE_LARGE
    pts = (centers[:, None, :] + radii[:, None, None] * circle[None]).reshape(-1, 2)
    cv2.fillConvexPoly(img, cv2.convexHull(_fixed(pts)), color, cv2.LINE_AA, SUBPIXEL)


def _part(img: np.ndarray, centers: np.ndarray, radii: np.ndarray | float, color: RGB,
          look: Appearance, border: float, light: np.ndarray | None = None) -> None:
    """A body part: a dark outline, the fill, and a highlight on the lit side."""
    radii = np.broadcast_to(np.asarray(radii, np.float64), (len(centers),))
    _hull(img, centers, radii + border, _shade(color, look.outline))
    _hull(img, centers, radii, color)
    if light is not None:
        _hull(img, centers + light * radii[:, None] * 0.35, radii * 0.45, _shade(color, look.highlight))


def _poly(img: np.ndarray, points: np.ndarray, color: RGB) -> None:
    cv2.fillPoly(img, [_fixed(points)], color, cv2.LINE_AA, SUBPIXEL)


def _line(img: np.ndarray, points: np.ndarray, color: RGB, width: float, closed: bool = False) -> None:
    cv2.polylines(img, [_fixed(points)], closed, color, max(1, int(round(width))), cv2.LINE_AA, SUBPIXEL)


# -- background ---------------------------------------------------------------------

@lru_cache(maxsize=8)
def _background_cached(size: tuple[int, int], look: Appearance) -> np.ndarray:
    width, height = size
    img = np.zeros((height, width, 3), np.float32)
    floor_y = int(round(look.floor_line * height))
    rows = np.linspace(0, 1, max(floor_y, 1))[:, None]
    img[:floor_y] = (np.array(look.wall_top) * (1 - rows) + np.array(look.wall_bottom) * rows)[:, None, :]
    # Wall panels: soft vertical stripes, so the wall is not a flat colour.
    xs = np.arange(width) / width
    img[:floor_y] *= (1 + 0.035 * np.sin(2 * np.pi * xs * 6))[None, :, None]
    rows = np.linspace(0, 1, max(height - floor_y, 1))[:, None]
    img[floor_y:] = (np.array(look.floor_far) * (1 - rows) + np.array(look.floor_near) * rows)[:, None, :]
    out = np.clip(img, 0, 255).astype(np.uint8)
    # Floor boards converge towards a vanishing point above the middle of the frame.
    vanish = np.array([width / 2, floor_y - 0.6 * height])
    board = _shade(look.floor_far, 0.85)
    for k in np.linspace(-3, 3, 15):
        bottom = np.array([width / 2 + k * width * 0.5, height])
        top = vanish + (bottom - vanish) * (floor_y - vanish[1]) / (height - vanish[1])
        _line(out, np.stack([top, bottom]), board, max(1, height / 400))
    # A skirting board where the wall meets the floor.
    cv2.rectangle(out, (0, floor_y - max(2, height // 80)), (width, floor_y),
                  _shade(look.wall_bottom, 0.75), -1)
    # A picture frame on the wall, off to one side.
    x0, y0 = int(width * 0.08), int(height * 0.12)
    cv2.rectangle(out, (x0, y0), (x0 + int(width * 0.14), y0 + int(height * 0.12)), (120, 90, 60),
                  max(2, height // 120))
    cv2.rectangle(out, (x0 + 3, y0 + 3), (x0 + int(width * 0.14) - 3, y0 + int(height * 0.12) - 3),
                  (150, 176, 196), -1)
    out.setflags(write=False)
    return out


def background(size: tuple[int, int], look: Appearance = Appearance()) -> np.ndarray:
    """The empty room the performer dances in (RGB, a fresh copy)."""
    return _background_cached((int(size[0]), int(size[1])), look).copy()


# -- the performer --------------------------------------------------------------------

# (from, to, true length in metres) of bones that are seldom seen end-on.
_RULER_BONES = tuple((BODY[a], BODY[b], length) for a, b, length in (
    ("Neck", "MidHip", 0.50), ("RShoulder", "LShoulder", 0.35),
    ("RHip", "RKnee", 0.43), ("LHip", "LKnee", 0.43), ("RKnee", "RAnkle", 0.42),
    ("LKnee", "LAnkle", 0.42), ("RShoulder", "RElbow", 0.29), ("LShoulder", "LElbow", 0.29)))


def _pixels_per_metre(pose: FramePose) -> float:
    """How many pixels one metre of the body spans, from bones that are rarely foreshortened.

    A bone seen at an angle looks shorter, never longer, so the largest ratio of seen
    length to true length is the best guess.
    """
    b = pose.body
    ratios = [np.linalg.norm(b[i, :2] - b[j, :2]) / length
              for i, j, length in _RULER_BONES if b[i, 2] > 0 and b[j, 2] > 0]
    return max(ratios) if ratios else 0.0


def _far_side(pose: FramePose, scale: float) -> str | None:
    """'r' or 'l' when the body is turned so far that one side is behind it, else None."""
    b = pose.body
    shoulders = np.linalg.norm(b[R_SHOULDER, :2] - b[L_SHOULDER, :2]) / max(scale, 1e-6)
    if shoulders > 0.26:  # near the full 0.35 m: facing the camera
        return None
    if b[BODY["REar"], 2] == 0 and b[BODY["LEar"], 2] > 0:
        return "r"
    if b[BODY["LEar"], 2] == 0 and b[BODY["REar"], 2] > 0:
        return "l"
    return None


class _PerformerPainter:
    """Draws one performer onto one frame; radii in metres, turned into pixels."""

    def __init__(self, img: np.ndarray, pose: FramePose, look: Appearance, scale: float) -> None:
        self.img, self.pose, self.look, self.m = img, pose, look, scale
        self.border = max(1.0, 0.008 * scale)
        self.light = np.array([-0.6, -0.8])  # light from the upper left

    def px(self, metres: float) -> float:
        return metres * self.m

    def ok(self, *indices: int) -> bool:
        return all(self.pose.body[i, 2] > 0 for i in indices)

    def xy(self, i: int) -> np.ndarray:
        return self.pose.body[i, :2].astype(np.float64)

    def limb(self, i: int, j: int, r0: float, r1: float, color: RGB) -> None:
        if self.ok(i, j):
            w = self.look.limb_width
            _part(self.img, np.stack([self.xy(i), self.xy(j)]), np.array([self.px(r0 * w), self.px(r1 * w)]),
                  color, self.look, self.border, self.light)

    # Body parts, in the order they are painted.

    def shadow(self) -> None:
        """A soft dark ellipse on the floor under the feet."""
        feet = [BODY[n] for n in ("RAnkle", "LAnkle", "LBigToe", "LHeel", "RBigToe", "RHeel")]
        feet = [i for i in feet if self.ok(i)]
        if not feet:
            return
        pts = self.pose.body[feet, :2]
        center = np.array([pts[:, 0].mean(), pts[:, 1].max()])
        axes = np.array([self.px(0.35) + np.ptp(pts[:, 0]) / 2, self.px(0.06)])
        # Blend only the box round the ellipse: a whole-frame blend would cost more than the rest.
        height, width = self.img.shape[:2]
        x0, y0 = np.maximum(np.floor(center - axes - 2), 0).astype(int)
        x1, y1 = np.minimum(np.ceil(center + axes + 2), [width, height]).astype(int)
        if x1 <= x0 or y1 <= y0:
            return
        box = self.img[y0:y1, x0:x1]
        dark = box.copy()
        cv2.ellipse(dark, _fixed(center - [x0, y0]), _fixed(axes), 0, 0, 360, (0, 0, 0), -1,
                    cv2.LINE_AA, SUBPIXEL)
        cv2.addWeighted(dark, 0.22, box, 0.78, 0, dst=box)

    def leg(self, side: str) -> None:
        hip, knee, ankle, big, small, heel = (BODY[side.upper() + n] for n in (
            "Hip", "Knee", "Ankle", "BigToe", "SmallToe", "Heel"))
        look = self.look
        self.limb(hip, knee, 0.080, 0.058, look.trousers)
        self.limb(knee, ankle, 0.058, 0.046, look.trousers)
        if self.ok(ankle, big, small, heel):
            centers = self.pose.body[[ankle, heel, big, small], :2].astype(np.float64)
            _part(self.img, centers, np.array([self.px(0.045), self.px(0.04), self.px(0.03), self.px(0.03)]),
                  look.shoes, look, self.border)

    def pelvis(self) -> None:
        if not self.ok(NECK, MID_HIP, R_HIP, L_HIP):
            return
        up = self.xy(NECK) - self.xy(MID_HIP)
        centers = np.stack([self.xy(R_HIP), self.xy(L_HIP), self.xy(MID_HIP) + 0.22 * up,
                            self.xy(R_HIP) + 0.18 * up, self.xy(L_HIP) + 0.18 * up])
        radii = np.array([0.085, 0.085, 0.10, 0.08, 0.08]) * self.m
        _part(self.img, centers, radii, self.look.trousers, self.look, self.border)

    def neck(self) -> None:
        if not self.ok(NECK):
            return
        face = self.pose.face
        top = face[[0, 16, 8], :2].mean(axis=0) if face[[0, 16, 8], 2].min() > 0 else self.xy(NOSE)
        _part(self.img, np.stack([self.xy(NECK), top]), np.array([self.px(0.052), self.px(0.048)]),
              self.look.skin, self.look, self.border)

    def torso(self) -> None:
        if not self.ok(NECK, R_SHOULDER, L_SHOULDER, MID_HIP, R_HIP, L_HIP):
            return
        neck, mid = self.xy(NECK), self.xy(MID_HIP)
        up = neck - mid
        chest = mid + 0.62 * up
        waist = mid + 0.22 * up
        centers = np.stack([self.xy(R_SHOULDER), self.xy(L_SHOULDER), chest, waist, self.xy(R_HIP) + 0.2 * up,
                            self.xy(L_HIP) + 0.2 * up, neck])
        radii = np.array([0.062, 0.062, 0.115, 0.105, 0.08, 0.08, 0.06]) * self.m
        _part(self.img, centers, radii, self.look.shirt, self.look, self.border)

    def arm(self, side: str) -> None:
        shoulder, elbow, wrist = (BODY[side.upper() + n] for n in ("Shoulder", "Elbow", "Wrist"))
        if not self.ok(shoulder, elbow):
            return
        look = self.look
        self.limb(shoulder, elbow, 0.050, 0.040, look.skin)
        self.sleeve(shoulder, elbow, min(look.sleeve, 1.0), (0.054, 0.046))
        if self.ok(wrist):
            # The forearm after the upper arm: a bent elbow points it towards the camera.
            self.limb(elbow, wrist, 0.040, 0.030, look.skin)
            if look.sleeve > 1.0:
                self.sleeve(elbow, wrist, min(look.sleeve - 1.0, 1.0), (0.046, 0.036))
        self.hand(0 if side == "l" else 1)

    def sleeve(self, start: int, end: int, fraction: float, radii: tuple[float, float]) -> None:
        """Shirt over ``fraction`` of the bone from ``start`` to ``end``."""
        if fraction <= 0:
            return
        a, b = self.xy(start), self.xy(end)
        r0, r1 = radii
        r_end = r0 + (r1 - r0) * fraction
        _part(self.img, np.stack([a, a + (b - a) * fraction]),
              np.array([self.px(r0), self.px(r_end)]) * self.look.limb_width,
              self.look.shirt, self.look, self.border, self.light)

    def hand(self, which: int) -> None:
        pts = self.pose.hands[which]
        if pts[:, 2].min() <= 0:
            return
        xy = pts[:, :2].astype(np.float64)
        look, r = self.look, self.px(0.0095)
        dark = _shade(look.skin, look.outline)
        palm = xy[[0, 1, 2, 5, 9, 13, 17]]
        _hull(self.img, palm, r * 1.6 + self.border * 0.6, dark)
        for finger in HAND_FINGERS:
            chain = xy[list(finger)]
            for a, b in zip(chain[:-1], chain[1:]):
                _hull(self.img, np.stack([a, b]), r + self.border * 0.6, dark)
        _hull(self.img, palm, r * 1.6, look.skin)
        for finger in HAND_FINGERS:
            chain = xy[list(finger)]
            for a, b in zip(chain[:-1], chain[1:]):
                _hull(self.img, np.stack([a, b]), r, look.skin)

    def head(self) -> None:
        face = self.pose.face
        if face[:, 2].min() <= 0:
            return
        look = self.look
        f = face[:, :2].astype(np.float64)
        brow = f[17:27].mean(axis=0)
        chin = f[8]
        up = brow - chin
        up_len = np.linalg.norm(up)
        if up_len < 1e-6:
            return
        up /= up_len
        side = np.array([-up[1], up[0]])
        center = (f[0] + f[16]) / 2  # the jaw's top ends lie at ear height round the skull
        # The skull: skin round the face, hair over its top and back.
        skull = center + up * self.px(0.03)
        angle = float(np.degrees(np.arctan2(side[1], side[0])))
        axes = np.array([self.px(look.head_width), self.px(0.118)])
        cv2.ellipse(self.img, _fixed(skull), _fixed(axes + self.border), angle, 0, 360,
                    _shade(look.hair, 0.7), -1, cv2.LINE_AA, SUBPIXEL)
        cv2.ellipse(self.img, _fixed(skull), _fixed(axes), angle, 0, 360, look.skin, -1, cv2.LINE_AA, SUBPIXEL)
        # In the ellipse's own frame +y points down the face, so 160..380 degrees is the top.
        cv2.ellipse(self.img, _fixed(skull), _fixed(axes), angle, 160, 380, look.hair, -1,
                    cv2.LINE_AA, SUBPIXEL)
        # Ears, where they are visible.
        for ear in (BODY["REar"], BODY["LEar"]):
            if self.ok(ear):
                _part(self.img, self.xy(ear)[None], np.array([self.px(0.022)]), look.skin, look, self.border)
        # The face: the jaw line closed by a forehead above the brows.
        forehead = f[17:27] + up * self.px(0.035)
        outline = np.concatenate([f[0:17], forehead[::-1]])
        hull = cv2.convexHull(_fixed(outline))
        cv2.polylines(self.img, [hull], True, _shade(look.skin, look.outline), max(1, int(self.border)),
                      cv2.LINE_AA, SUBPIXEL)
        cv2.fillConvexPoly(self.img, hull, look.skin, cv2.LINE_AA, SUBPIXEL)
        # A fringe over the top of the forehead.
        fringe = np.concatenate([forehead + up * self.px(0.008), f[[26]] + up * self.px(0.075),
                                 f[[17]] + up * self.px(0.075)])
        cv2.fillConvexPoly(self.img, cv2.convexHull(_fixed(fringe)), look.hair, cv2.LINE_AA, SUBPIXEL)
        self.features(f, up)

    def features(self, f: np.ndarray, up: np.ndarray) -> None:
        look = self.look
        line = max(1.0, self.px(0.006))
        dark = _shade(look.hair, 0.8)
        for eye, pupil in ((slice(36, 42), 68), (slice(42, 48), 69)):
            pts = f[eye]
            mid = pts.mean(axis=0)
            big = mid + (pts - mid) * 1.25  # cartoon eyes, a little larger than life
            _poly(self.img, big, look.eye_white)
            radius = max(1.0, self.px(0.0075))
            cv2.circle(self.img, _fixed(f[pupil]), int(radius * _ONE), look.iris, -1, cv2.LINE_AA, SUBPIXEL)
            cv2.circle(self.img, _fixed(f[pupil]), int(radius * 0.5 * _ONE), (20, 20, 24), -1,
                       cv2.LINE_AA, SUBPIXEL)
            _line(self.img, big[[0, 1, 2, 3]], dark, line * 0.8)
        for brow in (slice(17, 22), slice(22, 27)):
            _line(self.img, f[brow], dark, line * 1.4)
        nose = _shade(look.skin, 0.72)
        _line(self.img, f[27:31], nose, line * 0.8)
        _line(self.img, f[31:36], nose, line)
        _poly(self.img, f[48:60], look.lips)
        inner = f[60:68]
        if np.linalg.norm(inner[6] - inner[2]) > 1.0:
            _poly(self.img, inner, (90, 30, 36))


def render_performer(pose: FramePose, size: tuple[int, int], appearance: Appearance = Appearance(),
                     canvas: np.ndarray | None = None) -> np.ndarray:
    """An RGB uint8 frame of ``size`` (width, height) with the performer in ``pose``.

    ``canvas`` (an RGB frame of that size) replaces the built-in room as background.
    Missing keypoints (confidence 0) leave their part undrawn.
    """
    width, height = int(size[0]), int(size[1])
    if canvas is not None:
        if canvas.shape != (height, width, 3):
            raise ValueError(f"canvas has shape {canvas.shape}, expected {(height, width, 3)}")
        img = np.ascontiguousarray(canvas, dtype=np.uint8).copy()
    else:
        img = background((width, height), appearance)
    scale = _pixels_per_metre(pose)
    if scale <= 0:
        return img
    paint = _PerformerPainter(img, pose, appearance, scale)
    far = _far_side(pose, scale)
    paint.shadow()
    if far is not None:
        paint.arm(far)
    for side in ((far, "l" if far == "r" else "r") if far else ("r", "l")):
        paint.leg(side)
    paint.pelvis()
    paint.torso()
    paint.neck()  # over the shirt: its base is a round neckline
    paint.head()
    for side in ("r", "l"):
        if side != far:
            paint.arm(side)
    return img
