"""Which library runs the networks of a transfer, and where they come from.

On a GPU, or at half precision, the networks run on PyTorch (``device``). Precision ``auto``
is the device's fastest (backend/runtime.py): on a CPU that computes bf16 natively that is
PyTorch under bf16 autocast, which measured faster than ONNX Runtime at fp32 (1.27-1.43x for
G at cpu-small, cpu-medium and cpu-large sizes, benchmarks/RESULTS.md), so such a job runs on
PyTorch unless ONNX Runtime is asked for by name, which means fp32 (`transfer_runtime`). On
the CPU at fp32 there is a choice, ``TransferJob.cpu_backend`` (``--cpu-backend``):

    "auto"   ONNX Runtime where it is installed (measured faster than PyTorch fp32 on the CPU
             at every model size, see backend/onnx/runtime.py), else PyTorch;
             ``$EVERYBODY_DANCE_CPU_BACKEND`` overrides this default
    "onnx"   ONNX Runtime (the bundle's generators are exported once and cached)
    "torch"  PyTorch, the reference

The two give frames that differ by a few 8-bit levels, and since each frame conditions the
next, switching in the middle of a job would change every frame after the switch. So a job
that already has frames continues on the backend that made them (recorded as ``backend`` in
its job.json): "auto" resolves to it, an explicit other choice is refused, and so is a job
made by ONNX Runtime where ONNX Runtime is not installed; ``overwrite`` starts such a job
again from its first frame. A record that names no known backend is refused (folders of
earlier versions: `job_state.read_record`). Moving a job to a GPU is a device change, which jobs allow (see `job`):
it continues on PyTorch, and the log says so.

Networks come from a `ModelSource`: `LoadEachTime` loads them for one job; the worker's
model cache keeps them between jobs (`model_cache.ModelCache`).
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path
from typing import Protocol

import torch

from ..errors import BackendError
from ..models.bundle import Bundle, load_bundle
from ..onnx import runtime as onnx_runtime
from ..onnx.runtime import CpuNetworks, load_cpu_networks
from ..runtime import Runtime

CPU_BACKEND_CHOICES = ("auto", "onnx", "torch")
BACKEND_NAMES = {"onnx": "ONNX Runtime", "torch": "PyTorch"}
LEGACY_BACKEND = "torch"  # what made the frames of a job folder that records no backend

Networks = Bundle | CpuNetworks  # both have .manifest, .generator and .face_generator


class BackendConflict(BackendError):
    """A job's frames so far were made by another backend than this run can or may use:
    ``problem``, and the remedies on the command line (``hint``) and for a worker's client
    (``plain_hint``)."""

    def __init__(self, problem: str, hint: str, plain_hint: str) -> None:
        super().__init__(f"{problem}. {hint[0].upper()}{hint[1:]}")
        self.problem, self.hint, self.plain_hint = problem, hint, plain_hint


def check_cpu_backend(requested: str) -> None:
    if requested not in CPU_BACKEND_CHOICES:
        raise ValueError(f"cpu_backend must be one of {CPU_BACKEND_CHOICES}, got {requested!r}")


def transfer_runtime(device: str, precision: str, cpu_backend: str) -> Runtime:
    """The runtime of a transfer: `Runtime.resolve`, except that ONNX Runtime named as the CPU
    backend (``cpu_backend``, else ``$EVERYBODY_DANCE_CPU_BACKEND``) turns precision ``auto``
    into fp32, the precision of its files."""
    runtime = Runtime.resolve(device, precision)
    named = cpu_backend if cpu_backend != "auto" else os.environ.get(onnx_runtime.CPU_BACKEND_ENV, "")
    if (precision == "auto" and runtime.device.type == "cpu" and runtime.precision != "fp32"
            and named.strip().lower() == "onnx"):
        return replace(runtime, precision="fp32")
    return runtime


def has_cpu_choice(runtime: Runtime) -> bool:
    """Whether ``runtime`` has a choice of backend: the CPU at fp32 (the ONNX files are fp32)."""
    return runtime.device.type == "cpu" and runtime.precision == "fp32"


def choose_backend(requested: str, runtime: Runtime, recorded: str | None = None) -> str:
    """``"onnx"`` or ``"torch"``: the backend of a run (see the module docstring).

    ``recorded`` is the backend that made the job's frames so far (None: no frames yet);
    `BackendConflict` when this run would continue them on another one.
    """
    check_cpu_backend(requested)
    if not has_cpu_choice(runtime):
        return "torch"
    if recorded is None:
        return onnx_runtime.choose_cpu_backend(None if requested == "auto" else requested)
    if requested not in ("auto", recorded):
        raise BackendConflict(
            f"its frames so far were made with {BACKEND_NAMES[recorded]}; continuing with "
            f"{BACKEND_NAMES[requested]} would change every frame from here on (each frame "
            f"conditions the next)",
            f"run it with --cpu-backend {recorded} (or auto) to continue, or --overwrite to "
            f"start again with {BACKEND_NAMES[requested]}",
            f"run it with the {BACKEND_NAMES[recorded]} backend to continue, or use another "
            f"output folder")
    if recorded == "onnx" and not onnx_runtime.onnx_available():
        raise BackendConflict(
            "its frames so far were made with ONNX Runtime, which is not installed here "
            "(pip install onnx onnxruntime)",
            "install it to continue, or use --overwrite to start again with PyTorch",
            "install it to continue, or use another output folder")
    return recorded


def describe_backend(backend: str, networks: Networks | None = None) -> str:
    """"ONNX Runtime 1.31.1 (1 thread)" or "PyTorch 2.13.0", for the log."""
    if backend == "onnx":
        import onnxruntime

        threads = None
        session = getattr(getattr(networks, "generator", None), "session", None)
        if session is not None:
            threads = session.get_session_options().intra_op_num_threads
        where = "" if threads is None else f" ({threads} thread{'s' if threads != 1 else ''})"
        return f"ONNX Runtime {onnxruntime.__version__}{where}"
    return f"PyTorch {torch.__version__}"


# --------------------------------------------------------------------------------------------
# Where the networks come from
# --------------------------------------------------------------------------------------------


class ModelSource(Protocol):
    """Loads (or hands out already loaded) networks of a model bundle."""

    def get(self, folder: Path, device: str) -> Bundle:
        """The bundle's PyTorch networks on ``device``."""

    def cpu_networks(self, folder: Path, backend: str) -> CpuNetworks:
        """The bundle's networks for the CPU on ``backend`` ("onnx" or "torch")."""


class LoadEachTime:
    """Loads a bundle's networks whenever asked (one job run from the command line)."""

    def get(self, folder: Path, device: str) -> Bundle:
        return load_bundle(folder, device)

    def cpu_networks(self, folder: Path, backend: str) -> CpuNetworks:
        return load_cpu_networks(folder, backend)


class GivenBundle:
    """A bundle the caller already loaded (on any device), used for every backend."""

    def __init__(self, bundle: Bundle) -> None:
        self.bundle = bundle

    def get(self, folder: Path, device: str) -> Bundle:
        return self.bundle  # FrameGenerator moves it to the job's device

    def cpu_networks(self, folder: Path, backend: str) -> CpuNetworks:
        b = self.bundle
        if backend == "torch":
            return CpuNetworks("torch", b.manifest, b.generator, b.face_generator)
        on_cpu = next(b.generator.parameters()).device.type == "cpu"
        # Exported from the loaded modules when no up-to-date ONNX file exists yet.
        return load_cpu_networks(b if on_cpu else b.folder, backend)


def load_networks(source: ModelSource, folder: Path, runtime: Runtime,
                  backend: str) -> Networks:
    """The networks a run of ``backend`` on ``runtime`` uses."""
    if has_cpu_choice(runtime):
        return source.cpu_networks(folder, backend)
    return source.get(folder, str(runtime.device))
