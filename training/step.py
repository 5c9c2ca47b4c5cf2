"""One training iteration: temporal generation, the discriminator update, the generator update.

The paper's temporal scheme (official ``pix2pixHD_model_fullts.forward``)::

    I_0 = G(x_0, 0)                 # (+ face residual in the face stage)
    I_1 = G(x_1, I_0)               # not detached: G learns from both frames
    loss_D = 0.5 * (gan(D(x_0, x_1, I_0, I_1), fake) + gan(D(x_0, x_1, y_0, y_1), real))
    loss_G = gan(D(x_0, x_1, I_0, I_1), real) + 10 * FM + 10 * VGG (+ face terms)

Both updates use the same forward pass, as in the official loop (G's loss is computed with
D's parameters before D's step). ``chain`` mode extends the pair to ``chain_length``
frames (D judges every consecutive pair); ``noisy`` conditions the second frame on the
real previous frame plus noise; ``none`` (the ablation without temporal smoothing) makes
single frames from zeros and D judges each (label, frame) alone.

Distributed training wraps G (with the face generator) and each trained discriminator in
DistributedDataParallel; every forward through a wrapped module is followed by its own
backward (DDP averages the gradients there), and G's loss goes through the *unwrapped*
discriminator with its parameters frozen, so no gradient of D is reduced for nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel as DDP

from backend.models.networks import crop_box
from backend.models.step import generate_frame
from backend.runtime import Runtime
from training.models.discriminators import frame_pair, temporal_pair
from training.models.losses import GANLoss, VGGLoss, feature_matching_loss

from .options import TrainOptions
from .stages import StageNets

Boxes = list[tuple[int, int, int, int]]  # one box per sample of the batch
VGG_MIN_SIZE = 16


class Generation(nn.Module):
    """G (and the face generator) over consecutive frames; what DDP wraps for the generator.

    ``forward(labels, boxes, conditions)`` takes per frame: the label batch, the face boxes
    (needed with a face generator) and optionally the previous-frame input to use instead of
    the previous output (``None``: the previous output; zeros for the first frame). Without
    ``temporal`` every frame is conditioned on zeros (plain pix2pixHD)."""

    def __init__(self, generator: nn.Module, face_generator: nn.Module | None = None,
                 temporal: bool = True) -> None:
        super().__init__()
        self.generator = generator
        self.face_generator = face_generator
        self.temporal = temporal

    def frame(self, label: Tensor, previous: Tensor | None, boxes: Boxes | None
              ) -> tuple[Tensor, Tensor | None]:
        """One frame, as transfer draws it (``backend.models.step``): (output, face
        residual or None); ``previous`` None means zeros."""
        return generate_frame(self.generator, self.face_generator, label, previous, boxes)

    def forward(self, labels: Sequence[Tensor], boxes: Sequence[Boxes] | None = None,
                conditions: Sequence[Tensor | None] | None = None) -> list[Tensor]:
        outputs: list[Tensor] = []
        for k, label in enumerate(labels):
            given = conditions[k] if conditions is not None else None
            if given is not None:
                previous = given
            elif k == 0 or not self.temporal:
                previous = None  # zeros
            else:
                previous = outputs[-1]
            out, _ = self.frame(label, previous, boxes[k] if boxes is not None else None)
            outputs.append(out)
        return outputs


@dataclass
class Optimizers:
    generator: torch.optim.Optimizer
    discriminator: torch.optim.Optimizer
    scaler: torch.amp.GradScaler


def _pairs(labels: Sequence[Tensor], frames: Sequence[Tensor], temporal: bool = True) -> Tensor:
    """D's 12-channel input (x_{t-1}, x_t, y_{t-1}, y_t) for every consecutive pair, stacked
    along the batch (instance norm is per sample, so this equals separate passes); without
    ``temporal``, the 6-channel (x_t, y_t) of every frame."""
    if not temporal:
        return torch.cat([frame_pair(x, y) for x, y in zip(labels, frames)], dim=0)
    return torch.cat([temporal_pair(labels[k - 1], labels[k], frames[k - 1], frames[k])
                      for k in range(1, len(labels))], dim=0)


def _detach_features(output: list[list[Tensor]]) -> list[list[Tensor]]:
    return [[f.detach() for f in scale] for scale in output]


class TrainStep:
    """Runs updates of one stage's networks (see the module docstring)."""

    def __init__(self, nets: StageNets, stage: str, opts: TrainOptions, runtime: Runtime,
                 optimizers: Optimizers, vgg: VGGLoss | None, local_generator: bool) -> None:
        self.nets, self.stage, self.opts, self.rt = nets, stage, opts, runtime
        self.opt = optimizers
        self.vgg = vgg
        self.face = stage == "face"
        self.gan = GANLoss()
        # The official code halves the VGG term for a global generator (a mean over the two
        # frames) and sums it for the local enhancer.
        self.vgg_frame_factor = 1.0 if (local_generator or not opts.loss.halve_vgg_in_global) else 0.5
        self.temporal = opts.temporal.temporal != "none"
        self.generation = Generation(nets.generator, nets.face_generator if self.face else None,
                                     self.temporal)
        self.gen_runner: nn.Module = self._wrap(self.generation)
        self.d_runner: nn.Module | None = None if self.face else self._wrap(nets.discriminator)
        self.face_d_runner: nn.Module | None = (self._wrap(nets.face_discriminator)
                                                if self.face else None)

    def _wrap(self, module: nn.Module | None) -> nn.Module:
        assert module is not None
        if not self.rt.distributed:
            return module
        ids = [self.rt.device.index] if self.rt.device.type == "cuda" else None
        return DDP(module, device_ids=ids)

    # -- pieces ------------------------------------------------------------------------------

    def conditions(self, images: Sequence[Tensor], step: int) -> list[Tensor | None] | None:
        """Previous-frame inputs that replace G's own output (``noisy`` mode only)."""
        if self.opts.temporal.temporal != "noisy":
            return None
        # Noise from (seed, rank, step) alone: a resumed or re-run step draws the same noise.
        gen = torch.Generator(device=self.rt.device)
        gen.manual_seed((self.opts.runtime.seed * 1_000_003 + self.rt.rank) * 1_000_003 + step)
        noisy = images[0] + self.opts.temporal.noise_std * torch.randn(
            images[0].shape, generator=gen, device=self.rt.device, dtype=images[0].dtype)
        return [None, noisy.clamp(-1, 1)] + [None] * (len(images) - 2)

    def _vgg(self, fake: Tensor, real: Tensor) -> Tensor:
        """The perceptual loss, on images scaled by ``vgg_scale`` (average pooling) and at
        least VGG19's smallest input (16 px: four poolings before relu5_1), so the small
        face crops of small presets still work."""
        assert self.vgg is not None
        factor = round(1 / self.opts.loss.vgg_scale)
        if factor > 1 and min(fake.shape[-2:]) // factor >= VGG_MIN_SIZE:
            fake, real = F.avg_pool2d(fake, factor), F.avg_pool2d(real, factor)
        if min(fake.shape[-2:]) < VGG_MIN_SIZE:
            scale = VGG_MIN_SIZE / min(fake.shape[-2:])
            fake = F.interpolate(fake, scale_factor=scale, mode="bilinear", align_corners=False)
            real = F.interpolate(real, scale_factor=scale, mode="bilinear", align_corners=False)
        return self.vgg(fake, real)

    # -- the update --------------------------------------------------------------------------

    def __call__(self, labels: list[Tensor], images: list[Tensor], boxes: list[Boxes],
                 step: int) -> dict[str, Tensor]:
        """One update from a batch of ``L`` consecutive frames. Returns detached losses."""
        opts, rt = self.opts, self.rt
        n_frames = len(labels)
        self.opt.generator.zero_grad(set_to_none=True)
        self.opt.discriminator.zero_grad(set_to_none=True)
        scaler = self.opt.scaler
        losses: dict[str, Tensor] = {}

        with rt.autocast():
            fakes = self.gen_runner(labels, boxes if self.face else None,
                                    self.conditions(images, step))
        fake_pairs = _pairs(labels, fakes, self.temporal)
        real_pairs = _pairs(labels, images, self.temporal)

        # --- discriminator update (gradients only; stepped after G's loss is computed) ---
        if not self.face:
            assert self.d_runner is not None
            with rt.autocast():
                loss_fake = self.gan(self.d_runner(fake_pairs.detach()), False)
            scaler.scale(0.5 * loss_fake).backward()
            with rt.autocast():
                pred_real = self.d_runner(real_pairs)
                loss_real = self.gan(pred_real, True)
            scaler.scale(0.5 * loss_real).backward()
            losses["D_fake"], losses["D_real"] = loss_fake.detach(), loss_real.detach()
            pred_real = _detach_features(pred_real)
        else:
            with torch.no_grad(), rt.autocast():  # the body D is frozen in the face stage
                pred_real = self.nets.discriminator(real_pairs)
            face_label = [crop_box(x, b) for x, b in zip(labels, boxes)]
            face_fake = [crop_box(y, b) for y, b in zip(fakes, boxes)]
            face_real = [crop_box(y, b) for y, b in zip(images, boxes)]
            self._face_discriminator_backward(face_label, face_fake, face_real, losses)

        # --- generator loss, with the discriminators' parameters held still ---
        discriminators = [self.nets.face_discriminator] if self.face else [self.nets.discriminator]
        for d in discriminators:
            d.requires_grad_(False)
        try:
            with rt.autocast():
                pred_fake = self.nets.discriminator(fake_pairs)
                g_gan = self.gan(pred_fake, True)
                g_feat = feature_matching_loss(pred_real, pred_fake) * opts.loss.lambda_feat
                total = g_gan + g_feat
                losses["G_GAN"], losses["G_feat"] = g_gan.detach(), g_feat.detach()
                if opts.loss.lambda_l1 > 0:
                    g_l1 = torch.stack([(f.float() - y.float()).abs().mean()
                                        for f, y in zip(fakes, images)]).mean() * opts.loss.lambda_l1
                    total = total + g_l1
                    losses["G_L1"] = g_l1.detach()
                if self.vgg is not None:
                    # mean over the frames x 2 = the official sum of the pair's two terms
                    g_vgg = sum(self._vgg(f, y) for f, y in zip(fakes, images)) * (
                        2.0 / n_frames) * self.vgg_frame_factor * opts.loss.lambda_vgg
                    total = total + g_vgg
                    losses["G_VGG"] = g_vgg.detach()
                if self.face:
                    total = total + self._face_generator_loss(face_label, face_fake, face_real,
                                                              losses)
            scaler.scale(total).backward()
        finally:
            for d in discriminators:
                d.requires_grad_(True)
        losses["G_total"] = total.detach()
        with torch.no_grad():
            losses["L1"] = torch.stack([(f.float() - y.float()).abs().mean()
                                        for f, y in zip(fakes, images)]).mean()

        scaler.step(self.opt.generator)
        scaler.step(self.opt.discriminator)
        scaler.update()
        return losses

    # -- the face stage ----------------------------------------------------------------------

    def _face_discriminator_backward(self, face_label: list[Tensor], face_fake: list[Tensor],
                                     face_real: list[Tensor], losses: dict[str, Tensor]) -> None:
        """Face D on (label crop, face crop), one pass per frame as the official code (its
        batch norm sees each frame alone); 0.5 x the mean over frames of fake and real."""
        assert self.face_d_runner is not None
        n = len(face_label)
        fake_total = real_total = 0.0
        for x, f, y in zip(face_label, face_fake, face_real):
            with self.rt.autocast():
                loss_fake = self.gan(self.face_d_runner(frame_pair(x, f.detach())), False) / n
            self.opt.scaler.scale(0.5 * loss_fake).backward()
            with self.rt.autocast():
                loss_real = self.gan(self.face_d_runner(frame_pair(x, y)), True) / n
            self.opt.scaler.scale(0.5 * loss_real).backward()
            fake_total = fake_total + loss_fake.detach()
            real_total = real_total + loss_real.detach()
        losses["D_fake_face"], losses["D_real_face"] = fake_total, real_total  # type: ignore

    def _face_generator_loss(self, face_label: list[Tensor], face_fake: list[Tensor],
                             face_real: list[Tensor], losses: dict[str, Tensor]) -> Tensor:
        """Face GAN (mean over frames) + the VGG loss on the face crops (0.5 per frame)."""
        assert self.nets.face_discriminator is not None
        n = len(face_label)
        gan = sum(self.gan(self.nets.face_discriminator(frame_pair(x, f)), True)
                  for x, f in zip(face_label, face_fake)) / n
        losses["G_GAN_face"] = gan.detach()
        total = gan
        if self.vgg is not None:
            vgg = sum(self._vgg(f, y) for f, y in zip(face_fake, face_real)) * (
                2.0 / n) * self.opts.loss.face_vgg_weight * self.opts.loss.lambda_vgg
            losses["G_VGG_face"] = vgg.detach()
            total = total + vgg
        return total


@torch.no_grad()
def generate_video(generation: Generation, labels: Sequence[Tensor],
                   boxes: Sequence[Boxes] | None = None) -> list[Tensor]:
    """Frames as at inference: each conditioned on the previous output, the first on zeros."""
    return generation(list(labels), boxes)
