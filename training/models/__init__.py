"""Training-only networks and losses: discriminators, GAN/feature-matching/VGG losses, VGG19."""

from .discriminators import (DiscriminatorConfig, MultiscaleDiscriminator, NLayerDiscriminator,
                             build_discriminator, build_face_discriminator, frame_pair,
                             temporal_pair)
from .losses import GANLoss, VGGLoss, feature_matching_loss
from .vgg import VGG19_URL, VGG19Features, WeightsUnavailable, load_vgg19

__all__ = [
    "DiscriminatorConfig", "GANLoss", "MultiscaleDiscriminator",
    "NLayerDiscriminator", "VGG19Features", "VGG19_URL", "VGGLoss", "WeightsUnavailable",
    "build_discriminator", "build_face_discriminator", "frame_pair", "feature_matching_loss",
    "load_vgg19", "temporal_pair",
]
