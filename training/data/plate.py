"""The target's background plate, and whether the camera stood still.

Most target videos are shot from a tripod: everything but the person is the same in every
frame. The plate is that background, clean: per pixel, the median over the frames where the
person does not cover it (their mask, widened by a margin for soft edges, hair and motion
blur). Pixels the person never uncovers are filled from around them (``cv2.inpaint``). The
median is taken over at most ``SAMPLES`` frames spread over the video, so memory does not
grow with its length.

A plate only helps when the camera is static. The camera's path is followed from sample to
sample (phase correlation of consecutive samples, the person's pixels left out): a tripod's
room stays within 2% of the frame height (target_taiji.mp4's drifts by 1.6% over 17 s;
target_dumbbell, source_juggle: under 0.2%), a handheld or panning camera's moves by 6% and
28% (source_handheld.mp4, hard_multi_person.avi). On a plain wall the correlation has nothing
to hold on to and its path is noise (source_turning_1.mp4's white studio "moves" by 22%), but
there every frame matches the plate to within a level: a background that the plate explains
that well is static whatever its path says. Also reported: how far each frame differs from
the plate (median absolute difference in 8-bit levels; exposure flicker stays within a few),
and the correlation of each frame with the plate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import cv2
import numpy as np

SAMPLES = 64  # frames the median is taken over
COVERED = 0.1  # mask value from which a pixel counts as the person's
MARGIN = 1 / 40  # the person's mask is widened by this fraction of the frame height
MAX_DRIFT = 0.04  # of the frame height: the farthest a static camera's view wanders
CLEAN_RESIDUAL = 1.0  # 8-bit levels: a plate this close to every frame stands, however "moved"
MAX_RESIDUAL = 10.0  # 8-bit levels, the median frame's median |frame - plate|


@dataclass
class MeasuredPlate:
    """The plate and what was measured on it."""

    plate: np.ndarray  # H x W x 3 uint8, the canvas
    holes: float  # fraction of the content never uncovered (filled by inpainting)
    drift: float  # how far the camera's view wandered, in frame heights
    match: float  # the median phase-correlation peak of a frame with the plate
    residual: float  # 8-bit levels
    frames: int  # frames the plate was made from

    @property
    def static(self) -> bool:
        return ((self.drift <= MAX_DRIFT or self.residual <= CLEAN_RESIDUAL)
                and self.residual <= MAX_RESIDUAL)

    def verdict(self) -> str:
        """Why the camera counts as static or not, in words."""
        figures = (f"its view wanders by up to {self.drift:.1%} of the frame height (static: at "
                   f"most {MAX_DRIFT:.0%}) and the background differs from the plate by "
                   f"{self.residual:.1f} levels (at most {MAX_RESIDUAL:g}; at most "
                   f"{CLEAN_RESIDUAL:g}: static whatever the view does)")
        return ("static camera: " if self.static else "moving camera: ") + figures

    def record(self) -> dict:
        """The measurements as plain JSON values (without the image)."""
        fields = asdict(self)
        del fields["plate"]
        return {**{k: round(v, 4) if isinstance(v, float) else v for k, v in fields.items()},
                "static": self.static, "verdict": self.verdict()}


def sample_indices(n_frames: int, samples: int = SAMPLES) -> list[int]:
    """At most ``samples`` frame indices spread evenly over ``n_frames``."""
    if n_frames <= samples:
        return list(range(n_frames))
    return sorted({round(i * (n_frames - 1) / (samples - 1)) for i in range(samples)})


def covered(mask: np.ndarray) -> np.ndarray:
    """Where the person (widened by ``MARGIN``) covers the frame: a bool H x W array."""
    radius = max(1, round(mask.shape[0] * MARGIN))
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    return cv2.dilate((mask >= COVERED).astype(np.uint8), kernel) > 0


def estimate_background(frames: Sequence[np.ndarray], masks: Sequence[np.ndarray],
                        content: np.ndarray | None = None) -> MeasuredPlate:
    """The plate of ``frames`` (H x W x 3 uint8) given the person's ``masks`` (H x W in
    [0, 1]); ``content`` (bool H x W) is where the video is (not the letterbox bars)."""
    stack = np.stack(frames)  # S x H x W x 3 uint8: SAMPLES canvases at most
    hidden = np.stack([covered(m) for m in masks])  # S x H x W
    if content is None:
        content = np.ones(stack.shape[1:3], bool)
    plate, seen = _masked_median(stack, hidden)
    holes = ~seen & content
    if holes.any():
        plate = cv2.inpaint(plate, holes.astype(np.uint8), 5, cv2.INPAINT_TELEA)
    drift, match, residual = _stillness(stack, hidden, plate, content)
    return MeasuredPlate(plate, float(holes.sum() / max(1, content.sum())), drift, match,
                      residual, len(frames))


def _masked_median(stack: np.ndarray, hidden: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per pixel, the median over the frames where it is not hidden; and where it ever was
    seen. Row by row, so the float copy stays small."""
    _, h, w, _ = stack.shape
    plate = np.zeros((h, w, 3), np.uint8)
    seen = (~hidden).any(axis=0)
    for y in range(h):
        rows = stack[:, y].astype(np.float32)  # S x W x 3
        rows[hidden[:, y]] = np.nan
        with np.errstate(all="ignore"), _quiet_nan_warnings():
            median = np.nanmedian(rows, axis=0)
        plate[y] = np.nan_to_num(np.round(median), nan=0.0).astype(np.uint8)
    return plate, seen


def _stillness(stack: np.ndarray, hidden: np.ndarray, plate: np.ndarray,
               content: np.ndarray) -> tuple[float, float, float]:
    """(how far the camera's view wandered from the first sample, in frame heights; the
    median correlation peak of a frame with the plate; the median of the median
    |frame - plate| on visible background pixels), inside the content (not the bars)."""
    ys, xs = np.nonzero(content)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    window = cv2.createHanningWindow((int(x1 - x0), int(y1 - y0)), cv2.CV_32F)
    crop = (slice(y0, y1), slice(x0, x1))
    reference = _gray(plate[crop], np.zeros((y1 - y0, x1 - x0), bool))
    position, farthest, peaks, residuals = np.zeros(2), 0.0, [], []
    for k, (frame, hide) in enumerate(zip(stack, hidden)):
        visible = ~hide & content
        diff = np.abs(frame.astype(np.int16) - plate.astype(np.int16)).mean(axis=-1)
        residuals.append(float(np.median(diff[visible])) if visible.any() else 0.0)
        peaks.append(_correlate(reference, _gray(frame[crop], hide[crop]), window)[1])
        if k:  # the camera's step from the sample before, both people left out
            both = (hide | hidden[k - 1])[crop]
            step, _ = _correlate(_gray(stack[k - 1][crop], both), _gray(frame[crop], both),
                                 window)
            position += step
            farthest = max(farthest, float(np.hypot(*position)))
    return farthest / (y1 - y0), float(np.median(peaks)), float(np.median(residuals))


def _gray(image: np.ndarray, hide: np.ndarray) -> np.ndarray:
    """``image`` in float grey, the hidden pixels filled with the visible ones' mean."""
    gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY).astype(np.float32)
    if hide.any() and not hide.all():
        gray[hide] = gray[~hide].mean()
    return gray


def _correlate(a: np.ndarray, b: np.ndarray, window: np.ndarray
               ) -> tuple[tuple[float, float], float]:
    """(shift of ``b`` from ``a``, peak). phaseCorrelate multiplies its inputs by the
    window in place: it gets copies."""
    return cv2.phaseCorrelate(a.copy(), b.copy(), window)


class _quiet_nan_warnings:
    """np.nanmedian warns about all-NaN slices (pixels never seen): expected, filled later."""

    def __enter__(self):
        import warnings

        self._catch = warnings.catch_warnings()
        self._catch.__enter__()
        warnings.simplefilter("ignore", RuntimeWarning)

    def __exit__(self, *exc):
        return self._catch.__exit__(*exc)
