"""Run exported generators with ONNX Runtime, and choose the CPU inference backend.

``OnnxGenerator`` is called exactly like the PyTorch generator it was exported from:
``generator(x)`` with x N x 6 x H x W in [-1, 1] returns N x 3 x H x W, and
``face_generator(label_crop, face_crop)`` returns the face residual. Tensors in, tensor out
(numpy arrays in, array out).

Which backend runs on the CPU (``choose_cpu_backend``) was measured with
``benchmarks/bench_onnx.py`` on the project's machine (2 cores shared with other jobs at a
load of 3 to 6): torch 2.13.0 fp32 under ``inference_mode`` against ONNX Runtime 1.31.1
(CPUExecutionProvider, all graph optimizations, no spinning), each in its own process,
batch 1 at the training resolution, median wall-clock milliseconds per frame of G:

    ============  ========  =================  =================
    preset        size      2 threads          1 thread
                            PyTorch   ORT      PyTorch   ORT
    ============  ========  =================  =================
    tiny (local)  64x32        17.4    1.2         2.1    0.9
    cpu-small     256x128    1106     40          59     34
    paper-global  512x256    5057   2563        3605   2651
    ============  ========  =================  =================

ONNX Runtime is faster at every size and thread count: 1.4 to 2.5 times with one thread,
and far more with two, where PyTorch's OpenMP threads wait for each other on a busy machine
(its CPU time per frame grows twentyfold at cpu-small; ONNX Runtime's does not). The face
generator gains the same way (paper-global's 64x64 box: 83 -> 58 ms with one thread). Peak
memory is about equal (paper-global: PyTorch 1.6 GiB, ONNX Runtime 1.7 GiB). Outputs agree
to 2e-5. So ONNX Runtime is the CPU default wherever ``onnx`` and ``onnxruntime`` are
installed; PyTorch stays the reference (every ONNX file is checked against it when written)
and the fallback. ``EVERYBODY_DANCE_CPU_BACKEND=torch`` (or ``onnx``) overrides the choice.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from backend.errors import BackendError, InputError
from backend.models.bundle import Bundle, BundleManifest, load_bundle, read_manifest
from backend.paths import cache_dir

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
        from .export import INSTALL_HINT

        raise BackendError(f"the ONNX backend needs the onnx and onnxruntime packages: "
                           f"{INSTALL_HINT}")
    return choice


# --------------------------------------------------------------------------------------------
# Running an ONNX file
# --------------------------------------------------------------------------------------------


def session_options(threads: int | None = None, spinning: bool = False) -> Any:
    """ONNX Runtime options: all graph optimizations, ``threads`` intra-op threads (default:
    torch's thread count, so one setting governs both backends).

    Spinning is off by default: between frames the transfer pipeline draws labels and
    encodes video on the same cores, and spinning pool threads would take that time.
    """
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.intra_op_num_threads = int(threads or torch.get_num_threads())
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning",
                                     "1" if spinning else "0")
    options.log_severity_level = 3  # errors only: ORT's warnings would clutter stderr
    return options


class OnnxGenerator:
    """An exported generator run by ONNX Runtime on the CPU (see the module docstring)."""

    def __init__(self, path: str | Path, threads: int | None = None,
                 spinning: bool = False) -> None:
        import onnxruntime as ort

        from .export import metadata_of

        self.path = Path(path)
        if not self.path.is_file():
            raise InputError(self.path, "ONNX model not found")
        try:
            self.session = ort.InferenceSession(str(self.path),
                                                session_options(threads, spinning),
                                                providers=["CPUExecutionProvider"])
        except Exception as err:  # ORT reports damage with its own exception types
            detail = str(err).strip().splitlines()[0][:300] if str(err).strip() else repr(err)
            raise InputError(self.path, f"corrupt or not an ONNX model: {detail}") from err
        self.metadata = metadata_of(self.session.get_modelmeta().custom_metadata_map)
        self.inputs = self.session.get_inputs()
        self.input_names = [i.name for i in self.inputs]
        self.output_name = self.session.get_outputs()[0].name
        self.size_multiple = int(self.metadata.get("size_multiple", "1"))

    @property
    def network(self) -> str | None:
        """``"generator"`` or ``"face_generator"`` (None for an ONNX file made elsewhere)."""
        return self.metadata.get("network")

    def __repr__(self) -> str:
        return f"OnnxGenerator({str(self.path)!r}, network={self.network!r})"

    def __call__(self, *inputs: torch.Tensor | np.ndarray) -> Any:
        """Run on tensors (returns a float32 CPU tensor) or numpy arrays (returns an array)."""
        if all(isinstance(x, np.ndarray) for x in inputs):
            return self.run_numpy(*inputs)  # type: ignore[arg-type]
        arrays = [np.asarray(x.detach().to("cpu", torch.float32).contiguous().numpy())
                  if isinstance(x, torch.Tensor) else np.asarray(x, dtype=np.float32)
                  for x in inputs]
        return torch.from_numpy(self.run_numpy(*arrays))

    def run_numpy(self, *arrays: np.ndarray) -> np.ndarray:
        arrays = tuple(np.ascontiguousarray(a, dtype=np.float32) for a in arrays)
        self._check(arrays)
        return self.session.run([self.output_name], dict(zip(self.input_names, arrays)))[0]

    def _check(self, arrays: tuple[np.ndarray, ...]) -> None:
        """The same contract as the PyTorch modules: a clear ValueError, not an ORT trace."""
        what = self.network or self.path.name
        if len(arrays) != len(self.inputs):
            raise ValueError(f"{what} takes {len(self.inputs)} input(s) "
                             f"({', '.join(self.input_names)}), got {len(arrays)}")
        for array, spec in zip(arrays, self.inputs):
            expected = spec.shape  # ints where fixed, names where dynamic
            if array.ndim != 4:
                raise ValueError(f"{what}: {spec.name} must be N x C x H x W, "
                                 f"got {array.shape}")
            for axis, (got, want) in enumerate(zip(array.shape, expected)):
                if isinstance(want, int) and got != want:
                    raise ValueError(f"{what}: {spec.name} must have shape {expected}, "
                                     f"got {array.shape} (axis {axis})")
            if array.shape[2] % self.size_multiple or array.shape[3] % self.size_multiple:
                raise ValueError(f"{what}: height and width must be multiples of "
                                 f"{self.size_multiple}, got {array.shape[2]}x{array.shape[3]}")
        if len({a.shape[0:1] + a.shape[2:] for a in arrays}) > 1:
            raise ValueError(f"{what}: inputs differ in batch or size: "
                             f"{[a.shape for a in arrays]}")


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
    from .export import DEFAULT_OPSET

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
    from .export import bundle_jobs, export_network

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
