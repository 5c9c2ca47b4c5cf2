"""Images as the networks see them: RGB uint8 <-> float tensors in [-1, 1].

One convention for training's data, transfer's frames and the evaluation, so a frame that
goes through a network and back is rounded the same way everywhere.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor


def to_tensor(rgb: np.ndarray) -> Tensor:
    """HxWx3 uint8 -> 3xHxW float32 in [-1, 1] (on the CPU)."""
    chw = np.ascontiguousarray(np.asarray(rgb).transpose(2, 0, 1))
    return torch.from_numpy(chw).float().div_(127.5).sub_(1.0)


def to_image(tensor: Tensor) -> np.ndarray:
    """3xHxW in [-1, 1] (any device or dtype) -> HxWx3 uint8, rounded to nearest."""
    array = ((tensor.detach().float().clamp(-1, 1) + 1.0) * 127.5).round().to(torch.uint8)
    return array.permute(1, 2, 0).cpu().numpy()


def alpha_to_image(alpha: Tensor) -> np.ndarray:
    """1xHxW in [0, 1] -> HxW uint8, rounded to nearest."""
    return (alpha.detach().float().clamp(0, 1)[0] * 255.0).round().to(torch.uint8).cpu().numpy()


def over(color: np.ndarray, alpha: np.ndarray | None, background: np.ndarray) -> np.ndarray:
    """HxWx3 ``color`` with HxW ``alpha`` (uint8 both) over ``background``, in 8 bits
    (rounded to nearest); ``color`` itself without an alpha."""
    if alpha is None:
        return color
    a = alpha.astype(np.uint32)[..., None]
    mixed = a * color.astype(np.uint32) + (255 - a) * background.astype(np.uint32)
    return ((mixed + 127) // 255).astype(np.uint8)
