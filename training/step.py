"""One training iteration: temporal generation, the discriminator update, the generator update.

The paper's temporal scheme (official ``pix2pixHD_model_fullts.forward``)::

    I_0 = G(x_0, 0)                 # (+ face residual in the face stage)
    I_1 = G(x_1, I_0)               # not detached: G learns from both frames
    loss_D = 0.5 * (gan(D(x_0, x_1, I_0, I_1), fake) + gan(D(x_0, x_1, y_0, y_1), real))
    loss_G = gan(D(x_0, x_1, I_0, I_1), real) + 10 * FM + 10 * VGG (+ face terms)

Both updates use the same forward pass, as in the official loop (G's loss is computed with
D's parameters before D's step). A generator with a matte paints the person and an alpha,
composited over the target's plate (backend/models/step.py): every loss judges the
composite, against the real frame where the person is and the plate elsewhere (see
data/dataset.py), and ``lambda_matte`` x (|alpha - the person's mask| + |colour - the plate|
where the person is not) makes alpha mean "person" and keeps the colour layer clean
(`_matte_loss`).
``lambda_flicker`` (not in the paper) x |change of the generated frames - change of the real
ones| asks consecutive frames to differ only as the real ones do. ``chain`` mode extends the
pair to ``chain_length`` frames (D judges every consecutive pair); ``noisy`` conditions the second frame on the
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
from backend.models.step import Backdrop, generate_frame
from backend.runtime import Runtime
from backend.target.window import Windows
from training.models.discriminators import frame_pair, temporal_pair
from training.models.losses import GANLoss, VGGLoss, feature_matching_loss

from .options import TrainOptions
from .stages import StageNets

Boxes = list[tuple[int, int, int, int]]  # one box per sample of the batch
VGG_MIN_SIZE = 16


@dataclass
class Batch:
    """``L`` consecutive frames of N samples, each a list of L tensors N x C x H x W: labels
    and real images in [-1, 1], face boxes (one per sample), and for a generator with a
    matte the person's masks (N x 1 x H x W in [0, 1]) and the background plate; for a
    generator with a person window, each frame's windows (one region per sample)."""

    labels: list[Tensor]
    images: list[Tensor]
    boxes: list[Boxes]
    masks: list[Tensor] | None = None
    plate: Tensor | None = None
    windows: list[Windows] | None = None

    def view(self) -> "Batch":
        """What the body's losses and discriminator judge: every frame cut at the window of
        the sample's last frame (the same region for the whole run of frames, so that D
        sees their change where it happened); the batch itself without a window."""
        if self.windows is None:
            return self
        cut = self.windows[-1].cut
        return Batch([cut(x) for x in self.labels], [cut(y) for y in self.images], self.boxes,
                     None if self.masks is None else [cut(m) for m in self.masks])


class Generation(nn.Module):
    """G (and the face generator) over consecutive frames; what DDP wraps for the generator.

    ``forward(labels, boxes, conditions, plate, windows)`` takes per frame: the label batch,
    the face boxes (needed with a face generator), optionally the previous-frame input to use
    instead of the previous output (``None``: the previous output; zeros for the first
    frame), the plate for a generator with a matte, and the windows of a generator with a
    person window. It returns the frames and (with a matte) the person layers for the matte
    loss: N x 4 x H x W, the unclamped alpha and the colour, all at the canvas' size. Without
    ``temporal`` every frame is conditioned on zeros (plain pix2pixHD)."""

    def __init__(self, generator: nn.Module, face_generator: nn.Module | None = None,
                 temporal: bool = True) -> None:
        super().__init__()
        self.generator = generator
        self.face_generator = face_generator
        self.temporal = temporal
        self.minus_plate = generator.config.previous_input == "minus_plate"

    def forward(self, labels: Sequence[Tensor], boxes: Sequence[Boxes] | None = None,
                conditions: Sequence[Tensor | None] | None = None,
                plate: Tensor | None = None,
                windows: Sequence[Windows] | None = None) -> tuple[list[Tensor], list[Tensor]]:
        frames: list[Tensor] = []
        layers: list[Tensor] = []
        for k, label in enumerate(labels):
            given = conditions[k] if conditions is not None else None
            if given is not None:
                previous = given
            elif k == 0 or not self.temporal:
                previous = None  # zeros
            else:
                previous = frames[-1]
            backdrop = Backdrop(plate, self.minus_plate,
                                None if windows is None else windows[k])
            drawn = generate_frame(self.generator, self.face_generator, label, previous,
                                   boxes[k] if boxes is not None else None, backdrop=backdrop)
            frames.append(drawn.frame)
            if drawn.soft_alpha is not None:  # for the matte loss (see soft_matte)
                layers.append(torch.cat([drawn.soft_alpha, drawn.person], 1))
        return frames, layers


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
        # (options left to the run, such as lambda_l1, are chosen as the trainer chooses them)
        self.nets, self.stage, self.opts, self.rt = nets, stage, opts.with_reconstruction(), runtime
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

    def __call__(self, batch: Batch, step: int) -> dict[str, Tensor]:
        """One update from a batch of ``L`` consecutive frames. Returns detached losses."""
        rt, scaler = self.rt, self.opt.scaler
        self.opt.generator.zero_grad(set_to_none=True)
        self.opt.discriminator.zero_grad(set_to_none=True)
        losses: dict[str, Tensor] = {}
        with rt.autocast():
            fakes, layers = self.gen_runner(batch.labels, batch.boxes if self.face else None,
                                            self.conditions(batch.images, step), batch.plate,
                                            batch.windows)
        crops = FaceCrops.of(batch, fakes) if self.face else None  # from the whole canvas
        if batch.windows is not None:  # the body's losses judge the person's window
            cut = batch.windows[-1].cut
            fakes, layers, batch = [cut(f) for f in fakes], [cut(x) for x in layers], batch.view()
        fake_pairs = _pairs(batch.labels, fakes, self.temporal)
        real_pairs = _pairs(batch.labels, batch.images, self.temporal)
        # D's gradients now (stepped after G's loss is computed, with D's parameters of now)
        if crops is not None:
            with torch.no_grad(), rt.autocast():  # the body D is frozen in the face stage
                pred_real = self.nets.discriminator(real_pairs)
            self._face_discriminator_backward(crops, losses)
        else:
            pred_real = self._discriminator_backward(fake_pairs, real_pairs, losses)
        # G's loss, with the discriminators' parameters held still
        discriminators = [self.nets.face_discriminator] if self.face else [self.nets.discriminator]
        for d in discriminators:
            d.requires_grad_(False)
        try:
            with rt.autocast():
                total = self._generator_loss(batch, fakes, layers, pred_real, fake_pairs, losses)
                if crops is not None:
                    total = total + self._face_generator_loss(crops, losses)
            scaler.scale(total).backward()
        finally:
            for d in discriminators:
                d.requires_grad_(True)
        losses["G_total"] = total.detach()
        with torch.no_grad():
            losses["L1"] = _l1(fakes, batch.images)
        scaler.step(self.opt.generator)
        scaler.step(self.opt.discriminator)
        scaler.update()
        return losses

    def _discriminator_backward(self, fake_pairs: Tensor, real_pairs: Tensor,
                                losses: dict[str, Tensor]) -> list[list[Tensor]]:
        """The body D's LSGAN gradients (0.5 x fake + 0.5 x real); its real features."""
        assert self.d_runner is not None
        scaler = self.opt.scaler
        with self.rt.autocast():
            loss_fake = self.gan(self.d_runner(fake_pairs.detach()), False)
        scaler.scale(0.5 * loss_fake).backward()
        with self.rt.autocast():
            pred_real = self.d_runner(real_pairs)
            loss_real = self.gan(pred_real, True)
        scaler.scale(0.5 * loss_real).backward()
        losses["D_fake"], losses["D_real"] = loss_fake.detach(), loss_real.detach()
        return _detach_features(pred_real)

    def _generator_loss(self, batch: Batch, fakes: list[Tensor], layers: list[Tensor],
                        pred_real: list[list[Tensor]], fake_pairs: Tensor,
                        losses: dict[str, Tensor]) -> Tensor:
        """GAN + feature matching (+ L1, VGG, the matte's) on the frames, as the paper."""
        loss = self.opts.loss
        pred_fake = self.nets.discriminator(fake_pairs)
        g_gan = self.gan(pred_fake, True)
        g_feat = feature_matching_loss(pred_real, pred_fake) * loss.lambda_feat
        losses["G_GAN"], losses["G_feat"] = g_gan.detach(), g_feat.detach()
        terms = [g_gan, g_feat]
        if loss.lambda_l1 > 0:
            terms.append(self._term("G_L1", _l1(fakes, batch.images) * loss.lambda_l1, losses))
        if self.vgg is not None:
            # mean over the frames x 2 = the official sum of the pair's two terms
            g_vgg = sum(self._vgg(f, y) for f, y in zip(fakes, batch.images)) * (
                2.0 / len(fakes)) * self.vgg_frame_factor * loss.lambda_vgg
            terms.append(self._term("G_VGG", g_vgg, losses))
        if loss.lambda_flicker > 0 and len(fakes) > 1:
            terms.append(self._term("G_flicker", _flicker(fakes, batch.images)
                                    * loss.lambda_flicker, losses))
        if layers and batch.masks is not None and not self.face and loss.lambda_matte > 0:
            terms.append(self._term("G_matte", _matte_loss(layers, batch)
                                    * loss.lambda_matte, losses))
        return sum(terms[1:], terms[0])

    @staticmethod
    def _term(name: str, value: Tensor, losses: dict[str, Tensor]) -> Tensor:
        losses[name] = value.detach()
        return value

    # -- the face stage ----------------------------------------------------------------------

    def _face_discriminator_backward(self, crops: "FaceCrops", losses: dict[str, Tensor]) -> None:
        """Face D on (label crop, face crop), one pass per frame as the official code (its
        batch norm sees each frame alone); 0.5 x the mean over frames of fake and real."""
        assert self.face_d_runner is not None
        n = len(crops.labels)
        fake_total = real_total = 0.0
        for x, f, y in zip(crops.labels, crops.fakes, crops.reals):
            with self.rt.autocast():
                loss_fake = self.gan(self.face_d_runner(frame_pair(x, f.detach())), False) / n
            self.opt.scaler.scale(0.5 * loss_fake).backward()
            with self.rt.autocast():
                loss_real = self.gan(self.face_d_runner(frame_pair(x, y)), True) / n
            self.opt.scaler.scale(0.5 * loss_real).backward()
            fake_total = fake_total + loss_fake.detach()
            real_total = real_total + loss_real.detach()
        losses["D_fake_face"], losses["D_real_face"] = fake_total, real_total  # type: ignore

    def _face_generator_loss(self, crops: "FaceCrops", losses: dict[str, Tensor]) -> Tensor:
        """Face GAN (mean over frames) + the VGG loss on the face crops (0.5 per frame), and
        with ``lambda_l1`` the L1 on the face crops. Without it and without VGG weights the
        face generator would learn from its GAN alone, and at a small budget the face got
        worse than none (face SSIM 0.525 against 0.551 on target_taiji, cpu-small): the full
        frame's L1 hardly sees a 32 px box in a 256x128 frame."""
        assert self.nets.face_discriminator is not None
        loss = self.opts.loss
        n = len(crops.labels)
        gan = sum(self.gan(self.nets.face_discriminator(frame_pair(x, f)), True)
                  for x, f in zip(crops.labels, crops.fakes)) / n
        losses["G_GAN_face"] = gan.detach()
        terms = [gan]
        if self.vgg is not None:
            vgg = sum(self._vgg(f, y) for f, y in zip(crops.fakes, crops.reals)) * (
                2.0 / n) * loss.face_vgg_weight * loss.lambda_vgg
            terms.append(self._term("G_VGG_face", vgg, losses))
        if loss.lambda_l1 > 0:
            terms.append(self._term("G_L1_face", _l1(crops.fakes, crops.reals) * loss.lambda_l1,
                                    losses))
        return sum(terms[1:], terms[0])


@dataclass
class FaceCrops:
    """The face boxes of every frame of a batch: labels, generated and real frames."""

    labels: list[Tensor]
    fakes: list[Tensor]
    reals: list[Tensor]

    @staticmethod
    def of(batch: Batch, fakes: list[Tensor]) -> "FaceCrops":
        def crop(images: list[Tensor]) -> list[Tensor]:
            return [crop_box(y, b) for y, b in zip(images, batch.boxes)]
        return FaceCrops(crop(batch.labels), crop(fakes), crop(batch.images))


def _matte_loss(layers: Sequence[Tensor], batch: Batch) -> Tensor:
    """|alpha - the person's mask|, and where the person is not, |colour - the target frame|
    (the plate there, see data/dataset.py).

    The second term keeps G's colour layer on the background where alpha is 0: left free, it
    is noise there, and wherever the alpha is not quite 0 that noise shows over the plate and
    comes back to G in its previous-frame input."""
    alphas = [layer[:, :1] for layer in layers]
    assert batch.masks is not None
    away = [1 - mask for mask in batch.masks]
    colours = [layer[:, 1:] * a for layer, a in zip(layers, away)]
    reals = [image * a for image, a in zip(batch.images, away)]
    return _l1(alphas, batch.masks) + _l1(colours, reals)


def _flicker(outputs: Sequence[Tensor], targets: Sequence[Tensor]) -> Tensor:
    """Mean |change of the outputs - change of the targets| between consecutive frames: the
    evaluation's flicker, as a loss."""
    changes = [b.float() - a.float() for a, b in zip(outputs, outputs[1:])]
    real_changes = [b.float() - a.float() for a, b in zip(targets, targets[1:])]
    return _l1(changes, real_changes)


def _l1(outputs: Sequence[Tensor], targets: Sequence[Tensor]) -> Tensor:
    """Mean |output - target| over the frames (in float32 whatever the autocast)."""
    return torch.stack([(o.float() - t.float()).abs().mean()
                        for o, t in zip(outputs, targets)]).mean()


@torch.no_grad()
def generate_video(generation: Generation, labels: Sequence[Tensor],
                   boxes: Sequence[Boxes] | None = None, plate: Tensor | None = None,
                   windows: Sequence[Windows] | None = None) -> list[Tensor]:
    """Frames as at inference: each conditioned on the previous output, the first on zeros."""
    frames, _ = generation(list(labels), boxes, plate=plate, windows=windows)
    return frames
