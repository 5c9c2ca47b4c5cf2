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

Each option is stated once, on its field (``option(default, help, range=...)``): its default,
a help line, and what a value may be. The command line's flags (``add_option_arguments``), the
check of each value (``TrainOptions.validate``, for flags and saved runs alike) and the
ranges (``option_fields``) are made from those fields; ``validate`` states by hand only the
rules that span fields.
``PRESETS`` holds the named configurations, each a function that sets fields of the defaults.
"""

from __future__ import annotations

import argparse
import copy
import math
from collections.abc import Callable
from dataclasses import MISSING, Field, asdict, dataclass, field, fields, replace
from typing import Any, ClassVar

from backend.checks import MAX_SIDE, THREADS, Float, Int, Number, Size
from backend.choices import LEGACY_PRECISIONS, PRECISIONS, parse_device
from backend.commands.parsing import parse_size
from backend.models.config import (NORMS, PAPER_FACE, PAPER_GLOBAL, PREVIOUS_INPUTS, RGB, RGBA,
                                   UPSAMPLES, FaceGeneratorConfig, GeneratorConfig)

STAGES = ("global", "local", "face")
TEMPORAL_MODES = ("paper", "chain", "noisy", "none")
PERCEPTUAL = ("vgg", "none")
MATTE_MODES = ("auto", "on", "off")
WINDOW_MODES = ("auto", "on", "off")
# pix2pix's L1 weight where no perceptual loss runs: on a studio clip (cpu-small, 256x128) it
# raised body SSIM 0.756 -> 0.777 and the face GAN no longer made the face worse.
L1_WITHOUT_PERCEPTUAL = 10.0


# --------------------------------------------------------------------------------------------
# An option, stated once
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Option:
    """What one option field is besides its type and default: a help line for its flag, and
    what a value may be (a number's range, a word's choices, a text's parser, a rule of its
    own). A tuple field's choices are those of each item."""

    help: str
    range: Number | None = None
    choices: tuple[str, ...] | None = None
    parse: Callable[[str], Any] | None = None  # argparse.ArgumentTypeError for a bad text
    check: Callable[[Any], None] | None = None  # ValueError for a value that breaks its rule
    metavar: str | None = None
    own_flag: str | None = None  # set by a flag of the command's own (``--no-progress``)


def option(default: Any, help: str, **how: Any) -> Any:
    """A dataclass field that is a training option (``Option``'s fields as keywords)."""
    return field(default=default, metadata={"option": Option(help, **how)})


# Ranges that several options share (backend/checks.py).
NETWORK_WIDTH = Int(1, 1024)
LOSS_WEIGHT = Float(0.0, 1e4)
STEPS = Int(1, 10**9)
EPOCHS = Float(0.0, 1e5, above=True)
DOWNSAMPLINGS = Int(1, 8)
BLOCKS = Int(0, 64)
D_LAYERS = Int(1, 8)
D_SCALES = Int(1, 8)
WINDOW_SIZE = Size(8, MAX_SIDE)


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


def _halvings(scale: float) -> None:
    if not math.log2(1 / scale).is_integer():
        raise ValueError(f"--vgg-scale must be 1, 1/2, 1/4, ..., got {scale}")


def _stages_in_order(stages: tuple[str, ...]) -> None:
    if not stages:
        raise ValueError(f"--stages must name one or more of {', '.join(STAGES)}")
    if list(stages) != [s for s in STAGES if s in stages]:
        raise ValueError(f"--stages must be in the order {' '.join(STAGES)}, got "
                         f"{' '.join(stages)}")
    if stages[0] != "global":
        raise ValueError("a run starts with the global stage (--stages global ...)")


# --------------------------------------------------------------------------------------------
# The options, by section
# --------------------------------------------------------------------------------------------


@dataclass
class ModelOptions:
    """Network widths and depths, and what G paints. The generators' defaults are the paper's
    configurations (backend/models/config.py), the discriminators' pix2pixHD's / EDN's."""

    title: ClassVar[str] = "networks"

    ngf: int = option(PAPER_GLOBAL.ngf, "filters in the first layer of the global generator; "
                      "the local enhancer's branch has half as many", range=NETWORK_WIDTH)
    n_downsample_global: int = option(
        PAPER_GLOBAL.n_downsample_global, "downsamplings in the global generator: the sides of "
        "the size it trains at must be multiples of 2 to this power", range=DOWNSAMPLINGS)
    n_blocks_global: int = option(PAPER_GLOBAL.n_blocks_global, "residual blocks at the global "
                                  "generator's lowest resolution", range=BLOCKS)
    n_blocks_local: int = option(PAPER_GLOBAL.n_blocks_local, "residual blocks in the local "
                                 "enhancer's branch", range=BLOCKS)
    ndf: int = option(64, "filters in the first layer of each discriminator scale",
                      range=NETWORK_WIDTH)
    n_layers_D: int = option(3, "strided convolutions in each discriminator scale",
                             range=D_LAYERS)
    num_D_global: int = option(2, "discriminator scales in the global stage, each at half the "
                               "resolution of the one before (pix2pixHD's --num_D)",
                               range=D_SCALES)
    num_D_local: int = option(3, "discriminator scales in the local stage (EDN's local stage "
                              "passes --num_D 3)", range=D_SCALES)
    face_ngf: int = option(PAPER_FACE.ngf, "filters in the first layer of the face generator",
                           range=NETWORK_WIDTH)
    face_n_downsampling: int = option(PAPER_FACE.n_downsampling, "downsamplings in the face "
                                      "generator", range=DOWNSAMPLINGS)
    face_n_blocks: int = option(PAPER_FACE.n_blocks, "residual blocks in the face generator",
                                range=BLOCKS)
    face_ndf: int = option(64, "filters in the first layer of the face discriminator",
                           range=NETWORK_WIDTH)
    face_n_layers_D: int = option(3, "strided convolutions in the face discriminator",
                                  range=D_LAYERS)
    norm: str = option(PAPER_GLOBAL.norm, "the generators' normalisation layers",
                       choices=NORMS)
    upsample: str = option(PAPER_GLOBAL.upsample, "how the generators double their size: "
                           "transposed convolutions (the paper's), or a resize then a "
                           "convolution, which leaves no checkerboard pattern",
                           choices=UPSAMPLES)
    matte: str = option("off", "on: G paints the person and an alpha matte over the target's "
                        "background plate; off: the whole frame (the paper's); auto: on where "
                        "the target's camera is static (decided and recorded when the run "
                        "starts)", choices=MATTE_MODES)
    previous_input: str = option(
        "minus_plate", "with a matte, what G sees of its previous frame: the frame minus the "
        "plate (the person alone), or the frame itself (as runs of earlier versions; see "
        "models/step.py)", choices=PREVIOUS_INPUTS)
    window: str = option("off", "on: G paints only a window that follows the person, over the "
                         "plate (needs the matte); off: the whole canvas (the paper's); auto: "
                         "on wherever the matte is (backend/target/window.py)",
                         choices=WINDOW_MODES)
    window_size: str = option("auto", "the person window's size, WxH at the final resolution; "
                              "auto: from the target's training poses (their 99th percentile, "
                              "with the margin), the same on every call of a run",
                              parse=window_size, metavar="WxH")
    window_margin: float = option(0.1, "the margin of the person window around the label's "
                                  "keypoints, as a fraction of the target's median body height",
                                  range=Float(0.0, 1.0))

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
    """Loss weights, and the perceptual loss's network."""

    title: ClassVar[str] = "losses"

    lambda_feat: float = option(10.0, "weight of the discriminator's feature-matching loss",
                                range=LOSS_WEIGHT)
    lambda_vgg: float = option(10.0, "weight of the VGG19 perceptual loss", range=LOSS_WEIGHT)
    perceptual: str = option("vgg", "the perceptual loss: vgg (the paper's; needs torchvision's "
                             "ImageNet VGG19 weights) or none (train without it)",
                             choices=PERCEPTUAL)
    vgg_weights: str | None = option(None, "a VGG19 weights file (.pth or .safetensors) for the "
                                     "perceptual loss (default: the cache, else a download)",
                                     metavar="PATH")
    # The official code halves the VGG term in the global stage (mean of the two frames) and
    # sums it in the local stage ("need 2x VGG for artifacts when training local").
    halve_vgg_in_global: bool = option(True, "true: in the global stage the VGG loss is the "
                                       "mean over the two frames of a sample, in the local "
                                       "stage their sum, as in the official code")
    face_vgg_weight: float = option(0.5, "weight of the VGG loss on each frame's face crop in "
                                    "the face stage, times --lambda-vgg (the official code's)",
                                    range=LOSS_WEIGHT)
    # The perceptual loss dominates the cost of a CPU step: at 1/2 it costs a quarter.
    vgg_scale: float = option(1.0, "VGG19 sees the images scaled by this: 1 (the paper's), 1/2, "
                              "1/4 ...; at 1/2 the perceptual loss costs a quarter",
                              range=Float(0.0, 1.0, above=True), check=_halvings)
    # Unset (None) it is chosen when training starts (``with_reconstruction``) and recorded:
    # without the VGG loss it kept a small GAN from drifting into noise and the face GAN from
    # making the face worse than none (training/README.md).
    lambda_l1: float | None = option(None, "weight of pix2pix's L1 loss between generated and "
                                     "real frames (and face crops) (default: 10 without a "
                                     "perceptual loss, 0 with VGG; the paper's 0, where the VGG "
                                     "loss plays that role)", range=LOSS_WEIGHT)
    lambda_matte: float = option(10.0, "with a matte: weight of the L1 loss that holds G's "
                                 "alpha to the person's mask and its colour layer to the real "
                                 "frame where the person is not (training/step.py)",
                                 range=LOSS_WEIGHT)
    # Not in the paper: its temporal discriminator alone judges the change, and at a small
    # budget G's noise differs from frame to frame, which shows as flicker.
    lambda_flicker: float = option(0.0, "weight of an L1 loss between the change of consecutive "
                                   "generated frames and that of the real ones, against flicker "
                                   "(not in the paper)", range=LOSS_WEIGHT)


@dataclass
class OptimOptions:
    """Adam, and pix2pixHD's learning-rate schedule (constant, then a linear decay to 0)."""

    title: ClassVar[str] = "optimiser"

    lr: float = option(2e-4, "Adam's learning rate for G and D, constant for "
                       "--constant-fraction of each stage, then decaying linearly to 0",
                       range=Float(0.0, 1.0, above=True))
    beta1: float = option(0.5, "Adam's beta1 (the decay of its gradient average) for G and D",
                          range=Float(0.0, 0.9999))
    beta2: float = option(0.999, "Adam's beta2 (the decay of its squared-gradient average) for "
                          "G and D", range=Float(0.0, 0.9999))
    constant_fraction: float = option(
        0.5, "the fraction of each stage's steps at the full learning rate before its linear "
        "decay to 0 (pix2pixHD: niter = niter_decay = 100 epochs, one half)",
        range=Float(0.0, 1.0))


@dataclass
class TemporalOptions:
    """How G learns to make frames that follow each other (its previous-frame input)."""

    title: ClassVar[str] = "temporal smoothing"

    temporal: str = option(
        "paper", "paper: G makes two consecutive frames, the second from its first, and D judges "
        "the pair; chain: --chain-length frames, each from G's previous one (closer to "
        "inference); noisy: the second frame from the real previous one plus noise; none: "
        "single frames, G's previous input zeros, D judging one frame (the paper's ablation)",
        choices=TEMPORAL_MODES)
    chain_length: int = option(3, "with --temporal chain: consecutive frames per sample",
                               range=Int(2, 64))
    noise_std: float = option(0.1, "with --temporal noisy: the standard deviation of the "
                              "Gaussian noise on the real previous frame (images in [-1, 1])",
                              range=Float(0.0, 10.0))


@dataclass
class ScheduleOptions:
    """Which stages the run trains and for how long (the paper's schedule by default)."""

    title: ClassVar[str] = "schedule"

    stages: tuple[str, ...] = option(
        ("global", "local", "face"), "the stages of this run, in order (recorded with it): "
        "global (at half the size when a local stage follows), local (the local enhancer at "
        "the full size), face (the face GAN)", choices=STAGES, check=_stages_in_order,
        metavar="STAGE")
    epochs_global: float = option(5.0, "epochs of the global stage (passes over the training "
                                  "frames)", range=EPOCHS)
    epochs_local: float = option(30.0, "epochs of the local stage", range=EPOCHS)
    epochs_face: float = option(5.0, "epochs of the face stage", range=EPOCHS)
    fix_global_epochs: float = option(
        0.0, "epochs at the start of the local stage that train only the local branch, the "
        "global generator held still (pix2pixHD's --niter_fix_global; 0 in EDN's commands)",
        range=Float(0.0, 1e5))


@dataclass
class RuntimeOptions:
    """Engineering: batching, checkpoints, logging, precision; none of it changes the method."""

    title: ClassVar[str] = "runtime"

    batch_size: int = option(1, "samples per step in each process",
                             range=Int(1, 4096))
    workers: int = option(2, "processes that load and augment the training samples beside the "
                          "training (0: the training process itself)", range=Int(0, 256))
    seed: int = option(0, "seed of the networks' initial weights, the order of the samples and "
                       "the noise", range=Int(0, 2**32 - 1))
    checkpoint_every: int = option(1000, "steps between checkpoints (each with a held-out "
                                   "evaluation)", range=STEPS)
    keep_checkpoints: int = option(2, "checkpoints kept per stage, the newest ones",
                                   range=Int(1, 10**6))
    log_every: int = option(20, "steps between TensorBoard scalars and status.json updates",
                            range=STEPS)
    image_every: int = option(500, "steps between TensorBoard image grids", range=STEPS)
    eval_frames: int = option(8, "held-out frames generated at each checkpoint, for the error "
                              "and the preview", range=Int(0, 10**5))
    precision: str = option("auto", "the arithmetic: auto is the machine's fastest, bf16 "
                            "autocast where the GPU supports it (else fp16 with a gradient "
                            "scaler) and on CPUs that compute bf16 natively, else fp32 "
                            "(backend/runtime.py, the rule transfer uses too); the run records "
                            "the precision used and a resume keeps it", choices=PRECISIONS)
    channels_last: bool = option(True, "true: convolutions in the channels-last memory layout, "
                                 "faster on CUDA (ignored elsewhere)")
    device: str = option("auto", "where training runs: auto, cpu, mps, cuda or cuda:N (a GPU by "
                         "number)", parse=parse_device, metavar="DEVICE")
    threads: int = option(0, "CPU threads per operation (0: chosen for the cores and the frame "
                          "size)", range=THREADS)
    tensorboard: bool = option(True, "true: write TensorBoard logs to RUN_DIR/tensorboard")
    progress: bool = option(True, "a progress bar on stderr", own_flag="--no-progress")


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
        """Raise ValueError for a configuration that cannot train: each value against its
        field's statement (a saved run's too), then the rules that span fields."""
        for section, f, spec in option_fields():
            _check_value(f, spec, getattr(getattr(self, section), f.name))
        if self.model.window == "on" and self.model.matte == "off":
            raise ValueError("a person window needs the matte (--matte on or auto)")
        stages = self.schedule.stages
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
        Options of earlier versions are read in today's words (``RENAMED``, ``runtime.amp``)."""
        opts = TrainOptions()
        if "previous_input" not in data.get("model", {}):
            opts.model.previous_input = "frame"  # runs of earlier versions
        for key, value in data.items():
            if key in _SECTIONS:
                section = getattr(opts, key)
                for name, item in _todays_words(key, value).items():
                    if not hasattr(section, name):
                        raise ValueError(f"unknown option {key}.{name}")
                    setattr(section, name, tuple(item) if isinstance(item, list) else item)
            elif key in ("preset", "size"):
                setattr(opts, key, value)
            else:
                raise ValueError(f"unknown option {key}")
        opts.__post_init__()
        return opts


# The sections of options, by name: TrainOptions' fields that hold one.
_SECTIONS: dict[str, type] = {f.name: f.default_factory for f in fields(TrainOptions)
                              if f.default_factory is not MISSING}
# Options renamed since, as (section, old name) -> today's name, for saved runs.
RENAMED = {("runtime", "num_workers"): "workers"}


def _todays_words(section: str, saved: dict[str, Any]) -> dict[str, Any]:
    """A section of a saved run's options with the names and values of earlier versions in
    today's: ``RENAMED``, and training's ``--amp off`` as a precision."""
    out = {RENAMED.get((section, name), name): value for name, value in saved.items()}
    if section == "runtime" and "amp" in out:
        amp = out.pop("amp")
        out["precision"] = LEGACY_PRECISIONS.get(amp, amp)
    return out


def _round_size(size: tuple[int, int], multiple: int) -> str:
    """``size`` rounded to the nearest multiples of ``multiple`` (at least one)."""
    w, h = (max(multiple, round(side / multiple) * multiple) for side in size)
    return f"{w}x{h}"


# --------------------------------------------------------------------------------------------
# Presets: each a function that sets fields of the defaults
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
    opts.runtime.workers = 1
    return opts


def _cpu_medium() -> TrainOptions:
    """512x256 for the compute of a laptop CPU: cpu-small's networks painting only a window
    that follows the person, over the plate (where the camera is static; else the whole
    frame at cpu-small's cost x 4, with a note). Measured in training/README.md."""
    opts = _cpu_small()
    opts.preset, opts.size = "cpu-medium", (512, 256)
    opts.model.window = "auto"
    # cpu-small's epochs: a window step costs about 1.8x a cpu-small step, so the run takes
    # 1.5-2x cpu-small's time (training/README.md), the budget it is given
    opts.schedule = ScheduleOptions(stages=("global", "face"), epochs_global=4.0,
                                    epochs_face=1.0)
    return opts


def _cpu_large() -> TrainOptions:
    """1024x512, the paper's output, for the compute of a laptop CPU: the paper's
    coarse-to-fine with cpu-small's networks in the person window over the plate: the global
    G at 512x256, then pix2pixHD's local enhancer (initialised from it) at 1024x512, then the
    face GAN at 1024x512, where the face box is 128 px. Where the camera moves, the whole frame
    at that cost x 2-4, with a note. Measured in training/README.md."""
    opts = _cpu_medium()
    opts.preset, opts.size = "cpu-large", (1024, 512)
    # Most of the learning at 512x256, where a step costs a quarter of a 1024x512 one (the
    # paper's own coarse-to-fine): within 3x cpu-small's time (training/README.md)
    opts.schedule = ScheduleOptions(stages=("global", "local", "face"), epochs_global=3.0,
                                    epochs_local=1.0, epochs_face=0.5)
    return opts


def _tiny() -> TrainOptions:
    """For tests: 64x32 (the global stage at 32x16), ngf 8, 2 residual blocks, all stages."""
    opts = TrainOptions(preset="tiny", size=(64, 32))
    opts.model = ModelOptions(ngf=8, n_downsample_global=2, n_blocks_global=2, n_blocks_local=1,
                              ndf=8, n_layers_D=2, face_ngf=8, face_n_downsampling=1,
                              face_n_blocks=1, face_ndf=8, face_n_layers_D=2)
    opts.schedule = ScheduleOptions(stages=("global", "local", "face"), epochs_global=2.0,
                                    epochs_local=1.0, epochs_face=1.0)
    opts.runtime.workers = 0
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
    "cpu-large": _cpu_large,
    "tiny": _tiny,
}


def preset(name: str) -> TrainOptions:
    """A fresh copy of the named preset."""
    if name not in PRESETS:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}")
    return PRESETS[name]()




# --------------------------------------------------------------------------------------------
# What the fields' statements make: each value's check, the flags, the ranges
# --------------------------------------------------------------------------------------------


def flag(name: str) -> str:
    """An option's flag: ``lambda_l1`` -> ``--lambda-l1`` (names are unique across sections)."""
    return "--" + name.replace("_", "-")


def option_fields() -> list[tuple[str, Field, Option]]:
    """(section, field, its statement) for every option, in the order of the sections."""
    return [(section, f, f.metadata["option"]) for section, cls in _SECTIONS.items()
            for f in fields(cls)]


def _kind(f: Field, spec: Option) -> type:
    """What an option's value is: int, float, bool, str, or tuple (of words)."""
    if spec.range is not None:
        return spec.range.kind
    return type(f.default) if isinstance(f.default, (bool, tuple)) else str


def _check_value(f: Field, spec: Option, value: Any) -> None:
    """`ValueError` "--FLAG must be ..., got VALUE" for a value its field does not allow."""
    name, kind = flag(f.name), _kind(f, spec)
    if value is None and f.default is None:  # left to the run (lambda_l1) or to the cache
        return
    if spec.range is not None:
        spec.range.check(value, name)
    elif kind is tuple:
        if not isinstance(value, tuple) or any(item not in spec.choices for item in value):
            raise ValueError(f"{name} must be one or more of {', '.join(spec.choices)}, "
                             f"got {value!r}")
    elif not isinstance(value, kind) or (spec.choices and value not in spec.choices):
        allowed = ("true or false" if kind is bool else f"one of {', '.join(spec.choices)}"
                   if spec.choices else "a text")
        raise ValueError(f"{name} must be {allowed}, got {value!r}")
    if spec.parse is not None:
        try:
            spec.parse(value)
        except argparse.ArgumentTypeError as exc:
            raise ValueError(f"{name} {exc}") from None
    if spec.check is not None:
        spec.check(value)


# What each numeric option may be, by field name (made from the fields).


def _bool(text: str) -> bool:
    if text.lower() in ("1", "true", "yes", "on"):
        return True
    if text.lower() in ("0", "false", "no", "off"):
        return False
    raise argparse.ArgumentTypeError(f"expected true/false, got {text!r}")


def _argument(f: Field, spec: Option) -> dict[str, Any]:
    """``add_argument``'s keywords for an option: how its flag parses and shows a value."""
    kind = _kind(f, spec)
    if kind is tuple:
        return {"nargs": "+", "choices": spec.choices, "metavar": spec.metavar}
    if kind is bool:
        return {"type": _bool, "metavar": "true|false"}
    if spec.range is not None:
        return {"type": spec.range.parse, "metavar": spec.metavar or ("N" if kind is int else "X")}
    if spec.choices is not None:
        return {"choices": spec.choices}
    return {"type": spec.parse or str, "metavar": spec.metavar}


def _shown(value: Any) -> str:
    """A value as a flag takes it: 0.0002, true, global local face, 1024x512."""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return "x".join(map(str, value)) if isinstance(value[0], int) else " ".join(value)
    return str(value)


def _help(text: str, value_of: Callable[[TrainOptions], Any]) -> str:
    """An option's help line: what it does, then its default and each preset's other value."""
    default = value_of(TrainOptions())
    others: dict[str, list[str]] = {}
    for name, make in PRESETS.items():
        value = value_of(make())
        if value != default:
            others.setdefault(_shown(value), []).append(name)
    notes = [] if default is None else [f"default {_shown(default)}"]
    notes += [f"{', '.join(names)}: {value}" for value, names in others.items()]
    line = f"{text} ({'; '.join(notes)})" if notes else text
    return line.replace("%", "%%")  # argparse formats help with %


def add_option_arguments(parser: argparse.ArgumentParser) -> None:
    """``--size`` and one flag per option, a group per section. A flag's default is None:
    only the options given change the preset's (or a resumed run's) values."""
    for section, cls in _SECTIONS.items():
        group = parser.add_argument_group(cls.title, " ".join(cls.__doc__.split()))
        if section == "model":
            group.add_argument("--size", type=parse_size, default=None, metavar="WxH",
                               help=_help("the final training resolution; the global stage "
                                          "runs at half of it when a local stage follows",
                                          lambda opts: opts.size))
        for f in fields(cls):
            spec = f.metadata["option"]
            if spec.own_flag is None:
                group.add_argument(flag(f.name), default=None, **_argument(f, spec), help=_help(
                    spec.help, lambda opts: getattr(getattr(opts, section), f.name)))


def apply_overrides(opts: TrainOptions, args: argparse.Namespace) -> TrainOptions:
    """A copy of ``opts`` with every option given on the command line applied."""
    opts = copy.deepcopy(opts)
    if getattr(args, "size", None) is not None:
        opts.size = tuple(args.size)
    for section, f, _spec in option_fields():
        value = getattr(args, f.name, None)
        if value is not None:
            setattr(getattr(opts, section), f.name, tuple(value) if isinstance(value, list)
                    else value)
    opts.__post_init__()
    return opts


def describe(opts: TrainOptions) -> str:
    """A short human summary (for logs)."""
    stages = " -> ".join(f"{s} {opts.stage_size(s)[0]}x{opts.stage_size(s)[1]} "
                         f"({opts.stage_epochs(s):g} ep)" for s in opts.schedule.stages)
    window = "; in a person window" if opts.model.window == "on" else ""
    return f"preset {opts.preset}: {stages}; temporal {opts.temporal.temporal}{window}"
