"""The generator loop: one frame at a time, each conditioned on the previous result.

Each frame is one ``backend.models.step.generate_frame``, the step training uses too, with
transfer's two choices (see there): the face residual is feathered by a mask over the box
that rises from 0 at its border to 1 a few pixels inside (1/16 of the side: 8 px for the
paper's 128 px box), and the previous-frame input is the *written* frame: the person layer
quantized to 8 bits (colour, and alpha with a matte) composited over the plate in 8 bits,
the bars outside the target's frame black (as in training's real frames; see
``backend.target.letterbox``). A resumed job reads the last written frame back and continues
with exactly the input an uninterrupted run would have used, so resumed and uninterrupted
runs give the same pixels. A model trained without temporal smoothing (the paper's ablation)
always gets zeros instead.

G and F are PyTorch modules or ONNX Runtime sessions with the modules' call contract
(``CpuNetworks`` of backend/onnx/runtime.py, for the CPU): tensors in, tensor out.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..models.images import alpha_to_image, to_image, to_tensor
from ..models.step import Backdrop, generate_frame
from ..runtime import Runtime
from ..target.face import Box
from ..target.letterbox import Letterbox
from ..target.window import Region, Windows
from .inference import Networks
from .layers import Layer

FEATHER_FRACTION = 1 / 16  # of the face box side


def feather_mask(side: int, width: float) -> Tensor:
    """A side x side weight: 0 at the border, rising linearly to 1 at ``width`` pixels inside."""
    if width <= 0:
        return torch.ones(side, side)
    distance = torch.arange(side, dtype=torch.float32)
    distance = torch.minimum(distance, distance.flip(0)) + 0.5  # to the nearest border, per axis
    ramp = (distance / width).clamp(max=1.0)
    return torch.minimum(ramp[:, None], ramp[None, :])


class FrameGenerator:
    """Runs a bundle's G (and face G) frame after frame on one ``Runtime``.

    ``networks`` is a loaded `Bundle` or the `CpuNetworks` of one (ONNX Runtime or PyTorch).

    ``reset(previous)`` starts a sequence: ``previous`` is the last written frame over the
    plate (None: the first frame is conditioned on zeros). Each ``__call__(label, box, window)``
    returns the next person `Layer` (the target-frame part of the canvas, ``Letterbox.crop``)
    and conditions the following call on it. ``plate``: the target's background (the
    canvas, RGB uint8), needed by a generator with a matte.
    """

    def __init__(self, networks: Networks, runtime: Runtime, layout: Letterbox,
                 face: bool = True, feather_fraction: float = FEATHER_FRACTION,
                 plate: np.ndarray | None = None) -> None:
        self.runtime = runtime
        self.layout = layout
        self.resolution = networks.manifest.resolution
        if tuple(layout.canvas) != tuple(self.resolution):
            raise ValueError(f"canvas {layout.canvas} is not the bundle's resolution "
                             f"{self.resolution}")
        self.generator = _prepare(networks.generator, runtime)
        self.face_generator = (_prepare(networks.face_generator, runtime)
                               if face and networks.face_generator is not None else None)
        self.feather_fraction = feather_fraction
        self._feathers: dict[int, Tensor] = {}
        self.previous: Tensor | None = None
        self.temporal = networks.manifest.training.uses_previous_frame
        self.minus_plate = networks.manifest.generator.previous_input == "minus_plate"
        self.window = networks.manifest.training.window
        if networks.manifest.generator.has_matte and plate is None:
            raise ValueError("a generator with a matte needs the target's background plate")
        self.plate = None if plate is None else self.to_tensor(plate)
        self.plate_content = None if plate is None else np.ascontiguousarray(layout.crop(plate))

    @property
    def uses_face(self) -> bool:
        return self.face_generator is not None

    def reset(self, previous: np.ndarray | None = None) -> None:
        """Start a sequence after the written frame ``previous`` (RGB uint8), or from zeros."""
        self.previous = None if previous is None else self.to_tensor(self.layout.pad(previous))

    @torch.inference_mode()
    def __call__(self, label: np.ndarray, box: Box | None = None,
                 window: Region | None = None) -> Layer:
        """The next person layer (``layout.content`` big) for ``label`` (the canvas); a
        model with a person window paints in ``window`` (needed for it)."""
        width, height = self.resolution
        if label.shape != (height, width, 3):
            raise ValueError(f"labels must be {width}x{height} RGB, got {label.shape}")
        x = self.to_tensor(label)
        previous = self.previous if self.temporal else None
        feather = None if box is None else self._feather(box[2] - box[0])
        backdrop = Backdrop(self.plate, self.minus_plate, self._windows(window))
        with self.runtime.autocast():
            drawn = generate_frame(self.generator, self.face_generator, x, previous, box,
                                   feather, backdrop)
        crop = self.layout.crop
        layer = Layer(np.ascontiguousarray(crop(to_image(drawn.person[0]))),
                      None if drawn.alpha is None
                      else np.ascontiguousarray(crop(alpha_to_image(drawn.alpha[0]))))
        self.reset(self.over_plate(layer))
        return layer

    def over_plate(self, layer: Layer) -> np.ndarray:
        """The layer over the plate: the frame the next one is conditioned on."""
        return layer.color if self.plate_content is None else layer.over(self.plate_content)

    def _windows(self, region: Region | None) -> Windows | None:
        if self.window is None:
            return None
        if region is None:
            raise ValueError("this model paints in a person window: give each frame's")
        return Windows.of([region], self.window.size)

    def _feather(self, side: int) -> Tensor:
        if side not in self._feathers:
            mask = feather_mask(side, side * self.feather_fraction)
            self._feathers[side] = mask.to(self.runtime.device)
        return self._feathers[side]

    def to_tensor(self, image: np.ndarray) -> Tensor:
        """HxWx3 uint8 -> 1x3xHxW float in [-1, 1] on the device."""
        return to_tensor(image)[None].to(self.runtime.device)


def _prepare(net, runtime: Runtime):
    """A module on the runtime's device, in eval mode (and channels_last on CUDA); an ONNX
    Runtime session as it is (it runs on the CPU)."""
    if not isinstance(net, torch.nn.Module):
        return net
    return runtime.prepare_module(net).eval()
