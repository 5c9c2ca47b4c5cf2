"""Every training option, as dataclasses whose defaults are the paper's / official code's.

The official code is Everybody Dance Now's fork of pix2pixHD (``train_fullts.py``):

* global stage at 512x256: ``--netG global --ngf 64``, 2 discriminator scales;
* local stage at 1024x512: ``--netG local --ngf 32`` (a global trunk of 64 filters and a local
  branch of 32) initialised from the global stage, 3 discriminator scales;
* face stage: G frozen, a face generator (ngf 64, 3 downsamplings, 5 blocks) predicting a
  residual on the 128x128 box around the nose, a one-scale face discriminator.
* LSGAN, feature matching x10, VGG x10; Adam lr 2e-4, betas (0.5, 0.999); pix2pixHD keeps the
  learning rate constant for ``niter`` epochs then decays it linearly to zero over
  ``niter_decay`` epochs (both 100 by default: half and half). We do the same per step.
* The paper's schedule: about 5 epochs global, 30 local, 5 face.

``PRESETS`` holds the named configurations; ``preset(name)`` returns a fresh copy and
``add_option_arguments``/``apply_overrides`` expose every field on the command line
(``--ngf 32``, ``--lambda-vgg 5``, ``--temporal chain`` ...).
"""

from __future__ import annotations

import argparse
import copy
import math
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, get_args, get_origin, get_type_hints

from backend.checks import MAX_SIDE, THREADS, Float, Int, Number, Size
from backend.commands.parsing import parse_size
from backend.models.config import (PAPER_FACE, PAPER_GLOBAL, PREVIOUS_INPUTS, RGB, RGBA,
                                   UPSAMPLES, FaceGeneratorConfig, GeneratorConfig)
from backend.choices import LEGACY_PRECISIONS, PRECISIONS

STAGES = ("global", "local", "face")
TEMPORAL_MODES = ("paper", "chain", "noisy", "none")
PERCEPTUAL = ("vgg", "none")
MATTE_MODES = ("auto", "on", "off")
WINDOW_MODES = ("auto", "on", "off")
# pix2pix's L1 weight where no perceptual loss runs: on a studio clip (cpu-small, 256x128) it
# raised body SSIM 0.756 -> 0.777 and the face GAN no longer made the face worse.
L1_WITHOUT_PERCEPTUAL = 10.0


@dataclass
class ModelOptions:
    """Network widths and depths; the generators' defaults are the paper's configurations
    (backend/models/config.py), the discriminators' pix2pixHD's / EDN's."""

    ngf: int = PAPER_GLOBAL.ngf  # width of the global generator (the local branch: ngf // 2)
    n_downsample_global: int = PAPER_GLOBAL.n_downsample_global
    n_blocks_global: int = PAPER_GLOBAL.n_blocks_global
    n_blocks_local: int = PAPER_GLOBAL.n_blocks_local
    ndf: int = 64
    n_layers_D: int = 3
    num_D_global: int = 2  # pix2pixHD's default --num_D, used for the global stage
    num_D_local: int = 3  # EDN's local stage passes --num_D 3
    face_ngf: int = PAPER_FACE.ngf
    face_n_downsampling: int = PAPER_FACE.n_downsampling
    face_n_blocks: int = PAPER_FACE.n_blocks
    face_ndf: int = 64
    face_n_layers_D: int = 3
    norm: str = PAPER_GLOBAL.norm
    # How G doubles its size: "transpose" (the paper's) or "resize" (no checkerboard).
    upsample: str = PAPER_GLOBAL.upsample
    # G paints the person and an alpha over the target's background plate ("on"), or the
    # whole frame ("off", the paper's); "auto": on where the target's camera is static (the
    # training run decides, and records it, when it starts).
    matte: str = "off"
    # With a matte, what G sees of its previous frame: the frame minus the plate (the person
    # alone), or the frame itself ("frame", as runs of earlier versions; see models/step.py).
    previous_input: str = "minus_plate"
    # G paints in a window that follows the person ("on"; needs the matte), or the whole
    # canvas ("off", the paper's); "auto": on wherever the matte is (backend/target/window.py).
    window: str = "off"
    # The window's size, WxH at the final resolution; "auto": from the target's training
    # poses (their 99th percentile, with the margin), the same on every call of a run.
    window_size: str = "auto"
    # Around the label's keypoints, a fraction of the target's median body height.
    window_margin: float = 0.1

    def generator(self, local: bool) -> GeneratorConfig:
        """G's configuration: a global generator, or with ``local`` a local enhancer."""
        matte = self.matte == "on"
        return GeneratorConfig(output_nc=RGBA if matte else RGB, ngf=self.ngf,
                               n_downsample_global=self.n_downsample_global,
                               n_blocks_global=self.n_blocks_global,
                               n_local_enhancers=1 if local else 0,
                               n_blocks_local=self.n_blocks_local, norm=self.norm,
                               upsample=self.upsample,
                               previous_input=self.previous_input if matte else "frame")

    def face_generator(self) -> FaceGeneratorConfig:
        return FaceGeneratorConfig(ngf=self.face_ngf, n_downsampling=self.face_n_downsampling,
                                   n_blocks=self.face_n_blocks, norm=self.norm,
                                   upsample=self.upsample)


@dataclass
class LossOptions:
    """Loss weights; ``perceptual='none'`` trains without the VGG19 loss."""

    lambda_feat: float = 10.0
    lambda_vgg: float = 10.0
    perceptual: str = "vgg"
    vgg_weights: str | None = None  # a .pth/.safetensors VGG19; None: cache or download
    # The official code halves the VGG term in the global stage (mean of the two frames) and
    # sums it in the local stage ("need 2x VGG for artifacts when training local").
    halve_vgg_in_global: bool = True
    face_vgg_weight: float = 0.5  # per frame, on the face crop (official code)
    # VGG19 on images scaled by this (1, 1/2, 1/4 ...): the perceptual loss dominates the cost
    # of a CPU step, and at 1/2 it costs a quarter. 1 in the paper.
    vgg_scale: float = 1.0
    # pix2pix's L1 between generated and real frames (and face crops in the face stage). 0 in
    # the paper, where the VGG loss plays that role; None: chosen when training starts
    # (``reconstruction_weight``) and recorded: 10 without the VGG loss (--perceptual none),
    # which kept a small GAN from drifting into noise and the face GAN from making the face
    # worse than none (training/README.md), else the paper's 0.
    lambda_l1: float | None = None
    # With a matte: L1 between G's alpha and the person's mask, so that alpha means "person",
    # and between its colour layer and the real frame where the person is not (training/step.py).
    lambda_matte: float = 10.0
    # L1 between the change of consecutive generated frames and that of the real ones (not
    # in the paper: its temporal discriminator alone judges the change, and at a small budget
    # G's noise differs from frame to frame, which shows as flicker).
    lambda_flicker: float = 0.0


@dataclass
class OptimOptions:
    lr: float = 2e-4
    beta1: float = 0.5
    beta2: float = 0.999
    # Fraction of a stage's steps at constant learning rate before the linear decay to zero
    # (pix2pixHD: niter = niter_decay = 100 epochs, i.e. one half).
    constant_fraction: float = 0.5


@dataclass
class TemporalOptions:
    """How the previous-frame input is made during training.

    * ``paper``: G(x_{t-1}, 0) then G(x_t, G(x_{t-1})), not detached; D sees the pair.
    * ``chain``: ``chain_length`` consecutive frames, each conditioned on the previous output
      (the first on zeros); D sees every consecutive pair. Closer to inference, where G runs
      on its own output for the whole video.
    * ``noisy``: as ``paper``, but the second frame is conditioned on the *real* previous
      frame plus Gaussian noise of ``noise_std`` (on [-1, 1] images): G learns to follow a
      previous frame that is imperfect without relying on its own first pass.
    * ``none``: no temporal smoothing, the paper's ablation (plain pix2pixHD): single frames,
      G's previous-frame input always zeros (in training and at inference, recorded in the
      bundle) and D judging (label, frame) alone.
    """

    temporal: str = "paper"
    chain_length: int = 3
    noise_std: float = 0.1


@dataclass
class ScheduleOptions:
    """Which stages the run trains and for how long (the paper's schedule by default)."""

    stages: tuple[str, ...] = ("global", "local", "face")
    epochs_global: float = 5.0
    epochs_local: float = 30.0
    epochs_face: float = 5.0
    # pix2pixHD's --niter_fix_global: epochs of the local stage that train only the local
    # branch before the whole generator (0 in EDN's commands).
    fix_global_epochs: float = 0.0


@dataclass
class RuntimeOptions:
    """Engineering: batching, checkpoints, logging, precision; none of it changes the method."""

    batch_size: int = 1  # per process; the paper trains with batch 1
    num_workers: int = 2
    seed: int = 0
    checkpoint_every: int = 1000  # steps
    keep_checkpoints: int = 2  # per stage, the newest ones
    log_every: int = 20  # steps between TensorBoard scalars / status.json updates
    image_every: int = 500  # steps between TensorBoard image grids
    eval_frames: int = 8  # held-out frames generated at each checkpoint (error + preview)
    # auto: bf16 autocast where the GPU supports it, else fp16 + GradScaler; the CPU fp32
    # (backend/runtime.py, the rule transfer uses too)
    precision: str = "auto"
    channels_last: bool = True  # CUDA only
    device: str = "auto"  # auto | cpu | mps | cuda | cuda:N
    threads: int = 0  # CPU threads per operation (0: chosen for the cores and the frame size)
    tensorboard: bool = True
    progress: bool = True


@dataclass
class TrainOptions:
    """A complete training configuration. ``size`` is the final resolution (width, height)."""

    preset: str = "paper-local"
    size: tuple[int, int] = (1024, 512)
    model: ModelOptions = field(default_factory=ModelOptions)
    loss: LossOptions = field(default_factory=LossOptions)
    optim: OptimOptions = field(default_factory=OptimOptions)
    temporal: TemporalOptions = field(default_factory=TemporalOptions)
    schedule: ScheduleOptions = field(default_factory=ScheduleOptions)
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)

    def __post_init__(self) -> None:
        self.size = (int(self.size[0]), int(self.size[1]))
        self.schedule.stages = tuple(self.schedule.stages)

    # -- derived values ------------------------------------------------------------------

    def stage_size(self, stage: str) -> tuple[int, int]:
        """Resolution of ``stage``: the global stage runs at half size when a local stage
        follows (512x256 then 1024x512, as the paper); otherwise everything runs at ``size``."""
        if stage == "global" and "local" in self.schedule.stages:
            return (self.size[0] // 2, self.size[1] // 2)
        return self.size

    def stage_epochs(self, stage: str) -> float:
        return float(getattr(self.schedule, f"epochs_{stage}"))

    def sizes_needed(self) -> list[tuple[int, int]]:
        """Every resolution the run's stages train at (labels are rendered for each)."""
        return sorted({self.stage_size(s) for s in self.schedule.stages})

    def validate(self) -> None:
        """Raise ValueError for a configuration that cannot train."""
        stages = self.schedule.stages
        if not stages or any(s not in STAGES for s in stages):
            raise ValueError(f"stages must be a non-empty subset of {STAGES}, got {stages}")
        if list(stages) != [s for s in STAGES if s in stages]:
            raise ValueError(f"stages must be in the order {STAGES}, got {stages}")
        if stages[0] != "global":
            raise ValueError("a run starts with the global stage")
        if self.temporal.temporal not in TEMPORAL_MODES:
            raise ValueError(f"temporal must be one of {TEMPORAL_MODES}")
        if self.temporal.chain_length < 2:
            raise ValueError("chain_length must be at least 2")
        if self.loss.perceptual not in PERCEPTUAL:
            raise ValueError(f"perceptual must be one of {PERCEPTUAL}")
        if self.model.matte not in MATTE_MODES:
            raise ValueError(f"matte must be one of {MATTE_MODES}")
        if self.model.previous_input not in PREVIOUS_INPUTS:
            raise ValueError(f"previous_input must be one of {PREVIOUS_INPUTS}")
        if self.model.window not in WINDOW_MODES:
            raise ValueError(f"window must be one of {WINDOW_MODES}")
        try:
            window_size(self.model.window_size)
        except argparse.ArgumentTypeError as exc:
            raise ValueError(f"--window-size {exc}") from None
        if self.model.window == "on" and self.model.matte == "off":
            raise ValueError("a person window needs the matte (--matte on or auto)")
        if self.model.upsample not in UPSAMPLES:
            raise ValueError(f"upsample must be one of {UPSAMPLES}")
        if self.runtime.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {PRECISIONS}")
        if self.runtime.batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        for section, cls, name in _option_fields():  # a saved run's options too
            kind = _field_type(cls, name)
            value = getattr(getattr(self, section), name)
            if kind in (int, float) and value is not None:  # None: the run chooses (lambda_l1)
                option_range(name, kind).check(value, _flag(name))
        if not math.log2(1 / self.loss.vgg_scale).is_integer():
            raise ValueError(f"--vgg-scale must be 1, 1/2, 1/4, ..., got {self.loss.vgg_scale}")
        for stage in stages:
            w, h = self.stage_size(stage)
            local = stage != "global" and "local" in stages
            multiple = self.model.generator(local).size_multiple
            if w % multiple or h % multiple or min(w, h) < multiple:
                size, halved = f"{self.size[0]}x{self.size[1]}", "local" in stages
                why = "2 to the power of its downsamplings" + (
                    ", doubled for the local stage" if halved else "")
                example = _round_size(self.size, multiple * (2 if halved else 1))
                raise ValueError(f"--size {size}: stage {stage} runs at {w}x{h}, whose sides must "
                                 f"be multiples of {multiple} for this generator ({why}); for "
                                 f"example {example}")
            self._check_window_size(stage, multiple)

    def _check_window_size(self, stage: str, multiple: int) -> None:
        """A given window must leave G's innermost layer more than one pixel a side at every
        stage (InstanceNorm needs more than one), i.e. at least twice G's size multiple."""
        if self.model.window_size == "auto":
            return
        w, h = parse_size(self.model.window_size)
        scale = self.stage_size(stage)[1] / self.size[1]
        if min(w, h) * scale < 2 * multiple:
            least = math.ceil(2 * multiple / scale)
            raise ValueError(f"--window-size {w}x{h}: stage {stage} paints it at "
                             f"{round(w * scale)}x{round(h * scale)}, and its generator needs "
                             f"at least {2 * multiple}x{2 * multiple} there; give at least "
                             f"{least}x{least}")

    def with_reconstruction(self) -> "TrainOptions":
        """These options with ``lambda_l1`` chosen where it was left to the run (None):
        ``L1_WITHOUT_PERCEPTUAL`` without a perceptual loss, else 0 (the paper's)."""
        if self.loss.lambda_l1 is not None:
            return self
        weight = L1_WITHOUT_PERCEPTUAL if self.loss.perceptual == "none" else 0.0
        return replace(self, loss=replace(self.loss, lambda_l1=weight))

    def sequence_length(self) -> int:
        """Consecutive frames per training sample."""
        mode = self.temporal.temporal
        return self.temporal.chain_length if mode == "chain" else 1 if mode == "none" else 2

    # -- serialisation -------------------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["size"] = list(self.size)
        data["schedule"]["stages"] = list(self.schedule.stages)
        return data

    @staticmethod
    def from_dict(data: dict[str, Any]) -> "TrainOptions":
        """Inverse of ``to_dict``; unknown keys are an error (they mean another version).
        Options of earlier versions (``runtime.amp``) are read in today's words."""
        opts = TrainOptions()
        if "previous_input" not in data.get("model", {}):
            opts.model.previous_input = "frame"  # runs of earlier versions
        for key, value in data.items():
            if key in _SECTIONS:
                section = getattr(opts, key)
                if key == "runtime" and "amp" in value:
                    value = {**value, "precision": LEGACY_PRECISIONS.get(value["amp"],
                                                                         value["amp"])}
                    del value["amp"]
                for name, item in value.items():
                    if not hasattr(section, name):
                        raise ValueError(f"unknown option {key}.{name}")
                    setattr(section, name, tuple(item) if isinstance(item, list) else item)
            elif key in ("preset", "size"):
                setattr(opts, key, value)
            else:
                raise ValueError(f"unknown option {key}")
        opts.__post_init__()
        return opts


_SECTIONS = ("model", "loss", "optim", "temporal", "schedule", "runtime")


def _round_size(size: tuple[int, int], multiple: int) -> str:
    """``size`` rounded to the nearest multiples of ``multiple`` (at least one)."""
    w, h = (max(multiple, round(side / multiple) * multiple) for side in size)
    return f"{w}x{h}"


# --------------------------------------------------------------------------------------------
# Presets
# --------------------------------------------------------------------------------------------


def _paper_local() -> TrainOptions:
    """The paper: global at 512x256, local at 1024x512, face GAN; 5 / 30 / 5 epochs."""
    return TrainOptions(preset="paper-local", size=(1024, 512))


def _paper_global() -> TrainOptions:
    """The paper's networks at 512x256 only: the global generator, then the face GAN
    (its box scaled to 64x64)."""
    opts = TrainOptions(preset="paper-global", size=(512, 256))
    opts.schedule.stages = ("global", "face")
    return opts


def _cpu_small() -> TrainOptions:
    """256x128, narrower and shallower networks: a usable model in minutes on a laptop CPU."""
    opts = TrainOptions(preset="cpu-small", size=(256, 128))
    # The matte where the camera is static: on target_taiji at equal steps it beat the paper's
    # full-frame generator and the nearest-neighbour baseline on full-frame and body SSIM,
    # flicker and body keypoints (training/README.md). Transposed convolutions (the paper's)
    # measured better than resize upsampling on face SSIM, flicker and body keypoints.
    opts.model = ModelOptions(ngf=16, n_downsample_global=3, n_blocks_global=4, ndf=16,
                              n_layers_D=3, face_ngf=16, face_n_downsampling=2,
                              face_n_blocks=2, face_ndf=16, face_n_layers_D=2, matte="auto")
    opts.loss.vgg_scale = 0.5
    opts.schedule = ScheduleOptions(stages=("global", "face"), epochs_global=4.0,
                                    epochs_face=1.0)
    opts.runtime.checkpoint_every = 200
    opts.runtime.image_every = 200
    opts.runtime.num_workers = 1
    return opts


def _cpu_medium() -> TrainOptions:
    """512x256 for the compute of a laptop CPU: cpu-small's networks painting only a window
    that follows the person, over the plate (where the camera is static; else the whole
    frame at cpu-small's cost x 4, with a note). Measured in training/README.md."""
    opts = _cpu_small()
    opts.preset, opts.size = "cpu-medium", (512, 256)
    opts.model.window = "auto"
    opts.schedule = ScheduleOptions(stages=("global", "face"), epochs_global=3.0,
                                    epochs_face=1.0)
    return opts


def _tiny() -> TrainOptions:
    """For tests: 64x32 (the global stage at 32x16), ngf 8, 2 residual blocks, all stages."""
    opts = TrainOptions(preset="tiny", size=(64, 32))
    opts.model = ModelOptions(ngf=8, n_downsample_global=2, n_blocks_global=2, n_blocks_local=1,
                              ndf=8, n_layers_D=2, face_ngf=8, face_n_downsampling=1,
                              face_n_blocks=1, face_ndf=8, face_n_layers_D=2)
    opts.schedule = ScheduleOptions(stages=("global", "local", "face"), epochs_global=2.0,
                                    epochs_local=1.0, epochs_face=1.0)
    opts.runtime.num_workers = 0
    opts.runtime.threads = 1  # tiny convolutions: more threads only add synchronisation
    opts.runtime.checkpoint_every = 50
    opts.runtime.image_every = 50
    opts.runtime.log_every = 5
    return opts


PRESETS = {
    "paper-local": _paper_local,
    "paper-global": _paper_global,
    "cpu-small": _cpu_small,
    "cpu-medium": _cpu_medium,
    "tiny": _tiny,
}


def preset(name: str) -> TrainOptions:
    """A fresh copy of the named preset."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]()


# --------------------------------------------------------------------------------------------
# Command line: every field of every section as --flag (names are unique across sections)
# --------------------------------------------------------------------------------------------


def _flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _field_type(section_cls: type, name: str) -> Any:
    hint = get_type_hints(section_cls)[name]
    args = [a for a in get_args(hint) if a is not type(None)]
    if get_origin(hint) is tuple:
        return "tuple"
    if args and get_origin(hint) is not None:  # X | None
        return args[0]
    return hint


def _option_fields() -> list[tuple[str, type, str]]:
    """(section, section class, field name) for every overridable option."""
    out = []
    for section in _SECTIONS:
        cls = type(getattr(TrainOptions(), section))
        for f in fields(cls):
            out.append((section, cls, f.name))
    return out


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


CHOICES = {"temporal": TEMPORAL_MODES, "perceptual": PERCEPTUAL, "precision": PRECISIONS,
           "norm": ("instance", "batch"), "upsample": UPSAMPLES, "matte": MATTE_MODES,
           "previous_input": PREVIOUS_INPUTS, "window": WINDOW_MODES}


# What each numeric option may be (backend/checks.py); an option not named here is a
# non-negative integer or number of at most a billion.
NETWORK_WIDTH = Int(1, 1024)
LOSS_WEIGHT = Float(0.0, 1e4)
STEPS = Int(1, 10**9)
EPOCHS = Float(0.0, 1e5, above=True)
RANGES: dict[str, Number] = {
    "ngf": NETWORK_WIDTH, "ndf": NETWORK_WIDTH, "face_ngf": NETWORK_WIDTH,
    "face_ndf": NETWORK_WIDTH, "n_downsample_global": Int(1, 8),
    "face_n_downsampling": Int(1, 8), "n_blocks_global": Int(0, 64),
    "n_blocks_local": Int(0, 64), "face_n_blocks": Int(0, 64), "n_layers_D": Int(1, 8),
    "face_n_layers_D": Int(1, 8), "num_D_global": Int(1, 8), "num_D_local": Int(1, 8),
    "lambda_feat": LOSS_WEIGHT, "lambda_vgg": LOSS_WEIGHT, "lambda_l1": LOSS_WEIGHT,
    "lambda_matte": LOSS_WEIGHT, "lambda_flicker": LOSS_WEIGHT, "face_vgg_weight": LOSS_WEIGHT,
    "vgg_scale": Float(0.0, 1.0, above=True), "lr": Float(0.0, 1.0, above=True),
    "beta1": Float(0.0, 0.9999), "beta2": Float(0.0, 0.9999),
    "constant_fraction": Float(0.0, 1.0), "chain_length": Int(2, 64),
    "noise_std": Float(0.0, 10.0), "epochs_global": EPOCHS, "epochs_local": EPOCHS,
    "epochs_face": EPOCHS, "fix_global_epochs": Float(0.0, 1e5), "batch_size": Int(1, 4096),
    "num_workers": Int(0, 256), "seed": Int(0, 2**32 - 1), "checkpoint_every": STEPS,
    "keep_checkpoints": Int(1, 10**6), "log_every": STEPS, "image_every": STEPS,
    "eval_frames": Int(0, 10**5), "threads": THREADS, "window_margin": Float(0.0, 1.0),
}


def window_size(text: str) -> str:
    """``--window-size``: "auto", or WxH (the person window at the final resolution)."""
    if text == "auto":
        return text
    try:
        w, h = WINDOW_SIZE.parse(text)
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(f"must be auto or {WINDOW_SIZE.allowed()}, got "
                                         f"{text!r}") from None
    return f"{w}x{h}"


WINDOW_SIZE = Size(8, MAX_SIDE)
CONVERTERS = {"window_size": window_size}


def option_range(name: str, kind: type) -> Number:
    """What option ``name`` (an int or a float) may be."""
    return RANGES.get(name, Int(0, 10**9) if kind is int else Float(0.0, 1e9))


# Options the commands set with a flag of their own (one flag per idea).
OWN_FLAGS = {"progress": "--no-progress"}


# Options beyond the paper, whose default is not the paper's.
HELP = {"previous_input": "model, with a matte: what G sees of its previous frame (default: "
                          "minus_plate, the person alone; frame: the whole frame)",
        "window": "model: G paints only a window that follows the person, over the plate "
                  "(on; needs the matte), or the whole frame (off, the paper's); auto: on "
                  "wherever the matte is (default: the preset's)",
        "window_size": "model: the person window's size, WxH at the final resolution "
                       "(default auto: from the target's training poses)",
        "window_margin": "model: around the label's keypoints, a fraction of the target's "
                         "median body height (default 0.1)"}


def add_option_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--size`` and one flag per option field (default None = keep the preset's)."""
    group = parser.add_argument_group("training options (defaults: the preset's)")
    group.add_argument("--size", type=parse_size, default=None, metavar="WxH",
                       help="final training resolution")
    for section, cls, name in _option_fields():
        if name in OWN_FLAGS:
            continue
        kind = _field_type(cls, name)
        default = getattr(getattr(TrainOptions(), section), name)
        if kind == "tuple":
            group.add_argument(_flag(name), nargs="+", default=None, choices=STAGES,
                               help=f"{section}: (paper: {' '.join(default)})")
            continue
        convert = (_bool if kind is bool else option_range(name, kind).parse
                   if kind in (int, float) else CONVERTERS.get(name, kind))
        group.add_argument(_flag(name), type=convert, default=None, choices=CHOICES.get(name),
                           metavar=None if name in CHOICES else kind.__name__.upper(),
                           help=HELP.get(name, f"{section} (paper: {default})"))


def apply_overrides(opts: TrainOptions, args: argparse.Namespace) -> TrainOptions:
    """A copy of ``opts`` with every option given on the command line applied."""
    opts = copy.deepcopy(opts)
    if getattr(args, "size", None) is not None:
        opts.size = tuple(args.size)
    for section, _cls, name in _option_fields():
        value = getattr(args, name, None)
        if value is not None:
            setattr(getattr(opts, section), name, tuple(value) if isinstance(value, list)
                    else value)
    opts.__post_init__()
    return opts


def describe(opts: TrainOptions) -> str:
    """A short human summary (for logs)."""
    stages = " -> ".join(f"{s} {opts.stage_size(s)[0]}x{opts.stage_size(s)[1]} "
                         f"({opts.stage_epochs(s):g} ep)" for s in opts.schedule.stages)
    window = "; in a person window" if opts.model.window == "on" else ""
    return f"preset {opts.preset}: {stages}; temporal {opts.temporal.temporal}{window}"
