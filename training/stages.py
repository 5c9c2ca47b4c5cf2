"""The networks of each training stage and how a stage starts from the one before.

* ``global``: G = global generator, D = body discriminator with ``num_D_global`` scales.
* ``local``: G = local enhancer whose global trunk is the trained global generator
  (``LocalEnhancer.from_global``); D gets ``num_D_local`` scales. As pix2pixHD's
  ``--load_pretrain``, D's scales that exist in the global stage's D are initialised from
  it: the global D's full-resolution scale (512x256) becomes the local D's second scale
  (which sees the 1024x512 input halved, i.e. 512x256), and so on.
* ``face``: G and D come from the previous stage and stay frozen; a face generator and a
  face discriminator are new. (The official code also freezes the body D for its first
  ``niter_fix_main`` = 10 face epochs, more than the 5 the paper trains.)
"""

from __future__ import annotations

from dataclasses import dataclass

from torch import nn

from backend.models.networks import (FaceGenerator, Generator, GlobalGenerator, LocalEnhancer,
                                     build_face_generator, build_generator)
from backend.commands.parsing import parse_size
from backend.target.prepared import PreparedRun
from backend.target.window import WindowSpec
from training.models.discriminators import (DiscriminatorConfig, MultiscaleDiscriminator,
                                            NLayerDiscriminator, build_discriminator,
                                            build_face_discriminator)

from .options import TrainOptions

# D sees (label, frame) pairs: two labels and two frames in the temporal modes.
LABEL_NC, IMAGE_NC = 3, 3


@dataclass
class StageNets:
    """The networks a stage uses; ``trainable`` names those its optimizers update."""

    generator: Generator
    discriminator: MultiscaleDiscriminator
    face_generator: FaceGenerator | None = None
    face_discriminator: NLayerDiscriminator | None = None

    def named(self) -> dict[str, nn.Module]:
        nets = {"G": self.generator, "D": self.discriminator}
        if self.face_generator is not None:
            nets["face_G"] = self.face_generator
        if self.face_discriminator is not None:
            nets["face_D"] = self.face_discriminator
        return nets


def discriminator_config(opts: TrainOptions, local: bool) -> DiscriminatorConfig:
    m = opts.model
    frames = 1 if opts.temporal.temporal == "none" else 2  # D judges pairs, or single frames
    return DiscriminatorConfig(input_nc=frames * (LABEL_NC + IMAGE_NC), ndf=m.ndf, n_layers=m.n_layers_D,
                               num_D=m.num_D_local if local else m.num_D_global, norm=m.norm)


def uses_local(opts: TrainOptions, stage: str) -> bool:
    """Whether ``stage``'s generator is a local enhancer."""
    return stage != "global" and "local" in opts.schedule.stages


def previous_stage(opts: TrainOptions, stage: str) -> str | None:
    stages = list(opts.schedule.stages)
    i = stages.index(stage)
    return stages[i - 1] if i else None


def face_multiple(opts: TrainOptions) -> int:
    """Face boxes are multiples of the face generator's size multiple."""
    return opts.model.face_generator().size_multiple


def fresh_nets(opts: TrainOptions, stage: str) -> StageNets:
    """The stage's networks freshly initialised (the caller seeds the RNG first)."""
    local = uses_local(opts, stage)
    nets = StageNets(build_generator(opts.model.generator(local)),
                     build_discriminator(discriminator_config(opts, local)))
    if stage == "face":
        m = opts.model
        nets.face_generator = build_face_generator(opts.model.face_generator())
        nets.face_discriminator = build_face_discriminator(2 * IMAGE_NC, m.face_ndf,
                                                           m.face_n_layers_D, norm="batch")
    return nets


def nets_from_previous(opts: TrainOptions, stage: str, previous: dict[str, dict]) -> StageNets:
    """``stage``'s networks initialised from the previous stage's final state dicts."""
    nets = fresh_nets(opts, stage)
    prev_stage = previous_stage(opts, stage)
    if stage == "local":
        old_g = build_generator(opts.model.generator(local=False))
        assert isinstance(old_g, GlobalGenerator)
        old_g.load_state_dict(previous["G"])
        nets.generator = LocalEnhancer.from_global(old_g, n_blocks_local=opts.model.n_blocks_local)
        _load_matching_scales(nets.discriminator, previous["D"])
    else:  # face: the previous stage's G and D unchanged
        assert prev_stage is not None
        nets.generator.load_state_dict(previous["G"])
        nets.discriminator.load_state_dict(previous["D"])
    return nets


def _load_matching_scales(disc: MultiscaleDiscriminator, old_state: dict) -> None:
    """Copy the old discriminator's scales into the new one's at the same resolution.

    Both list scales finest first; the new D sees twice the resolution, so old scale i
    (at resolution r / 2**i of the old input) matches new scale i + 1."""
    new_state = disc.state_dict()
    for key, value in old_state.items():
        parts = key.split(".")
        if parts[0] != "scales":
            continue
        parts[1] = str(int(parts[1]) + 1)
        new_key = ".".join(parts)
        if new_key in new_state and new_state[new_key].shape == value.shape:
            new_state[new_key] = value
    disc.load_state_dict(new_state)


def freeze(module: nn.Module) -> nn.Module:
    return module.requires_grad_(False)


def trainable_parameters(nets: StageNets, stage: str) -> tuple[list, list]:
    """(generator side, discriminator side) parameters that the stage's optimizers update."""
    if stage == "face":
        assert nets.face_generator is not None and nets.face_discriminator is not None
        return list(nets.face_generator.parameters()), list(nets.face_discriminator.parameters())
    return list(nets.generator.parameters()), list(nets.discriminator.parameters())


def generator_param_groups(nets: StageNets, stage: str) -> list[dict]:
    """Parameter groups of the generator optimizer; the local stage separates the global
    trunk so that ``fix_global_epochs`` can hold it still (pix2pixHD ``niter_fix_global``)."""
    if stage == "local" and isinstance(nets.generator, LocalEnhancer):
        return [{"params": list(nets.generator.global_trunk.parameters()), "name": "global_trunk"},
                {"params": list(nets.generator.branches.parameters()), "name": "local"}]
    params, _ = trainable_parameters(nets, stage)
    return [{"params": params, "name": "all"}]


def stage_window(opts: TrainOptions, stage: str, prepared: PreparedRun) -> WindowSpec | None:
    """The person window of ``stage``'s generator (None: it paints the whole canvas): from
    the target's training poses at the stage's size (``WindowSpec.for_target``), or the
    given ``window_size`` (at the final size) scaled to the stage's. ``opts`` has its
    window resolved ("on" or "off", see resolve.resolve_window)."""
    if opts.model.window != "on":
        return None
    size = opts.stage_size(stage)
    multiple = opts.model.generator(uses_local(opts, stage)).size_multiple
    spec = WindowSpec.for_target(prepared.track(), prepared.letterbox_at(size), multiple,
                                 opts.model.window_margin)
    if opts.model.window_size == "auto":
        return spec
    w, h = parse_size(opts.model.window_size)
    scale = size[1] / opts.size[1]
    fitted = tuple(max(multiple, min(round(v * scale / multiple) * multiple,
                                     limit // multiple * multiple))
                   for v, limit in ((w, size[0]), (h, size[1])))
    return WindowSpec(fitted, spec.margin, step=spec.step)  # type: ignore[arg-type]
