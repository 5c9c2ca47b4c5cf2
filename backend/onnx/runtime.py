"""The CPU inference backend: which one runs (``choose_cpu_backend``), and a bundle's
networks for it (``load_cpu_networks``: PyTorch modules, or ONNX Runtime sessions of the
files `export` wrote, see `session`).

ONNX Runtime measured faster than PyTorch on the CPU at every model size and thread count,
at about equal memory and with outputs that agree to 2e-5 (``benchmarks/bench_onnx.py``; the
figures: benchmarks/RESULTS.md, "ONNX Runtime against PyTorch on the CPU"). So ONNX Runtime
is the CPU default wherever ``onnx`` and ``onnxruntime`` are installed; PyTorch stays the
reference (every ONNX file is checked against it when written) and the fallback.
``EVERYBODY_DANCE_CPU_BACKEND=torch`` (or ``onnx``) overrides the choice.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import torch

from backend.errors import BackendError, InputError
from backend.models.bundle import Bundle, BundleManifest, load_bundle, read_manifest
from backend.paths import cache_dir

from .export import DEFAULT_OPSET, INSTALL_HINT, bundle_jobs, export_network
from .session import OnnxGenerator

CPU_BACKENDS = ("onnx", "torch")
CPU_BACKEND_ENV = "EVERYBODY_DANCE_CPU_BACKEND"


def onnx_available() -> bool:
    """Whether the ONNX path can run here: ``onnx`` (export) and ``onnxruntime`` (inference)."""
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def choose_cpu_backend(preferred: str | None = None) -> str:
    """``"onnx"`` or ``"torch"``: the backend for CPU inference.

    ``preferred`` (or else ``$EVERYBODY_DANCE_CPU_BACKEND``) may be ``"auto"``, ``"onnx"`` or
    ``"torch"``. Auto picks ONNX Runtime where it is installed: it was the faster on this
    project's CPU at every model size (see the module docstring for the figures).
    """
    choice = (preferred or os.environ.get(CPU_BACKEND_ENV) or "auto").strip().lower()
    if choice not in ("auto", *CPU_BACKENDS):
        raise BackendError(f"unknown CPU backend {choice!r} (from "
                           f"{'the caller' if preferred else CPU_BACKEND_ENV}); choose auto, "
                           f"{' or '.join(CPU_BACKENDS)}")
    if choice == "auto":
        return "onnx" if onnx_available() else "torch"
    if choice == "onnx" and not onnx_available():
        raise BackendError(f"the ONNX backend needs the onnx and onnxruntime packages: "
                           f"{INSTALL_HINT}")
    return choice


# --------------------------------------------------------------------------------------------
# The CPU networks of a bundle
# --------------------------------------------------------------------------------------------


@dataclass
class CpuNetworks:
    """What transfer runs on the CPU: G and the face generator of one bundle."""

    backend: str  # "onnx" or "torch"
    manifest: BundleManifest
    generator: Callable[[torch.Tensor], torch.Tensor]
    face_generator: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] | None
    onnx_files: list[Path] = field(default_factory=list)  # the files used (ONNX backend)


def _cached_path(name: str, fingerprint: str) -> Path:
    return cache_dir("onnx") / f"{name}-{fingerprint[:32]}-opset{DEFAULT_OPSET}.onnx"


def _existing_onnx(folder: Path, name: str, file: str, fingerprint: str,
                   threads: int | None) -> OnnxGenerator | None:
    """An ONNX file made from exactly these weights: in the bundle folder, else the cache."""
    for where in ("bundle", "cache"):
        path = folder / file if where == "bundle" else _cached_path(name, fingerprint)
        if not path.is_file():
            continue
        try:
            net = OnnxGenerator(path, threads)
        except InputError as err:
            print(f"note: ignoring {err}", file=sys.stderr)
            continue
        if net.metadata.get("fingerprint") == fingerprint:
            return net
    return None


def load_cpu_networks(bundle: Bundle | str | Path, backend: str | None = None,
                      threads: int | None = None) -> CpuNetworks:
    """G and the face generator of ``bundle`` for CPU inference, on ``backend``
    (default: ``choose_cpu_backend()``).

    ``bundle`` is a Bundle loaded on the CPU or a bundle folder. The PyTorch backend returns
    the bundle's own modules (threads: ``torch.set_num_threads``); ONNX Runtime uses
    ``threads`` intra-op threads (default: torch's count). On the ONNX backend, an up-to-date
    ``generator.onnx`` / ``face_generator.onnx`` in the bundle folder is used (see
    ``python -m backend export-onnx``); otherwise the network is exported once into the
    cache (checked against PyTorch) and reused from there. Given a folder whose ONNX files
    are all found, no PyTorch weights are loaded at all.
    """
    backend = choose_cpu_backend(backend)
    if isinstance(bundle, Bundle) and next(bundle.generator.parameters()).device.type != "cpu":
        raise ValueError("load_cpu_networks needs a bundle loaded on the CPU")
    if backend == "torch":
        loaded = bundle if isinstance(bundle, Bundle) else load_bundle(bundle, device="cpu")
        return CpuNetworks("torch", loaded.manifest, loaded.generator, loaded.face_generator)
    folder = bundle.folder if isinstance(bundle, Bundle) else Path(bundle)
    manifest = bundle.manifest if isinstance(bundle, Bundle) else read_manifest(folder)
    jobs = bundle_jobs(folder, manifest)
    nets = [_existing_onnx(folder, j.spec.name, j.spec.file, j.fingerprint, threads)
            for j in jobs]
    if any(net is None for net in nets):
        loaded = bundle if isinstance(bundle, Bundle) else load_bundle(folder, device="cpu")
        torch_nets = {"generator": loaded.generator, "face_generator": loaded.face_generator}
        for i, job in enumerate(jobs):
            if nets[i] is None:
                job.network = torch_nets[job.spec.name]
                path = _cached_path(job.spec.name, job.fingerprint)
                print(f"exporting the {job.spec.name} of {folder} to ONNX (once per model)",
                      file=sys.stderr)
                export_network(job, path)
                nets[i] = OnnxGenerator(path, threads)
    files = [net.path for net in nets if net is not None]
    return CpuNetworks("onnx", manifest, nets[0], nets[1] if len(nets) > 1 else None, files)
