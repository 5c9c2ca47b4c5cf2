"""The inference networks (pix2pixHD generators, face generator) and the model bundle format."""

from .bundle import (BUNDLE_FORMAT_VERSION, Bundle, BundleManifest, is_bundle, load_bundle,
                     read_manifest, save_bundle)
from .config import PAPER_FACE, PAPER_GLOBAL, PAPER_LOCAL, FaceGeneratorConfig, GeneratorConfig
from .networks import (Box, FaceGenerator, Generator, GlobalGenerator, LocalEnhancer,
                       apply_face_residual, build_face_generator, build_generator,
                       count_parameters, crop_box, face_box, face_box_size, generator_input,
                       init_weights)

__all__ = [
    "BUNDLE_FORMAT_VERSION", "Box", "Bundle", "BundleManifest", "FaceGenerator",
    "FaceGeneratorConfig", "Generator", "GeneratorConfig", "GlobalGenerator", "LocalEnhancer",
    "PAPER_FACE", "PAPER_GLOBAL", "PAPER_LOCAL", "apply_face_residual", "build_face_generator",
    "build_generator", "count_parameters", "crop_box", "face_box", "face_box_size",
    "generator_input", "init_weights", "is_bundle", "load_bundle", "read_manifest",
    "save_bundle",
]
