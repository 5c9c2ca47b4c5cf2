"""The generator loop: one frame at a time, each conditioned on the previous result.

Per frame, as in training (training/step.py ``Generation.frame``):

    raw      = G(label, previous)                       # previous: zeros for the first frame
    residual = F(label crop, raw crop)                  # the face box around the nose
    frame    = clamp(raw + feather * residual)          # only where the bundle has a face G

``feather`` is a mask over the face box that rises from 0 at its border to 1 a few pixels
inside (1/16 of the side: 8 px for the paper's 128 px box). Training adds the residual with a
hard edge; at transfer the box moves with the nose every frame, and a hard edge can show as a
square seam that jumps around, so its border is blended away.

The previous-frame input is the *written* frame: the result quantized to 8 bits, the bars
outside the target's frame black (as in training's real frames; see ``canvas``). A resumed
job reads the last written PNG back and continues with exactly the input an uninterrupted run
would have used, so resumed and uninterrupted runs give the same pixels.

G and F are PyTorch modules or ONNX Runtime sessions with the modules' call contract
(``CpuNetworks`` of backend/onnx/runtime.py, for the CPU): tensors in, tensor out.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor

from ..models.networks import Box, apply_face_residual, crop_box
from .canvas import CanvasLayout
from .device import Runtime
from .inference import Networks

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

    ``reset(previous)`` starts a sequence: ``previous`` is the last written frame (None: the
    first frame is conditioned on zeros). Each ``__call__(label, box)`` returns the next
    written frame (the target-frame part of the canvas, see ``CanvasLayout``) and conditions
    the following call on it.
    """

    def __init__(self, networks: Networks, runtime: Runtime, layout: CanvasLayout,
                 face: bool = True, feather_fraction: float = FEATHER_FRACTION) -> None:
        self.runtime = runtime
        self.layout = layout
        self.resolution = networks.manifest.resolution
        if tuple(layout.canvas_size) != tuple(self.resolution):
            raise ValueError(f"canvas {layout.canvas_size} is not the bundle's resolution "
                             f"{self.resolution}")
        self.generator = _prepare(networks.generator, runtime)
        self.face_generator = (_prepare(networks.face_generator, runtime)
                               if face and networks.face_generator is not None else None)
        self.feather_fraction = feather_fraction
        self._feathers: dict[int, Tensor] = {}
        self.previous: Tensor | None = None
        # A model trained without temporal smoothing (the paper's ablation) always gets zeros.
        self.temporal = networks.manifest.training.get("temporal") != "none"

    @property
    def uses_face(self) -> bool:
        return self.face_generator is not None

    def reset(self, previous: np.ndarray | None = None) -> None:
        """Start a sequence after the written frame ``previous`` (RGB uint8), or from zeros."""
        self.previous = None if previous is None else self.to_tensor(self.layout.pad(previous))

    @torch.inference_mode()
    def __call__(self, label: np.ndarray, box: Box | None = None) -> np.ndarray:
        """The next written frame (RGB uint8, ``layout.content`` big) for ``label`` (canvas)."""
        width, height = self.resolution
        if label.shape != (height, width, 3):
            raise ValueError(f"labels must be {width}x{height} RGB, got {label.shape}")
        x = self.to_tensor(label)
        previous = (self.previous if self.previous is not None and self.temporal
                    else torch.zeros_like(x))
        with self.runtime.autocast():
            frame = self.generator(self._layout(torch.cat((x, previous), dim=1)))
            if self.face_generator is not None:
                if box is None:
                    raise ValueError("the face generator needs a face box per frame")
                residual = self.face_generator(crop_box(x, box), crop_box(frame, box))
                residual = residual.float() * self._feather(box[2] - box[0])
                frame = apply_face_residual(frame.float(), residual, box, clamp=True)
        written = np.ascontiguousarray(self.layout.crop(self.to_image(frame)))
        self.previous = self.to_tensor(self.layout.pad(written))
        return written

    def _feather(self, side: int) -> Tensor:
        if side not in self._feathers:
            mask = feather_mask(side, side * self.feather_fraction)
            self._feathers[side] = mask.to(self.runtime.device)
        return self._feathers[side]

    def _layout(self, x: Tensor) -> Tensor:
        return x.contiguous(memory_format=torch.channels_last) if self.runtime.channels_last else x

    def to_tensor(self, image: np.ndarray) -> Tensor:
        """HxWx3 uint8 -> 1x3xHxW float in [-1, 1] on the device."""
        t = torch.from_numpy(np.ascontiguousarray(image)).to(self.runtime.device)
        return t.permute(2, 0, 1)[None].float().div_(127.5).sub_(1.0)

    @staticmethod
    def to_image(frame: Tensor) -> np.ndarray:
        """1x3xHxW in [-1, 1] -> HxWx3 uint8 (rounded as training's ``to_image``)."""
        array = ((frame[0].float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
        return array.permute(1, 2, 0).cpu().numpy()


def _prepare(net, runtime: Runtime):
    """A module on the runtime's device, in eval mode (and channels_last on CUDA); an ONNX
    Runtime session as it is (it runs on the CPU)."""
    if not isinstance(net, torch.nn.Module):
        return net
    net = net.to(runtime.device).eval()
    if runtime.channels_last:
        net = net.to(memory_format=torch.channels_last)
    return net
