"""The inference networks (pix2pixHD generators, face generator), the generator step and the
model bundle format.

Names are imported from their submodule on first use (PEP 562): the training options import
the light ``backend.models.config`` when a command line is built, and that must not load
PyTorch (it takes seconds).
"""

from __future__ import annotations

import importlib
from typing import Any

_HOMES = {
    "bundle": ("BUNDLE_FORMAT_VERSION", "Bundle", "BundleManifest", "TrainingRecord",
               "is_bundle", "load_bundle", "read_manifest", "save_bundle"),
    "config": ("PAPER_FACE", "PAPER_GLOBAL", "FaceGeneratorConfig",
               "GeneratorConfig"),
    "networks": ("FaceGenerator", "Generator", "GlobalGenerator", "LocalEnhancer",
                 "apply_face_residual", "build_face_generator", "build_generator",
                 "crop_box", "generator_input", "init_weights"),
    "step": ("generate_frame",),
}
_HOME_OF = {name: module for module, names in _HOMES.items() for name in names}
__all__ = sorted(_HOME_OF)


def __getattr__(name: str) -> Any:
    if name not in _HOME_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOME_OF[name]}"), name)
