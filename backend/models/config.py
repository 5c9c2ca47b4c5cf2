"""Configurations of the inference networks (pix2pixHD as used by Everybody Dance Now).

The defaults are the paper's / official code's: a global generator with ngf 64, 4 downsamplings
and 9 residual blocks trained at 512x256, optionally wrapped by one local enhancer at 1024x512,
and a face generator (ngf 64, 3 downsamplings, 5 blocks). The configurations travel inside the
model bundle's ``manifest.json`` through ``to_dict``/``from_dict``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, TypeVar

NORMS = ("instance", "batch")
PADDINGS = ("reflect", "replicate", "zero")
# How generators double their size: pix2pixHD's transposed convolution (the paper's), or a
# nearest-neighbour resize followed by a 3x3 convolution, which cannot leave the checkerboard
# pattern of uneven kernel overlap (Odena et al., "Deconvolution and Checkerboard Artifacts").
UPSAMPLES = ("transpose", "resize")
# What G sees of the previous frame: the frame itself (the paper's), or, with a matte, the frame
# minus the target's plate: zeros wherever the background showed, so nothing of the room can
# be copied from it (see models/step.py).
PREVIOUS_INPUTS = ("frame", "minus_plate")
RGB, RGBA = 3, 4  # output channels: a full frame, or a person layer with its alpha matte

C = TypeVar("C", bound="_Config")


class _Config:
    """``to_dict``/``from_dict`` shared by the configuration dataclasses."""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        """Build from a dict; unknown keys are an error (they could mean another architecture)."""
        if not isinstance(data, dict):
            raise ValueError(f"{cls.__name__}: expected a JSON object, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"{cls.__name__}: unknown keys {unknown}")
        return cls(**data)


def _check(config: Any) -> None:
    """The checks every configuration needs: whole non-negative sizes, known choices."""
    name = type(config).__name__
    for f in fields(config):
        value = getattr(config, f.name)
        if f.type in (int, "int") and (not isinstance(value, int) or isinstance(value, bool)
                                       or value < 0):
            raise ValueError(f"{name}.{f.name} must be a non-negative integer, got {value!r}")
    for key in ("input_nc", "output_nc", "ngf"):
        if getattr(config, key) < 1:
            raise ValueError(f"{name}.{key} must be at least 1, got {getattr(config, key)}")
    for key, choices in (("norm", NORMS), ("padding", PADDINGS), ("upsample", UPSAMPLES)):
        if getattr(config, key) not in choices:
            raise ValueError(f"{name}.{key} must be one of {choices}, got "
                             f"{getattr(config, key)!r}")


@dataclass(frozen=True)
class GeneratorConfig(_Config):
    """The pose-to-image generator G.

    ``ngf`` is the width of the *global* generator (64 in the paper). With
    ``n_local_enhancers`` = 1 the generator is a LocalEnhancer whose local branch has
    ``ngf // 2`` = 32 filters, exactly as pix2pixHD's ``--netG local --ngf 32`` (which
    internally builds its global part with 32 * 2 = 64 filters).

    Input: ``input_nc`` = 6 channels, the label (3) and the previous generated frame (3).
    Output: ``output_nc`` = 3, the frame (the paper's); or 4, the person's colour and an alpha
    matte, composited over the target's background plate (``has_matte``; see models/step.py).
    ``previous_input``: how the previous frame enters G (``PREVIOUS_INPUTS``); bundles written
    before the field existed mean "frame".
    """

    input_nc: int = 6
    output_nc: int = RGB
    ngf: int = 64
    n_downsample_global: int = 4
    n_blocks_global: int = 9
    n_local_enhancers: int = 0
    n_blocks_local: int = 3
    norm: str = "instance"
    padding: str = "reflect"
    upsample: str = "transpose"
    previous_input: str = "frame"

    def __post_init__(self) -> None:
        _check(self)
        if self.previous_input not in PREVIOUS_INPUTS:
            raise ValueError(f"GeneratorConfig.previous_input must be one of {PREVIOUS_INPUTS}, "
                             f"got {self.previous_input!r}")
        if self.previous_input == "minus_plate" and self.output_nc != RGBA:
            raise ValueError("GeneratorConfig.previous_input 'minus_plate' needs a matte "
                             f"(output_nc {RGBA}): only then is there a plate")
        if self.output_nc not in (RGB, RGBA):
            raise ValueError(f"GeneratorConfig.output_nc must be {RGB} (a frame) or {RGBA} (a "
                             f"person with its matte), got {self.output_nc}")
        if self.ngf % (2**self.n_local_enhancers):
            raise ValueError(
                f"GeneratorConfig.ngf ({self.ngf}) must be divisible by "
                f"2**n_local_enhancers ({2**self.n_local_enhancers})"
            )

    @property
    def size_multiple(self) -> int:
        """Input height and width must be multiples of this."""
        return 2 ** (self.n_downsample_global + self.n_local_enhancers)

    @property
    def has_matte(self) -> bool:
        """Whether G paints the person alone (colour and alpha) over the target's plate."""
        return self.output_nc == RGBA


@dataclass(frozen=True)
class FaceGeneratorConfig(_Config):
    """The face residual generator: a global generator on the (label, face) crops."""

    input_nc: int = 6
    output_nc: int = 3
    ngf: int = 64
    n_downsampling: int = 3
    n_blocks: int = 5
    norm: str = "instance"
    padding: str = "reflect"
    upsample: str = "transpose"

    def __post_init__(self) -> None:
        _check(self)

    @property
    def size_multiple(self) -> int:
        """The face box side must be a multiple of this."""
        return 2**self.n_downsampling


# The paper's networks, for reference and tests.
PAPER_GLOBAL = GeneratorConfig()
PAPER_FACE = FaceGeneratorConfig()
