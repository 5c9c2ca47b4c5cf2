"""pix2pixHD's PatchGAN discriminators, as Everybody Dance Now uses them.

* The body discriminator judges the temporal pair: the 12-channel concatenation
  (x_{t-1}, x_t, y_{t-1}, y_t) of two consecutive labels and the two frames (real or
  generated), in that order (official ``discriminate_4``). Multi-scale: 2 scales for the
  global stage, 3 for the local stage.
* The face discriminator judges (label crop, face crop): 6 channels, one scale, batch norm
  (official ``define_D(..., netD='face')``).

Every discriminator returns its intermediate features for the feature-matching loss: an
``NLayerDiscriminator`` returns a list of n_layers + 2 tensors whose last one is the patch
prediction map; a ``MultiscaleDiscriminator`` returns one such list per scale, finest first.
No sigmoid: the losses are least squares (LSGAN).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from backend.models.networks import init_weights, norm_layer

Features = list[Tensor]


@dataclass(frozen=True)
class DiscriminatorConfig:
    """Defaults: the body discriminator of the local stage (pix2pixHD ``--num_D 3``)."""

    input_nc: int = 12
    ndf: int = 64
    n_layers: int = 3
    num_D: int = 3
    norm: str = "instance"


class NLayerDiscriminator(nn.Module):
    """A PatchGAN: 4x4 convolutions, n_layers of them with stride 2 (after the first, with
    normalisation), then one stride-1 layer and a 1-channel stride-1 prediction layer."""

    def __init__(self, input_nc: int = 12, ndf: int = 64, n_layers: int = 3,
                 norm: str = "instance") -> None:
        super().__init__()
        self.n_layers = n_layers
        blocks: list[nn.Sequential] = [nn.Sequential(
            nn.Conv2d(input_nc, ndf, kernel_size=4, stride=2, padding=2),
            nn.LeakyReLU(0.2, inplace=True))]
        width = ndf
        for n in range(1, n_layers + 1):
            # Layers 1..n_layers-1 halve the size; the last one keeps it (stride 1).
            stride = 2 if n < n_layers else 1
            prev, width = width, min(width * 2, 512)
            blocks.append(nn.Sequential(
                nn.Conv2d(prev, width, kernel_size=4, stride=stride, padding=2),
                norm_layer(norm, width),
                nn.LeakyReLU(0.2, inplace=True)))
        blocks.append(nn.Sequential(nn.Conv2d(width, 1, kernel_size=4, stride=1, padding=2)))
        self.blocks = nn.ModuleList(blocks)

    def forward(self, x: Tensor) -> Features:
        """Intermediate features of every block; the last is the prediction map."""
        features = []
        for block in self.blocks:
            x = block(x)
            features.append(x)
        return features


class MultiscaleDiscriminator(nn.Module):
    """``num_D`` identical PatchGANs on the input and its 2x, 4x, ... average-pooled copies."""

    def __init__(self, input_nc: int = 12, ndf: int = 64, n_layers: int = 3, num_D: int = 3,
                 norm: str = "instance") -> None:
        super().__init__()
        self.num_D = num_D
        self.n_layers = n_layers
        self.scales = nn.ModuleList(
            NLayerDiscriminator(input_nc, ndf, n_layers, norm) for _ in range(num_D))

    def forward(self, x: Tensor) -> list[Features]:
        """One feature list per scale, full resolution first."""
        results = []
        for i, scale in enumerate(self.scales):
            if i:
                x = F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)
            results.append(scale(x))
        return results


def temporal_pair(label_prev: Tensor, label: Tensor, frame_prev: Tensor, frame: Tensor
                  ) -> Tensor:
    """The body discriminator's 12-channel input (x_{t-1}, x_t, y_{t-1}, y_t), in the
    official order: both labels, then both frames (real, or generated)."""
    return torch.cat((label_prev, label, frame_prev, frame), dim=1)


def frame_pair(label: Tensor, frame: Tensor) -> Tensor:
    """A discriminator's 6-channel input for one frame, label then frame: the face
    discriminator's (label crop, face crop), and the body discriminator's without temporal
    smoothing."""
    return torch.cat((label, frame), dim=1)


def build_discriminator(config: DiscriminatorConfig = DiscriminatorConfig()
                        ) -> MultiscaleDiscriminator:
    """The body discriminator with pix2pixHD's initialisation."""
    net = MultiscaleDiscriminator(config.input_nc, config.ndf, config.n_layers, config.num_D,
                                  config.norm)
    init_weights(net)
    return net


def build_face_discriminator(input_nc: int = 6, ndf: int = 64, n_layers: int = 3,
                             norm: str = "batch") -> NLayerDiscriminator:
    """The face discriminator on (label crop, face crop): one PatchGAN with batch norm."""
    net = NLayerDiscriminator(input_nc, ndf, n_layers, norm)
    init_weights(net)
    return net
