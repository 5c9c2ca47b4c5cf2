"""The frozen VGG19 of the perceptual loss, and where its ImageNet weights come from.

``VGG19Features`` defines torchvision's ``vgg19().features`` layer layout up to relu5_1, so
the standard published weights ``vgg19-dcbb9e9d.pth`` (keys ``features.N.weight/bias``)
load into it directly; the rest of that file (deeper layers, classifier) is ignored.

``load_vgg19(weights)`` takes a ``.pth`` or ``.safetensors`` file; without one it finds or
downloads the standard file the way `weights` does for every pretrained file. When all fails
it raises ``WeightsUnavailable`` telling the user to pass ``--vgg-weights PATH`` or
``--perceptual none``.
"""

from __future__ import annotations

from pathlib import Path

from torch import Tensor, nn

from .weights import WeightsUnavailable, checked_subset, file_name, find_or_download, \
    read_state_dict

VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"

# torchvision's VGG19 "E" configuration: conv widths, "M" = 2x2 max pooling.
_VGG19_LAYOUT: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512)
# Index in ``features`` just after relu1_1, relu2_1, relu3_1, relu4_1, relu5_1.
SLICE_ENDS = (2, 7, 12, 21, 30)


def _features() -> nn.Sequential:
    """torchvision's ``vgg19().features`` up to relu5_1 (indices 0..29)."""
    layers: list[nn.Module] = []
    channels = 3
    for item in _VGG19_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1),
                       nn.ReLU(inplace=True)]
            channels = int(item)
    assert len(layers) == SLICE_ENDS[-1]
    return nn.Sequential(*layers)


class VGG19Features(nn.Module):
    """VGG19 returning the activations relu1_1 .. relu5_1 (frozen and in eval mode once
    loaded by ``load_vgg19``). Input: ImageNet-normalised RGB, N x 3 x H x W."""

    def __init__(self) -> None:
        super().__init__()
        self.features = _features()
        bounds = (0, *SLICE_ENDS)
        # Views into ``features``: the state dict keeps torchvision's "features.N" names.
        self.slices = [self.features[a:b] for a, b in zip(bounds, bounds[1:])]

    def forward(self, x: Tensor) -> list[Tensor]:
        outputs = []
        for part in self.slices:
            x = part(x)
            outputs.append(x)
        return outputs


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """The keys and shapes a VGG19 weights file must provide."""
    return {k: tuple(v.shape) for k, v in VGG19Features().state_dict().items()}


# --------------------------------------------------------------------------------------------
# Loading (finding and downloading: `weights`)
# --------------------------------------------------------------------------------------------

WHAT = "VGG19 weights for the perceptual loss"
ADVICE = (f"Pass --vgg-weights PATH with a copy of {file_name(VGG19_URL)} (torchvision's "
          f"ImageNet VGG19, .pth or .safetensors), or --perceptual none to train without the "
          f"perceptual loss.")


def load_vgg19_file(path: str | Path) -> VGG19Features:
    """VGG19Features with the weights of ``path``, frozen and in eval mode."""
    path = Path(path)
    state = checked_subset(path, read_state_dict(path, "VGG19 weights"), expected_shapes(),
                           "VGG19 weights")
    net = VGG19Features()
    net.load_state_dict(state, strict=True)
    return net.eval().requires_grad_(False)


def load_vgg19(weights: str | Path | None = None, *, url: str = VGG19_URL,
               timeout: float = 30.0) -> VGG19Features:
    """The frozen VGG19 of the perceptual loss, from ``weights`` or the standard file."""
    path = (Path(weights) if weights is not None
            else find_or_download(url, WHAT, ADVICE, timeout=timeout))
    return load_vgg19_file(path)
