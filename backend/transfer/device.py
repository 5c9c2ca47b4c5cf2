"""Where and at what precision the networks run: ``auto`` picks CUDA, then Apple MPS, then CPU.

Precision ``auto`` is bfloat16 on a GPU that supports it (fp16 otherwise, and on MPS) and
fp32 on the CPU, where half precision is slower, not faster. Half precision runs through
``torch.autocast``, which keeps the weights in fp32 and runs numerically touchy operations
(normalisation statistics, reductions) in fp32; the loaded bundle is therefore not changed
and a worker can run the next job at another precision with the same loaded model.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import ContextManager

import torch

from ..errors import BackendError

DEVICES = ("auto", "cpu", "cuda", "mps")
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(requested: str = "auto") -> torch.device:
    """The device for ``requested`` ("auto", "cpu", "cuda", "cuda:1", "mps"); clear error if absent."""
    kind = requested.split(":")[0]
    if kind not in DEVICES:
        raise BackendError(f"unknown device {requested!r}; choose one of {', '.join(DEVICES)}")
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps") if mps_available() else torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        build = "without CUDA support" if torch.version.cuda is None else f"for CUDA {torch.version.cuda}"
        raise BackendError(f"device {requested!r} asked for, but PyTorch {torch.__version__} (built "
                           f"{build}) sees no CUDA GPU; use --device auto or cpu")
    if kind == "mps" and not mps_available():
        raise BackendError(f"device {requested!r} asked for, but Apple's Metal (MPS) backend is "
                           f"not available here; use --device auto or cpu")
    return torch.device(requested)


def resolve_precision(requested: str, device: torch.device) -> str:
    """"fp32", "bf16" or "fp16" for ``requested`` on ``device``."""
    if requested not in PRECISIONS:
        raise BackendError(f"unknown precision {requested!r}; choose one of {', '.join(PRECISIONS)}")
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "mps":
        return "fp16"
    return "fp32"


@dataclass(frozen=True)
class Runtime:
    """A resolved device and precision, and how to run a forward pass with them."""

    device: torch.device
    precision: str  # "fp32", "bf16" or "fp16"

    @staticmethod
    def resolve(device: str = "auto", precision: str = "auto") -> "Runtime":
        dev = resolve_device(device)
        if dev.type == "cuda":
            # Every frame of a job has the same size: let cuDNN pick its fastest kernels once.
            torch.backends.cudnn.benchmark = True
        return Runtime(dev, resolve_precision(precision, dev))

    @property
    def channels_last(self) -> bool:
        # Faster convolutions with tensor cores; on the CPU it measured slower (oneDNN).
        return self.device.type == "cuda"

    def autocast(self) -> ContextManager:
        """The context to run networks in: autocast for half precision, nothing for fp32."""
        if self.precision == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=_DTYPES[self.precision])

    def describe(self) -> str:
        name = self.device.type
        if self.device.type == "cuda":
            name = f"cuda ({torch.cuda.get_device_name(self.device)})"
        return f"{name}, {self.precision}"
