"""What the worker runs on: the compute device and the ``hello`` handshake."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata

from backend import __version__
from backend.errors import BackendError

from .protocol import Hello

DEVICES = ("auto", "cuda", "mps", "cpu")


def pick_device(requested: str = "auto") -> str:
    """``requested``, or with "auto" the best available: cuda, then mps, then cpu."""
    import torch  # here, not at the top: `python -m backend --help` must not load torch

    if requested not in DEVICES:
        raise ValueError(f"device must be one of {DEVICES}, got {requested!r}")
    if requested == "cuda" and not torch.cuda.is_available():
        raise BackendError(f"device cuda was asked for, but this torch ({torch.__version__}, "
                           f"{sys.executable}) sees no CUDA GPU")
    if requested == "mps" and not _mps_available():
        raise BackendError("device mps was asked for, but this torch sees no Apple GPU")
    if requested != "auto":
        return requested
    if torch.cuda.is_available():
        return "cuda"
    if _mps_available():
        return "mps"
    return "cpu"


def _mps_available() -> bool:
    import torch

    mps = getattr(torch.backends, "mps", None)
    return mps is not None and mps.is_available()


def _package_version(name: str) -> str:
    """Installed version of ``name`` without importing it (mediapipe takes seconds to import)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def make_hello(device: str) -> Hello:
    """The handshake for a worker computing on ``device`` (already resolved, not "auto")."""
    import torch

    hello = Hello(backend_version=__version__, python=platform.python_version(),
                  torch=torch.__version__, mediapipe=_package_version("mediapipe"),
                  device=device, pid=os.getpid())
    if device == "cuda":
        index = torch.cuda.current_device()
        free, total = torch.cuda.mem_get_info(index)
        hello.gpu_name = torch.cuda.get_device_name(index)
        hello.gpu_memory_total_mb = int(total // 2**20)
        hello.gpu_memory_free_mb = int(free // 2**20)
    elif device == "mps":
        hello.gpu_name = "Apple GPU (MPS)"
    return hello
