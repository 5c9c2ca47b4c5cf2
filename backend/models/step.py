"""One generator step: the frame the model draws for a label, given the previous frame.

    out      = G(label, previous)                   # previous: zeros for a first frame
                                                    # (with a matte: previous - plate)
    person   = out[:3]; alpha = matte(out[3])        # with a matte (4 output channels)
    frame    = alpha * person + (1 - alpha) * plate  # the person over the target's background
    residual = F(label crop, frame crop)            # the face box around the nose
    person   = clamp(person + feather * residual)   # then the frame is composited again

With a matte, G sees the previous frame minus the plate (``GeneratorConfig.previous_input``):
the background is exactly 0 and only the person remains, so nothing of the room can be copied
from it (given the whole frame, G copied the room's grain onto its edges, and in a transfer
that grain was its own output: see training/data/dataset.py). The first frame's zeros mean the
same, "no one here".

Without a matte (the paper's generator, 3 output channels) the person layer *is* the frame
and the face residual is added to it, as in the official code. With a matte the residual
refines the person's face; where the face is opaque (alpha 1) that is the same thing.

Training (training/step.py) and transfer (backend/transfer/generate.py) both draw frames
with ``generate_frame``. What really differs between them is left to the caller:

* training keeps gradients; transfer runs under ``torch.inference_mode``;
* the previous frame: training passes G's own previous frame (or zeros, or a noisy real
  frame, by its temporal mode); transfer passes the frame it wrote, rounded to 8 bits and
  with the canvas' bars black, so a resumed job continues with exactly that input;
* ``feather``: transfer weights the residual by a mask over the box that rises from 0 at its
  border (the box follows the nose every frame, and a hard edge can show as a square seam
  that jumps around); training adds it with a hard edge (``None``), as the official code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from torch import Tensor

from ..target.face import Box
from ..target.window import Windows
from .networks import apply_face_residual, crop_box, generator_input

GeneratorFn = Callable[[Tensor], Tensor]  # a module, or an ONNX Runtime session (same contract)
FaceGeneratorFn = Callable[[Tensor, Tensor], Tensor]


# How far G's alpha channel is stretched past [0, 1] before it is clamped. Without it, "no
# person here" needs tanh's output at exactly -1, and the small alphas G gives instead let its
# colour layer show through over the plate: that layer is noise wherever alpha is 0, since
# nothing there asks for anything else. On target_taiji (cpu-small) 18% of the background's
# pixels had alpha above 0.05, costing 0.025 of full-frame SSIM and adding flicker.
MATTE_STRETCH = 0.1


def matte(channel: Tensor) -> Tensor:
    """G's alpha channel (tanh, in [-1, 1]) -> the matte in [0, 1], exactly 0 where the channel
    is below -1 / 1.2 and exactly 1 above 1 / 1.2."""
    return (soft_matte(channel) * (1 + 2 * MATTE_STRETCH) - MATTE_STRETCH).clamp(0, 1)


def soft_matte(channel: Tensor) -> Tensor:
    """The channel mapped to [0, 1] without the clamp: what the matte loss compares with the
    person's mask, so that a pixel past a clamp keeps learning (towards -1 or 1, deeper in)."""
    return (channel + 1) / 2


@dataclass
class DrawnFrame:
    """One step's result, N x C x H x W tensors in [-1, 1] (alpha in [0, 1])."""

    frame: Tensor  # what the losses judge and the next step sees: the person over the plate
    person: Tensor  # the person layer's colour (the frame itself without a matte)
    alpha: Tensor | None  # N x 1 x H x W, the matte; None for a full-frame generator
    residual: Tensor | None  # the face generator's, as added
    soft_alpha: Tensor | None = None  # the matte before its clamp (see ``soft_matte``)


def composite(person: Tensor, alpha: Tensor | None, plate: Tensor | None) -> Tensor:
    """``alpha * person + (1 - alpha) * plate``; ``person`` itself without a matte."""
    if alpha is None:
        return person
    if plate is None:
        raise ValueError("a generator with a matte needs the target's background plate")
    return alpha * person + (1 - alpha) * plate


@dataclass(frozen=True)
class Backdrop:
    """What is around the person in a step: the target's background ``plate`` (N x 3 x H x W,
    or 1 x 3 x H x W for all; needed with a matte), whether G sees ``previous - plate``
    (``minus_plate``: its ``previous_input`` is "minus_plate"), and the person ``window`` G
    works in (`backend.target.window`; needs a matte; None: the whole canvas)."""

    plate: Tensor | None = None
    minus_plate: bool = False
    window: Windows | None = None


def generate_frame(generator: GeneratorFn, face_generator: FaceGeneratorFn | None,
                   label: Tensor, previous: Tensor | None, box: Box | Sequence[Box] | None = None,
                   feather: Tensor | None = None, backdrop: Backdrop = Backdrop()) -> DrawnFrame:
    """The frame for ``label`` (N x 3 x H x W in [-1, 1]) after ``previous`` (the same shape;
    None: zeros). ``box``: the face box, one or one per sample (needed with a face
    generator); ``feather``: a weight over the box (see above); ``backdrop``: the plate,
    how G sees the previous frame, and its window (with a window, the frame is the plate
    outside it)."""
    plate, window = backdrop.plate, backdrop.window
    if backdrop.minus_plate and previous is not None:
        if plate is None:
            raise ValueError("a generator that sees the previous frame minus the plate needs "
                             "the plate")
        previous = previous - plate
    x = generator_input(label, previous)
    if window is None:
        out = generator(x)
    else:
        # -1 outside the window: colour black and alpha exactly 0 (see ``matte``)
        out = window.paste(generator(window.cut(x)), (label.shape[3], label.shape[2]))
        if out.shape[1] != 4:
            raise ValueError("a person window needs a generator with a matte")
    person, alpha, soft = out, None, None
    if out.shape[1] == 4:
        person, alpha, soft = out[:, :3], matte(out[:, 3:4]), soft_matte(out[:, 3:4])
    frame = composite(person, alpha, plate)
    if face_generator is None:
        return DrawnFrame(frame, person, alpha, None, soft)
    if box is None:
        raise ValueError("the face generator needs a face box per frame")
    residual = face_generator(crop_box(label, box), crop_box(frame, box))
    if feather is not None:  # transfer: blend in float32 whatever precision G ran at
        residual, person = residual.float() * feather, person.float()
        alpha = None if alpha is None else alpha.float()
    person = apply_face_residual(person, residual, box, clamp=True)
    if window is not None:  # the face box may reach past the window: nothing is drawn there
        inside = window.inside(person)
        person = person * inside + (inside - 1)
    return DrawnFrame(composite(person, alpha, plate), person, alpha, residual, soft)
