"""Training-only networks and losses: discriminators, GAN/feature-matching/VGG losses, VGG19."""

from .discriminators import (DiscriminatorConfig, MultiscaleDiscriminator, NLayerDiscriminator,
                             build_discriminator, build_face_discriminator, face_pair,
                             global_stage_discriminator, local_stage_discriminator,
                             temporal_pair)
from .losses import GANLoss, LossWeights, VGGLoss, feature_matching_loss
from .vgg import VGG19_URL, VGG19Features, WeightsUnavailable, load_vgg19

__all__ = [
    "DiscriminatorConfig", "GANLoss", "LossWeights", "MultiscaleDiscriminator",
    "NLayerDiscriminator", "VGG19Features", "VGG19_URL", "VGGLoss", "WeightsUnavailable",
    "build_discriminator", "build_face_discriminator", "face_pair", "feature_matching_loss",
    "global_stage_discriminator", "load_vgg19", "local_stage_discriminator", "temporal_pair",
]
