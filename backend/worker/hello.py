"""What the worker runs on: the compute device and the ``hello`` handshake."""

from __future__ import annotations

import os
import platform
from importlib import metadata

from backend import __version__

from .protocol import Hello


def pick_device(requested: str = "auto") -> str:
    """``requested``, or with "auto" the best available: cuda, then mps, then cpu (the rule
    of ``backend.runtime``; BackendError when it is absent). A GPU named by number keeps it
    ("cuda:1")."""
    from backend.runtime import resolve_device  # torch: not at the top (see commands/serve)

    return str(resolve_device(requested))


def _package_version(name: str) -> str:
    """Installed version of ``name`` without importing it (mediapipe takes seconds to import)."""
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


def make_hello(device: str) -> Hello:
    """The handshake for a worker computing on ``device`` (already resolved, not "auto";
    "cuda:1" says "cuda" and that GPU's name and memory)."""
    import torch

    kind, _, number = device.partition(":")
    hello = Hello(backend_version=__version__, python=platform.python_version(),
                  torch=torch.__version__, mediapipe=_package_version("mediapipe"),
                  device=kind, pid=os.getpid())
    if kind == "cuda":
        index = int(number) if number else torch.cuda.current_device()
        free, total = torch.cuda.mem_get_info(index)
        hello.gpu_name = torch.cuda.get_device_name(index)
        hello.gpu_memory_total_mb = int(total // 2**20)
        hello.gpu_memory_free_mb = int(free // 2**20)
    elif device == "mps":
        hello.gpu_name = "Apple GPU (MPS)"
    return hello
