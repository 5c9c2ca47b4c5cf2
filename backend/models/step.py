"""One generator step: the frame the model draws for a label, given the previous frame.

    raw      = G(label, previous)                 # previous: zeros for a first frame
    residual = F(label crop, raw crop)            # the face box around the nose
    frame    = clamp(raw + feather * residual)    # only with a face generator

Training (training/step.py) and transfer (backend/transfer/generate.py) both draw frames
with ``generate_frame``. What really differs between them is left to the caller:

* training keeps gradients; transfer runs under ``torch.inference_mode``;
* the previous frame: training passes G's own previous output (or zeros, or a noisy real
  frame, by its temporal mode); transfer passes the frame it wrote, rounded to 8 bits and
  with the canvas' bars black, so a resumed job continues with exactly that input;
* ``feather``: transfer weights the residual by a mask over the box that rises from 0 at its
  border (the box follows the nose every frame, and a hard edge can show as a square seam
  that jumps around); training adds it with a hard edge (``None``), as the official code.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from torch import Tensor

from ..target.face import Box
from .networks import apply_face_residual, crop_box, generator_input

GeneratorFn = Callable[[Tensor], Tensor]  # a module, or an ONNX Runtime session (same contract)
FaceGeneratorFn = Callable[[Tensor, Tensor], Tensor]


def generate_frame(generator: GeneratorFn, face_generator: FaceGeneratorFn | None,
                   label: Tensor, previous: Tensor | None, box: Box | Sequence[Box] | None = None,
                   feather: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
    """(frame, face residual or None) for ``label`` (N x 3 x H x W in [-1, 1]) after
    ``previous`` (the same shape; None: zeros). ``box``: the face box, one or one per
    sample (needed with a face generator); ``feather``: a weight over the box (see above)."""
    raw = generator(generator_input(label, previous))
    if face_generator is None:
        return raw, None
    if box is None:
        raise ValueError("the face generator needs a face box per frame")
    residual = face_generator(crop_box(label, box), crop_box(raw, box))
    if feather is not None:  # transfer: blend in float32 whatever precision G ran at
        residual, raw = residual.float() * feather, raw.float()
    return apply_face_residual(raw, residual, box, clamp=True), residual
