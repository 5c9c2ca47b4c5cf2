"""The frozen VGG19 of the perceptual loss, and where its ImageNet weights come from.

``VGG19Features`` defines torchvision's ``vgg19().features`` layer layout up to relu5_1, so
the standard published weights ``vgg19-dcbb9e9d.pth`` (keys ``features.N.weight/bias``)
load into it directly; the rest of that file (deeper layers, classifier) is ignored.

``load_vgg19(weights)`` takes a ``.pth`` (read with ``torch.load(weights_only=True)``, never
plain unpickling) or ``.safetensors`` file. Without a path it looks in our weights cache,
then in torch hub's cache (where torchvision would have put it), then downloads the file
into our cache and checks its sha256 prefix. When all fails it raises ``WeightsUnavailable``
telling the user to pass ``--vgg-weights PATH`` or ``--perceptual none``.
"""

from __future__ import annotations

import hashlib
import os
import re
import sys
import tempfile
import urllib.request
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import Tensor, nn
from tqdm import tqdm

from backend.errors import BackendError, InputError
from backend.paths import cache_dir

VGG19_URL = "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"

# torchvision's VGG19 "E" configuration: conv widths, "M" = 2x2 max pooling.
_VGG19_LAYOUT: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512)
# Index in ``features`` just after relu1_1, relu2_1, relu3_1, relu4_1, relu5_1.
SLICE_ENDS = (2, 7, 12, 21, 30)
LAYER_NAMES = ("relu1_1", "relu2_1", "relu3_1", "relu4_1", "relu5_1")


class WeightsUnavailable(BackendError):
    """Pretrained weights that training needs could not be found or downloaded."""

    code = "weights_unavailable"


def _features() -> nn.Sequential:
    """torchvision's ``vgg19().features`` up to relu5_1 (indices 0..29)."""
    layers: list[nn.Module] = []
    channels = 3
    for item in _VGG19_LAYOUT:
        if item == "M":
            layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
        else:
            layers += [nn.Conv2d(channels, int(item), kernel_size=3, padding=1),
                       nn.ReLU(inplace=True)]
            channels = int(item)
    assert len(layers) == SLICE_ENDS[-1]
    return nn.Sequential(*layers)


class VGG19Features(nn.Module):
    """VGG19 returning the activations relu1_1 .. relu5_1 (frozen and in eval mode once
    loaded by ``load_vgg19``). Input: ImageNet-normalised RGB, N x 3 x H x W."""

    def __init__(self) -> None:
        super().__init__()
        self.features = _features()
        bounds = (0, *SLICE_ENDS)
        # Views into ``features``: the state dict keeps torchvision's "features.N" names.
        self.slices = [self.features[a:b] for a, b in zip(bounds, bounds[1:])]

    def forward(self, x: Tensor) -> list[Tensor]:
        outputs = []
        for part in self.slices:
            x = part(x)
            outputs.append(x)
        return outputs


def expected_shapes() -> dict[str, tuple[int, ...]]:
    """The keys and shapes a VGG19 weights file must provide."""
    return {k: tuple(v.shape) for k, v in VGG19Features().state_dict().items()}


# --------------------------------------------------------------------------------------------
# Reading weights files
# --------------------------------------------------------------------------------------------


def read_state_dict(path: Path) -> Mapping[str, Tensor]:
    """A tensor dict from ``.safetensors`` or ``.pth`` (torch.load with weights_only)."""
    if not path.is_file():
        raise InputError(path, "VGG19 weights file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except InputError:
        raise
    except Exception as err:  # torch/safetensors raise many kinds for a damaged file
        raise InputError(path, f"cannot read VGG19 weights ({type(err).__name__}: {err})") from err
    if not isinstance(state, Mapping):
        raise InputError(path, "not a VGG19 state dict (expected a mapping of tensors)")
    return state


def load_vgg19_file(path: str | Path) -> VGG19Features:
    """VGG19Features with the weights of ``path``, frozen and in eval mode."""
    path = Path(path)
    state = read_state_dict(path)
    wanted = expected_shapes()
    missing = [k for k in wanted if k not in state]
    if missing:
        raise InputError(path, f"not VGG19 weights: missing {', '.join(missing[:4])}"
                               f"{' ...' if len(missing) > 4 else ''}")
    for key, shape in wanted.items():
        value = state[key]
        if not isinstance(value, Tensor) or tuple(value.shape) != shape:
            got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise InputError(path, f"not VGG19 weights: {key} has shape {got}, expected {shape}")
    net = VGG19Features()
    net.load_state_dict({k: state[k].float() for k in wanted}, strict=True)
    return net.eval().requires_grad_(False)


# --------------------------------------------------------------------------------------------
# Finding and downloading the standard file
# --------------------------------------------------------------------------------------------


def _file_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def _hash_prefix(name: str) -> str | None:
    """torch hub convention: ``name-<first hex digits of sha256>.ext``."""
    match = re.search(r"-([0-9a-f]{8,})\.", name)
    return match.group(1) if match else None


def candidate_paths(url: str = VGG19_URL) -> list[Path]:
    """Where an already downloaded copy may be: our cache, then torch hub's."""
    name = _file_name(url)
    return [cache_dir("weights") / name, Path(torch.hub.get_dir()) / "checkpoints" / name]


def download(url: str, dest: Path, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` atomically, checking the sha256 prefix in its name."""
    prefix = _hash_prefix(_file_name(url))
    dest.parent.mkdir(parents=True, exist_ok=True)
    print(f"Downloading VGG19 weights for the perceptual loss from {url} to {dest}",
          file=sys.stderr)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc="vgg19", file=sys.stderr,
                      leave=False) as bar:
                while chunk := resp.read(1 << 20):
                    out.write(chunk)
                    digest.update(chunk)
                    bar.update(len(chunk))
        if prefix and not digest.hexdigest().startswith(prefix):
            raise ValueError(f"sha256 {digest.hexdigest()[:len(prefix)]}... does not match "
                             f"the expected {prefix}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)
    return dest


def find_or_download_vgg19(url: str = VGG19_URL, timeout: float = 30.0) -> Path:
    """The path of the standard VGG19 weights, downloading them into our cache if needed."""
    for path in candidate_paths(url):
        if path.is_file():
            return path
    dest = candidate_paths(url)[0]
    try:
        return download(url, dest, timeout)
    except Exception as err:  # network, disk or checksum: all mean "no weights"
        raise WeightsUnavailable(
            f"VGG19 weights for the perceptual loss are not available: download from {url} "
            f"failed ({type(err).__name__}: {err}). Pass --vgg-weights PATH with a copy of "
            f"{_file_name(url)} (torchvision's ImageNet VGG19, .pth or .safetensors), or "
            f"--perceptual none to train without the perceptual loss."
        ) from err


def load_vgg19(weights: str | Path | None = None, *, url: str = VGG19_URL,
               timeout: float = 30.0) -> VGG19Features:
    """The frozen VGG19 of the perceptual loss, from ``weights`` or the standard file."""
    path = Path(weights) if weights is not None else find_or_download_vgg19(url, timeout)
    return load_vgg19_file(path)
