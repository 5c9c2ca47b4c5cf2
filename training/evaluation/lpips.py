"""LPIPS (Zhang et al. 2018), version 0.1 with the AlexNet backbone: the paper's perceptual metric.

The ``lpips`` package cannot be a dependency here: it imports torchvision for its backbone,
and torchvision has no CPU build for our torch. So the network is defined in-project, layer
for layer as the package builds it, and takes the package's own weights files:

* the backbone: torchvision's ImageNet AlexNet, ``alexnet-owt-7be5be79.pth`` (keys
  ``features.N.weight/bias``; the classifier is ignored);
* the linear heads: the ``lpips`` package's ``weights/v0.1/alex.pth`` (keys
  ``linK.model.1.weight``, one 1x1 convolution per layer).

Distance of two images x0, x1 in [-1, 1]: both are shifted and scaled to AlexNet's input
statistics, the activations after its five ReLUs are taken, each unit-normalised along the
channels, their squared difference weighted by the head and averaged over the pixels; the
five are summed. 0 means identical; larger is further apart.

Where the files come from (`load_lpips`): paths given by the user (``--lpips-backbone``,
``--lpips-weights``); else our weights cache, torch hub's cache, an installed ``lpips``
package (its heads only, found without importing it) and finally a download (`weights`).
When a file cannot be had, `WeightsUnavailable` is raised and the evaluation reports LPIPS
as "not available", never a number from other weights.
"""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from training.models.weights import checked_subset, find_or_download, read_state_dict

ALEXNET_URL = "https://download.pytorch.org/models/alexnet-owt-7be5be79.pth"
HEADS_URL = ("https://github.com/richzhang/PerceptualSimilarity/raw/master/lpips/weights/"
             "v0.1/alex.pth")
HEADS_CACHE_NAME = "lpips-v0.1-alex.pth"  # "alex.pth" alone would say nothing in the cache
CHANNELS = (64, 192, 384, 256, 256)
# Index in AlexNet's ``features`` just after each of its five ReLUs.
SLICE_ENDS = (2, 5, 8, 10, 12)
# The package's ScalingLayer: [-1, 1] inputs to AlexNet's normalisation.
SHIFT = (-0.030, -0.088, -0.188)
SCALE = (0.458, 0.448, 0.450)
# AlexNet's first layer strides by 4 and two 3x3 poolings follow: smaller images have no
# fifth feature map. Crops (face boxes) below this are upsampled first (both images alike).
MIN_SIDE = 64


def _alexnet_features() -> nn.Sequential:
    """torchvision's ``alexnet().features`` up to the fifth ReLU (indices 0..11)."""
    return nn.Sequential(
        nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
        nn.MaxPool2d(kernel_size=3, stride=2),
        nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
        nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
    )


class LPIPS(nn.Module):
    """LPIPS v0.1 (AlexNet). ``forward(x0, x1)`` -> (N,) distances of [-1, 1] RGB batches."""

    def __init__(self) -> None:
        super().__init__()
        self.features = _alexnet_features()
        self.heads = nn.ModuleList(nn.Conv2d(c, 1, kernel_size=1, bias=False) for c in CHANNELS)
        self.register_buffer("shift", torch.tensor(SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(SCALE).view(1, 3, 1, 1))

    def _activations(self, x: Tensor) -> list[Tensor]:
        x = (x - self.shift) / self.scale
        out, begin = [], 0
        for end in SLICE_ENDS:
            x = self.features[begin:end](x)
            out.append(x / (x.pow(2).sum(dim=1, keepdim=True).sqrt() + 1e-10))
            begin = end
        return out

    def forward(self, x0: Tensor, x1: Tensor) -> Tensor:
        if min(x0.shape[-2:]) < MIN_SIDE:
            factor = MIN_SIDE / min(x0.shape[-2:])
            size = [max(MIN_SIDE, round(s * factor)) for s in x0.shape[-2:]]
            x0 = F.interpolate(x0, size=size, mode="bilinear", align_corners=False)
            x1 = F.interpolate(x1, size=size, mode="bilinear", align_corners=False)
        total = torch.zeros(x0.shape[0], device=x0.device)
        for head, a, b in zip(self.heads, self._activations(x0), self._activations(x1)):
            total = total + head((a - b) ** 2).mean(dim=(1, 2, 3))
        return total

    @torch.no_grad()
    def distance(self, image0, image1) -> float:
        """The distance of two HxWx3 uint8 RGB images (numpy) of the same size."""
        device = self.shift.device
        x0, x1 = (torch.from_numpy(im).to(device).permute(2, 0, 1)[None].float() / 127.5 - 1
                  for im in (image0, image1))
        return float(self(x0, x1)[0])


# -- weights ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LpipsWeights:
    """Where the two files come from: None means "find or download the standard file"."""

    backbone: Path | None = None  # alexnet-owt-7be5be79.pth (or .safetensors)
    heads: Path | None = None  # the lpips package's weights/v0.1/alex.pth


def backbone_shapes() -> dict[str, tuple[int, ...]]:
    return {f"features.{k}": tuple(v.shape) for k, v in _alexnet_features().state_dict().items()}


def heads_shapes() -> dict[str, tuple[int, ...]]:
    return {f"lin{i}.model.1.weight": (1, c, 1, 1) for i, c in enumerate(CHANNELS)}


def installed_package_heads() -> list[Path]:
    """The heads file of an installed ``lpips`` package (found without importing it, since
    importing it needs torchvision)."""
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        return []
    return [Path(p) / "weights" / "v0.1" / "alex.pth" for p in spec.submodule_search_locations]


def find_weights(given: LpipsWeights, timeout: float = 30.0) -> LpipsWeights:
    """Both files' paths (raises `WeightsUnavailable` naming the flag to pass)."""
    backbone = given.backbone or find_or_download(
        ALEXNET_URL, "AlexNet weights for LPIPS", "Pass --lpips-backbone PATH with a copy of "
        "alexnet-owt-7be5be79.pth (torchvision's ImageNet AlexNet).", timeout=timeout)
    heads = given.heads or find_or_download(
        HEADS_URL, "LPIPS v0.1 linear weights", "Pass --lpips-weights PATH with the lpips "
        "package's lpips/weights/v0.1/alex.pth.", name=HEADS_CACHE_NAME,
        extra=installed_package_heads(), timeout=timeout)
    return LpipsWeights(Path(backbone), Path(heads))


def load_lpips(given: LpipsWeights = LpipsWeights(), device: str | torch.device = "cpu",
               timeout: float = 30.0) -> LPIPS:
    """LPIPS with the standard weights (or the files in ``given``), in eval mode."""
    found = find_weights(given, timeout)
    assert found.backbone is not None and found.heads is not None
    net = LPIPS()
    state = checked_subset(found.backbone, read_state_dict(found.backbone, "AlexNet weights"),
                           backbone_shapes(), "AlexNet weights")
    net.features.load_state_dict({k.removeprefix("features."): v for k, v in state.items()})
    heads = checked_subset(found.heads, read_state_dict(found.heads, "LPIPS linear weights"),
                           heads_shapes(), "LPIPS linear weights")
    for i, head in enumerate(net.heads):
        head.weight.data.copy_(heads[f"lin{i}.model.1.weight"])
    return net.eval().requires_grad_(False).to(device)
