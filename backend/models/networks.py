"""The inference networks: pix2pixHD's generators as Everybody Dance Now uses them.

Input contract of the pose-to-image generator G (``GlobalGenerator`` or ``LocalEnhancer``):

* a float tensor N x 6 x H x W: the label image (3 channels) and the previous generated frame
  (3 channels, zeros for the first frame) concatenated along the channels, both in [-1, 1]
  (``generator_input`` builds it);
* H and W multiples of ``config.size_multiple`` (2**n_downsample_global, times 2 per local
  enhancer: 16 for the paper's global generator, 32 for the local one).

Output: N x 3 x H x W in [-1, 1] (tanh): the frame; or, with ``config.has_matte``,
N x 4 x H x W: the person's colour and an alpha matte (tanh, mapped to [0, 1] by the
generator step, backend/models/step.py, which composites it over the target's plate).

The face generator sees the label crop and G's face crop (N x 3 x h x w each, h and w
multiples of 8) and predicts a residual that ``apply_face_residual`` adds to G's face.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ..target.face import Box
from .config import FaceGeneratorConfig, GeneratorConfig


# --------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------


def norm_layer(kind: str, channels: int) -> nn.Module:
    """pix2pixHD's normalisations: instance norm without affine parameters, or batch norm."""
    if kind == "instance":
        return nn.InstanceNorm2d(channels, affine=False)
    if kind == "batch":
        return nn.BatchNorm2d(channels, affine=True)
    raise ValueError(f"unknown normalisation {kind!r}")


def _padded_conv3(padding: str, channels: int) -> list[nn.Module]:
    """A 3x3 convolution that keeps the size, padded as ``padding`` says."""
    if padding == "zero":
        return [nn.Conv2d(channels, channels, kernel_size=3, padding=1)]
    pad: nn.Module = nn.ReflectionPad2d(1) if padding == "reflect" else nn.ReplicationPad2d(1)
    return [pad, nn.Conv2d(channels, channels, kernel_size=3, padding=0)]


class ResnetBlock(nn.Module):
    """x + (conv3 - norm - relu - conv3 - norm)(x), as pix2pixHD."""

    def __init__(self, channels: int, norm: str = "instance", padding: str = "reflect") -> None:
        super().__init__()
        self.conv_block = nn.Sequential(
            *_padded_conv3(padding, channels),
            norm_layer(norm, channels),
            nn.ReLU(inplace=True),
            *_padded_conv3(padding, channels),
            norm_layer(norm, channels),
        )

    def forward(self, x: Tensor) -> Tensor:
        return x + self.conv_block(x)


def _stem(input_nc: int, ngf: int, norm: str) -> list[nn.Module]:
    # The 7x7 convolutions always pad by reflection in pix2pixHD, whatever the block padding.
    return [nn.ReflectionPad2d(3), nn.Conv2d(input_nc, ngf, kernel_size=7, padding=0),
            norm_layer(norm, ngf), nn.ReLU(inplace=True)]


def _down(cin: int, cout: int, norm: str) -> list[nn.Module]:
    return [nn.Conv2d(cin, cout, kernel_size=3, stride=2, padding=1),
            norm_layer(norm, cout), nn.ReLU(inplace=True)]


def _up(cin: int, cout: int, norm: str, upsample: str) -> list[nn.Module]:
    """Twice the size: pix2pixHD's transposed convolution, or a nearest-neighbour resize then
    a 3x3 convolution (the same number of weights, no checkerboard; see config.UPSAMPLES)."""
    if upsample == "resize":
        grow = [nn.Upsample(scale_factor=2, mode="nearest"), nn.ReflectionPad2d(1),
                nn.Conv2d(cin, cout, kernel_size=3, padding=0)]
    else:
        grow = [nn.ConvTranspose2d(cin, cout, kernel_size=3, stride=2, padding=1,
                                   output_padding=1)]
    return [*grow, norm_layer(norm, cout), nn.ReLU(inplace=True)]


def _to_image(ngf: int, output_nc: int) -> list[nn.Module]:
    """The last three layers of every generator: pad, 7x7 convolution, tanh."""
    return [nn.ReflectionPad2d(3), nn.Conv2d(ngf, output_nc, kernel_size=7, padding=0), nn.Tanh()]


def _global_layers(config: GeneratorConfig | FaceGeneratorConfig, n_down: int,
                   n_blocks: int) -> list[nn.Module]:
    """pix2pixHD's global generator: stem, downsamplings, residual blocks, upsamplings, tanh."""
    ngf, norm = config.ngf, config.norm
    layers = _stem(config.input_nc, ngf, norm)
    for i in range(n_down):
        layers += _down(ngf * 2**i, ngf * 2 ** (i + 1), norm)
    layers += [ResnetBlock(ngf * 2**n_down, norm, config.padding) for _ in range(n_blocks)]
    for i in range(n_down, 0, -1):
        layers += _up(ngf * 2**i, ngf * 2 ** (i - 1), norm, config.upsample)
    return layers + _to_image(ngf, config.output_nc)


def _check_size(x: Tensor, channels: int, multiple: int, what: str) -> None:
    if x.dim() != 4 or x.shape[1] != channels:
        raise ValueError(f"{what} expects N x {channels} x H x W, got {tuple(x.shape)}")
    if x.shape[2] % multiple or x.shape[3] % multiple:
        raise ValueError(
            f"{what}: height and width must be multiples of {multiple}, got "
            f"{x.shape[2]}x{x.shape[3]}"
        )


# --------------------------------------------------------------------------------------------
# Generators
# --------------------------------------------------------------------------------------------


class GlobalGenerator(nn.Module):
    """pix2pixHD's global generator G1 (``config.n_local_enhancers`` must be 0)."""

    def __init__(self, config: GeneratorConfig = GeneratorConfig()) -> None:
        super().__init__()
        if config.n_local_enhancers != 0:
            raise ValueError("GlobalGenerator needs n_local_enhancers=0; use LocalEnhancer")
        self.config = config
        self.model = nn.Sequential(*_global_layers(config, config.n_downsample_global,
                                                   config.n_blocks_global))

    def forward(self, x: Tensor) -> Tensor:
        """N x input_nc x H x W in [-1, 1] -> N x output_nc x H x W in [-1, 1]."""
        _check_size(x, self.config.input_nc, self.config.size_multiple, "GlobalGenerator")
        return self.model(x)


class _LocalBranch(nn.Module):
    """One local enhancer G2 level: its own downsampling front and residual/upsampling back."""

    def __init__(self, config: GeneratorConfig, width: int, last: bool) -> None:
        super().__init__()
        self.down = nn.Sequential(*_stem(config.input_nc, width, config.norm),
                                  *_down(width, width * 2, config.norm))
        up: list[nn.Module] = [ResnetBlock(width * 2, config.norm, config.padding)
                               for _ in range(config.n_blocks_local)]
        up += _up(width * 2, width, config.norm, config.upsample)
        if last:
            up += _to_image(width, config.output_nc)
        self.up = nn.Sequential(*up)

    def forward(self, x: Tensor, coarse: Tensor) -> Tensor:
        # pix2pixHD adds the coarser level's last feature map to this level's downsampled one.
        return self.up(self.down(x) + coarse)


class LocalEnhancer(nn.Module):
    """pix2pixHD's coarse-to-fine generator: a global generator (without its last layers) run
    on the input downsampled by 2**n_local_enhancers, refined by local branches.

    ``config.ngf`` is the global generator's width; the branch at level n has
    ``ngf // 2**n`` filters (32 for the paper's single enhancer).
    """

    def __init__(self, config: GeneratorConfig = GeneratorConfig(n_local_enhancers=1)) -> None:
        super().__init__()
        if config.n_local_enhancers < 1:
            raise ValueError("LocalEnhancer needs n_local_enhancers >= 1; use GlobalGenerator")
        self.config = config
        layers = _global_layers(config, config.n_downsample_global, config.n_blocks_global)
        # The global trunk keeps the layer indices of GlobalGenerator.model, so the trained
        # global weights load into it by name (see from_global).
        self.global_trunk = nn.Sequential(*layers[:-3])
        n = config.n_local_enhancers
        self.branches = nn.ModuleList(
            _LocalBranch(config, config.ngf // 2**level, last=(level == n))
            for level in range(1, n + 1)
        )

    @staticmethod
    def downsample(x: Tensor) -> Tensor:
        """The input pyramid's 2x downsampling (pix2pixHD: 3x3 average, padding not counted)."""
        return F.avg_pool2d(x, 3, stride=2, padding=1, count_include_pad=False)

    def forward(self, x: Tensor) -> Tensor:
        """N x input_nc x H x W in [-1, 1] -> N x output_nc x H x W in [-1, 1]."""
        _check_size(x, self.config.input_nc, self.config.size_multiple, "LocalEnhancer")
        pyramid = [x]
        for _ in self.branches:
            pyramid.append(self.downsample(pyramid[-1]))
        features = self.global_trunk(pyramid[-1])
        # Coarse to fine: branch 1 works at half the input size, the last at full size.
        for level, branch in enumerate(self.branches, start=1):
            features = branch(pyramid[len(self.branches) - level], features)
        return features

    @classmethod
    def from_global(cls, global_generator: GlobalGenerator, n_local_enhancers: int = 1,
                    n_blocks_local: int | None = None) -> LocalEnhancer:
        """A local enhancer whose global trunk holds ``global_generator``'s trained weights.

        The paper trains the global generator at 512x256 first, then initialises the local
        stage from it; the local branches get pix2pixHD's fresh normal initialisation.
        """
        config = replace(global_generator.config, n_local_enhancers=n_local_enhancers,
                         n_blocks_local=(global_generator.config.n_blocks_local
                                         if n_blocks_local is None else n_blocks_local))
        local = build_generator(config)
        assert isinstance(local, LocalEnhancer)
        trunk_state = global_generator.model[:-3].state_dict()
        local.global_trunk.load_state_dict(trunk_state, strict=True)
        param = next(global_generator.parameters())
        return local.to(device=param.device, dtype=param.dtype)


class FaceGenerator(nn.Module):
    """The face GAN's generator: a small global generator that looks at the label crop and
    G's face crop around the nose and predicts a residual in [-1, 1] for the face."""

    def __init__(self, config: FaceGeneratorConfig = FaceGeneratorConfig()) -> None:
        super().__init__()
        if config.input_nc != 2 * config.output_nc:
            raise ValueError("FaceGenerator: input_nc must be 2 * output_nc (label + face crops)")
        self.config = config
        self.model = nn.Sequential(*_global_layers(config, config.n_downsampling,
                                                   config.n_blocks))

    def forward(self, label_crop: Tensor, face_crop: Tensor) -> Tensor:
        """Label crop and G's face crop (N x 3 x h x w, in [-1, 1]) -> residual N x 3 x h x w."""
        x = torch.cat((label_crop, face_crop), dim=1)
        _check_size(x, self.config.input_nc, self.config.size_multiple, "FaceGenerator")
        return self.model(x)


Generator = GlobalGenerator | LocalEnhancer


# --------------------------------------------------------------------------------------------
# Factories and initialisation
# --------------------------------------------------------------------------------------------


def init_weights(module: nn.Module) -> None:
    """pix2pixHD's initialisation: conv weights ~ N(0, 0.02); batch norm scale ~ N(1, 0.02),
    shift 0. Conv biases keep PyTorch's default, as in the official code."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.zeros_(m.bias)


def build_generator(config: GeneratorConfig = GeneratorConfig()) -> Generator:
    """G for ``config``: a GlobalGenerator, or a LocalEnhancer when n_local_enhancers > 0."""
    net: Generator = LocalEnhancer(config) if config.n_local_enhancers else GlobalGenerator(config)
    init_weights(net)
    return net


def build_face_generator(config: FaceGeneratorConfig = FaceGeneratorConfig()) -> FaceGenerator:
    net = FaceGenerator(config)
    init_weights(net)
    return net


# --------------------------------------------------------------------------------------------
# Inputs and the face region
# --------------------------------------------------------------------------------------------


def generator_input(label: Tensor, previous: Tensor | None = None) -> Tensor:
    """G's 6-channel input: label (N x 3 x H x W) and previous frame (zeros when None)."""
    if previous is None:
        previous = torch.zeros_like(label)
    if previous.shape != label.shape:
        raise ValueError(f"label {tuple(label.shape)} and previous frame "
                         f"{tuple(previous.shape)} differ in shape")
    return torch.cat((label, previous), dim=1)


def _boxes_for(batch: int, box: Box | Sequence[Box]) -> list[Box]:
    """One box for every sample: a single box is shared by the whole batch."""
    if len(box) == 0:
        raise ValueError("no face box given")
    first = box[0]
    if isinstance(first, (int, float)) or getattr(first, "ndim", None) == 0:
        single = tuple(int(v) for v in box)  # type: ignore[union-attr]
        if len(single) != 4:
            raise ValueError(f"a face box is (x0, y0, x1, y1), got {box}")
        return [single] * batch  # type: ignore[list-item]
    boxes = [tuple(int(v) for v in b) for b in box]  # type: ignore[union-attr]
    if len(boxes) != batch or any(len(b) != 4 for b in boxes):
        raise ValueError(f"expected {batch} face boxes (x0, y0, x1, y1), got {box}")
    return boxes  # type: ignore[return-value]


def crop_box(image: Tensor, box: Box | Sequence[Box]) -> Tensor:
    """The region ``box`` of every image (N x C x H x W): one box, or one per sample."""
    boxes = _boxes_for(image.shape[0], box)
    return torch.stack([img[:, y0:y1, x0:x1] for img, (x0, y0, x1, y1) in zip(image, boxes)])


def apply_face_residual(frame: Tensor, residual: Tensor, box: Box | Sequence[Box],
                        clamp: bool = True) -> Tensor:
    """``frame`` (N x 3 x H x W) with ``residual`` (N x 3 x h x w) added inside ``box``.

    Differentiable and not in place (the residual is zero-padded to the frame's size). With
    ``clamp`` the result is kept in [-1, 1] like every other image tensor here; the official
    code leaves the sum unclamped.
    """
    n, _, height, width = frame.shape
    boxes = _boxes_for(n, box)
    padded = []
    for res, (x0, y0, x1, y1) in zip(residual, boxes):
        if res.shape[-2:] != (y1 - y0, x1 - x0):
            raise ValueError(f"residual {tuple(res.shape[-2:])} does not fit "
                             f"box {(x0, y0, x1, y1)}")
        if x0 < 0 or y0 < 0 or x1 > width or y1 > height:
            raise ValueError(f"box {(x0, y0, x1, y1)} is outside the {width}x{height} frame")
        padded.append(F.pad(res, (x0, width - x1, y0, height - y1)))
    out = frame + torch.stack(padded)
    return out.clamp(-1.0, 1.0) if clamp else out
