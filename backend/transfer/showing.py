"""What a job's frames show: how its person layers become pictures over the plate, the
background the user chose, or nothing (`Showing`), and the warning naming the frames
without a dancer and what they show."""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from ..errors import InputError
from ..video.images import read_image
from .job import JobFolder, TransferJob
from .layers import TARGET, TRANSPARENT, BackgroundChoice, Layer
from .plan import FramePlan
from .target_spec import TargetSpec


class Showing:
    """How the job's person layers become its frames, what its videos show, and how a
    frame on disk gives back the previous-frame input (see `layers`)."""

    def __init__(self, background: BackgroundChoice, plate: np.ndarray | None) -> None:
        self.background = background
        self.plate = plate  # the content part of the plate (None: whole frames)

    @staticmethod
    def for_job(job: TransferJob, target: TargetSpec) -> "Showing":
        background = BackgroundChoice.parse(job.background)
        matte = job.method == "generator" and target.has_matte
        if background.needs_matte and not matte:
            why = ("the nearest-neighbour baseline shows whole frames" if job.method != "generator"
                   else "this model paints whole frames (it was trained with --matte off)")
            raise InputError(job.model or job.output_dir,
                             f"--background {background.to_text()} needs a model with a matte; "
                             f"{why}")
        plate = target.layout.crop(target.plate) if matte else None
        return Showing(background, None if plate is None else np.ascontiguousarray(plate))

    @property
    def keeps_layers(self) -> bool:
        return self.background.kind == "media"

    def empty(self, size: tuple[int, int]) -> Layer:
        """The layer of a frame without a dancer (``size`` (w, h)): nothing, over the plate
        with a matte (the plate exactly, or transparent, or the background), else black (a
        model without a matte has no picture of the room without the target in it)."""
        width, height = size
        color = np.zeros((height, width, 3), np.uint8)
        return Layer(color, None if self.plate is None else np.zeros((height, width), np.uint8))

    def empty_shows(self) -> str:
        """What `empty` frames show, in words."""
        if self.plate is None:
            return "black (this model paints whole frames: it has no empty background)"
        return {TARGET: "the target's empty background (its plate)",
                TRANSPARENT: "nothing (transparent)"}.get(self.background.kind,
                                                           "the background alone")

    def backgrounds(self, size: tuple[int, int], count: int) -> Iterator[np.ndarray] | None:
        return self.background.frames(size, count) if self.keeps_layers else None

    def over_plate(self, layer: Layer) -> np.ndarray:
        """The layer over the plate (a whole frame as it is): what G sees as the previous
        frame."""
        return layer.color if self.plate is None else layer.over(self.plate)

    def new(self, layer: Layer, background: np.ndarray | None
            ) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """(the frame's picture, what the videos show, the layer to keep) of a new frame."""
        kind = self.background.kind
        if kind == TRANSPARENT:
            return layer.rgba(), self.over_plate(layer), None
        if kind == "media":
            assert background is not None
            picture = layer.over(background)
            return picture, picture, layer.rgba()
        picture = self.over_plate(layer)
        return picture, picture, None

    def kept(self, folder: JobFolder, i: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(picture, shown, the previous-frame input it gives) of frame ``i`` on disk."""
        kind = self.background.kind
        picture = read_image(folder.frame_path(i), alpha=kind == TRANSPARENT)
        if kind == TRANSPARENT:
            previous = self.over_plate(Layer.from_rgba(picture))
            return picture, previous, previous
        if kind == "media":
            layer = Layer.from_rgba(read_image(folder.layer_path(i), alpha=True))
            return picture, picture, self.over_plate(layer)
        return picture, picture, picture


MAX_RANGES_NAMED = 8


def no_dancer_warning(plan: FramePlan, first: int, showing: Showing) -> str:
    """The warning naming the frames without a dancer (numbered as the source's, from
    ``first``) and what they show."""
    ranges = plan.absent_ranges(first)
    named = ", ".join(f"{a}..{b}" if b > a else str(a) for a, b in ranges[:MAX_RANGES_NAMED])
    more = (f" and {len(ranges) - MAX_RANGES_NAMED} more stretches"
            if len(ranges) > MAX_RANGES_NAMED else "")
    assert plan.absent is not None
    return (f"no dancer in source frames {named}{more} ({int(plan.absent.sum())} of "
            f"{len(plan.absent)} frames): they show {showing.empty_shows()}")
