"""Pretrained weights files: reading them safely, finding a downloaded copy, downloading one.

Used for the ImageNet VGG19 of the perceptual loss (`vgg`) and the networks of the LPIPS
metric (`training.evaluation.lpips`). The rules are the same for every file:

* a ``.pth`` is read with ``torch.load(weights_only=True)`` (never plain unpickling), a
  ``.safetensors`` with safetensors; anything else in it than a mapping of tensors is refused;
* a file given by the user is used as it is; otherwise our weights cache is searched, then
  torch hub's cache (where torchvision and the ``lpips`` package put theirs), and the file is
  downloaded into our cache, atomically, its sha256 checked against the prefix in its name
  (torch hub's ``name-<hex>.pth`` convention) where there is one;
* when none of that works, `WeightsUnavailable` says what to pass instead.
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
from torch import Tensor
from tqdm import tqdm

from backend.errors import BackendError, InputError
from backend.paths import cache_dir


class WeightsUnavailable(BackendError):
    """Pretrained weights that a step needs could not be found or downloaded."""

    code = "weights_unavailable"


def read_state_dict(path: Path, what: str) -> Mapping[str, Tensor]:
    """A tensor dict from ``.safetensors`` or ``.pth`` (torch.load with weights_only).
    ``what`` names the weights in errors ("VGG19 weights")."""
    if not path.is_file():
        raise InputError(path, f"{what} file not found")
    try:
        if path.suffix == ".safetensors":
            from safetensors.torch import load_file

            return load_file(str(path))
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch/safetensors raise many kinds for a damaged file
        raise InputError(path, f"cannot read {what} ({type(err).__name__}: {err})") from err
    if not isinstance(state, Mapping):
        raise InputError(path, f"not {what}: expected a mapping of tensors")
    return state


def checked_subset(path: Path, state: Mapping[str, Tensor], wanted: Mapping[str, tuple[int, ...]],
                   what: str, rename: Mapping[str, str] | None = None) -> dict[str, Tensor]:
    """The tensors of ``state`` that ``wanted`` names (key -> shape), as float32; the file's
    other tensors are ignored. ``rename`` maps a wanted key to its name in the file."""
    rename = rename or {}
    missing = [k for k in wanted if rename.get(k, k) not in state]
    if missing:
        names = [rename.get(k, k) for k in missing]
        raise InputError(path, f"not {what}: missing {', '.join(names[:4])}"
                               f"{' ...' if len(names) > 4 else ''}")
    out = {}
    for key, shape in wanted.items():
        value = state[rename.get(key, key)]
        if not isinstance(value, Tensor) or tuple(value.shape) != tuple(shape):
            got = tuple(value.shape) if isinstance(value, Tensor) else type(value).__name__
            raise InputError(path, f"not {what}: {rename.get(key, key)} has shape {got}, "
                                   f"expected {tuple(shape)}")
        out[key] = value.float()
    return out


def file_name(url: str) -> str:
    return url.rstrip("/").rsplit("/", 1)[-1]


def hash_prefix(name: str) -> str | None:
    """torch hub convention: ``name-<first hex digits of sha256>.ext``."""
    match = re.search(r"-([0-9a-f]{8,})\.", name)
    return match.group(1) if match else None


def candidate_paths(name: str) -> list[Path]:
    """Where an already downloaded ``name`` may be: our cache, then torch hub's."""
    return [cache_dir("weights") / name, Path(torch.hub.get_dir()) / "checkpoints" / name]


def download(url: str, dest: Path, what: str, timeout: float = 30.0) -> Path:
    """Download ``url`` to ``dest`` atomically, checking the sha256 prefix in its name."""
    prefix = hash_prefix(file_name(url))
    dest.parent.mkdir(parents=True, exist_ok=True)
    print(f"Downloading {what} from {url} to {dest}", file=sys.stderr)
    fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
    tmp = Path(tmp_name)
    try:
        digest = hashlib.sha256()
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
            total = int(resp.headers.get("Content-Length") or 0) or None
            with tqdm(total=total, unit="B", unit_scale=True, desc=dest.name, file=sys.stderr,
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


def find_or_download(url: str, what: str, advice: str, name: str | None = None,
                     extra: list[Path] | None = None, timeout: float = 30.0) -> Path:
    """The path of the weights file at ``url`` (cached as ``name``, default its file name):
    from ``extra`` places, our cache or torch hub's, else downloaded into our cache.
    ``advice`` ends the `WeightsUnavailable` message (what the user can pass instead)."""
    name = name or file_name(url)
    places = (extra or []) + candidate_paths(name)
    for path in places:
        if path.is_file():
            return path
    try:
        return download(url, candidate_paths(name)[0], what, timeout)
    except Exception as err:  # network, disk or checksum: all mean "no weights"
        raise WeightsUnavailable(
            f"{what} are not available: not in {', '.join(str(p) for p in places)}, and the "
            f"download from {url} failed ({type(err).__name__}: {err}). {advice}") from err
