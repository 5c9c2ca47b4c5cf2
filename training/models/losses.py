"""pix2pixHD's losses: LSGAN, discriminator feature matching and the VGG19 perceptual loss.

How the official code (Everybody Dance Now's ``pix2pixHD_model_fullts``) combines them:

    loss_D = 0.5 * (gan(D(real pair), True) + gan(D(fake pair, detached), False))
    loss_G = gan(D(fake pair), True)
             + lambda_feat * feature_matching_loss(D(real pair), D(fake pair))
             + lambda_vgg * (vgg(I_0, y_0) + vgg(I_1, y_1)) * (0.5 in the global stage)

The weights are training options (``lambda_feat``, ``lambda_vgg``, both 10 in pix2pixHD); the
training step (``training/step.py``) applies them.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .vgg import VGG19Features

# What a discriminator returns: a prediction map, a feature list (last = prediction), or one
# feature list per scale.
DiscriminatorOutput = Tensor | Sequence[Tensor] | Sequence[Sequence[Tensor]]

# relu1_1 .. relu5_1, pix2pixHD's VGGLoss weights.
VGG_LAYER_WEIGHTS = (1.0 / 32, 1.0 / 16, 1.0 / 8, 1.0 / 4, 1.0)


def _per_scale(output: DiscriminatorOutput) -> list[Sequence[Tensor]]:
    """Normalise a discriminator's output to a list (scales) of feature lists."""
    if isinstance(output, Tensor):
        return [[output]]
    if len(output) and isinstance(output[0], Tensor):
        return [output]  # type: ignore[list-item]
    return list(output)  # type: ignore[arg-type]


class GANLoss(nn.Module):
    """Least-squares GAN loss: mean squared distance of every prediction map to 1 (real) or
    0 (fake), summed over the scales, as pix2pixHD. Only the last feature of each scale (the
    prediction map) counts."""

    def __init__(self, real_label: float = 1.0, fake_label: float = 0.0) -> None:
        super().__init__()
        self.real_label = real_label
        self.fake_label = fake_label

    def forward(self, output: DiscriminatorOutput, target_is_real: bool) -> Tensor:
        value = self.real_label if target_is_real else self.fake_label
        total: Tensor | None = None
        for features in _per_scale(output):
            pred = features[-1]
            loss = F.mse_loss(pred, torch.full_like(pred, value))
            total = loss if total is None else total + loss
        assert total is not None, "empty discriminator output"
        return total


def feature_matching_loss(real_feats: DiscriminatorOutput, fake_feats: DiscriminatorOutput,
                          num_D: int | None = None, n_layers: int | None = None) -> Tensor:
    """pix2pixHD's discriminator feature matching, unweighted by lambda_feat.

    Sum over scales and over each scale's intermediate features (the prediction map
    excluded) of ``1/num_D * 4/(n_layers+1) * L1(fake, real.detach())``. ``num_D`` and
    ``n_layers`` default to what the feature lists show (n_layers = len(features) - 2).
    """
    real_scales, fake_scales = _per_scale(real_feats), _per_scale(fake_feats)
    if len(real_scales) != len(fake_scales):
        raise ValueError("real and fake discriminator outputs have different numbers of scales")
    num_D = len(real_scales) if num_D is None else num_D
    n_layers = len(real_scales[0]) - 2 if n_layers is None else n_layers
    weight = (1.0 / num_D) * (4.0 / (n_layers + 1))
    total = fake_scales[0][-1].new_zeros(())
    for real, fake in zip(real_scales, fake_scales):
        for r, f in zip(real[:-1], fake[:-1]):
            total = total + weight * F.l1_loss(f, r.detach())
    return total


class VGGLoss(nn.Module):
    """Perceptual loss: weighted L1 between VGG19 features (relu1_1..relu5_1, weights
    1/32, 1/16, 1/8, 1/4, 1) of the generated and real images.

    Images are in [-1, 1]; they are mapped to [0, 1] and normalised with the ImageNet mean
    and std that the VGG19 weights were trained with. (pix2pixHD feeds [-1, 1] unnormalised;
    the ImageNet normalisation is the input the network expects.) The target's features
    carry no gradient; the VGG19 stays frozen and in eval mode.
    """

    MEAN = (0.485, 0.456, 0.406)
    STD = (0.229, 0.224, 0.225)

    def __init__(self, vgg: VGG19Features,
                 layer_weights: Sequence[float] = VGG_LAYER_WEIGHTS) -> None:
        super().__init__()
        if len(layer_weights) != len(vgg.slices):
            raise ValueError(f"{len(layer_weights)} layer weights for {len(vgg.slices)} layers")
        self.vgg = vgg.eval().requires_grad_(False)
        self.layer_weights = tuple(float(w) for w in layer_weights)
        self.register_buffer("mean", torch.tensor(self.MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(self.STD).view(1, 3, 1, 1), persistent=False)

    def train(self, mode: bool = True) -> VGGLoss:
        super().train(mode)
        self.vgg.eval()  # a frozen feature extractor never switches to training mode
        return self

    def normalize(self, image: Tensor) -> Tensor:
        """[-1, 1] image -> ImageNet-normalised VGG input."""
        return ((image + 1.0) * 0.5 - self.mean) / self.std

    def forward(self, fake: Tensor, real: Tensor) -> Tensor:
        fake_feats = self.vgg(self.normalize(fake))
        with torch.no_grad():
            real_feats = self.vgg(self.normalize(real))
        total = fake.new_zeros(())
        for w, f, r in zip(self.layer_weights, fake_feats, real_feats):
            total = total + w * F.l1_loss(f, r)
        return total
