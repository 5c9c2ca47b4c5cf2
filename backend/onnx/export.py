"""Export a model bundle's generators to ONNX, checked against PyTorch.

``export_bundle_onnx(BUNDLE)`` writes ``generator.onnx`` (and ``face_generator.onnx`` when the
bundle has a face generator) into the bundle folder, or into ``out_dir``. Each file is written
to a temporary name, checked with ``onnx.checker``, run by ONNX Runtime on random inputs at
the training resolution (and, for a size-independent export, at a second size with batch 2)
and compared with PyTorch; only a file that matches to ``atol`` replaces the old one.

We use PyTorch's TorchScript exporter (``torch.onnx.export(..., dynamo=False)``): it handles
these convolutional networks completely (instance norm, reflection padding, transposed
convolutions, average pooling), and the newer ``torch.export`` exporter needs the
``onnxscript`` package besides ``onnx``. PyTorch marks the TorchScript exporter as deprecated;
if a future torch drops it, switch to ``dynamo=True`` and add ``onnxscript``.

Each file carries metadata (``everybody_dance.*``): which network it is, its configuration,
the size multiple its input must respect, and a fingerprint of the weights and configuration
it was made from, so a stale file is never mistaken for the current one (see runtime.py).
"""

from __future__ import annotations

import hashlib
import json
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch
from torch import nn

from backend.errors import BackendError, InputError
from backend.paths import atomic_file
from backend.models.bundle import (FACE_GENERATOR_FILE, GENERATOR_FILE, BundleManifest,
                                   load_bundle)
from backend.models.config import FaceGeneratorConfig, GeneratorConfig
from backend.target.face import face_box_size

from .session import META_PREFIX, OnnxGenerator

GENERATOR_ONNX = "generator.onnx"
FACE_GENERATOR_ONNX = "face_generator.onnx"
DEFAULT_OPSET = 17
MIN_OPSET = 11  # reflection padding becomes an ONNX Pad with mode "reflect" from opset 11
MAX_OPSET = 20  # the TorchScript exporter's newest opset in torch 2.x
# An 8-bit image step is 2/255 = 7.8e-3 in [-1, 1]; 1e-3 is far below anything visible while
# leaving room for the different summation order of ONNX Runtime's convolutions (measured
# differences are about 1e-6 for small networks and 2e-5 for the paper's).
DEFAULT_ATOL = 1e-3
INSTALL_HINT = ("pip install onnx onnxruntime (both are dependencies of this project: "
                "reinstalling it brings them back)")


class OnnxMismatchError(BackendError):
    """ONNX Runtime's output differs from PyTorch's: the exported file is not written."""

    code = "onnx_mismatch"


@dataclass(frozen=True)
class NetworkSpec:
    """How one network looks from outside: ONNX input/output names and shapes."""

    name: str  # "generator" or "face_generator"
    file: str  # file name inside a bundle
    input_names: tuple[str, ...]
    output_name: str
    size_multiple: int  # input height and width must be multiples of this


@dataclass
class ExportJob:
    """One network of a loaded bundle, ready to export."""

    spec: NetworkSpec
    network: nn.Module | None  # the PyTorch network (None until it is needed)
    config: GeneratorConfig | FaceGeneratorConfig
    check_shapes: list[tuple[int, int, int, int]]  # N x C x H x W of every input
    fingerprint: str
    bundle_name: str


@dataclass
class ExportedNetwork:
    """What ``export_network`` wrote: the file and how closely it matches PyTorch."""

    name: str
    path: Path
    size_bytes: int
    max_abs_diff: float | None  # None when the check was skipped
    checked_shapes: list[tuple[int, int, int, int]] = field(default_factory=list)


@dataclass
class OnnxExport:
    folder: Path
    networks: list[ExportedNetwork]


def require_onnx_packages() -> None:
    """Raise a BackendError with the install command when onnx/onnxruntime are missing."""
    missing = []
    for name in ("onnx", "onnxruntime"):
        try:
            __import__(name)
        except ImportError:
            missing.append(name)
    if missing:
        raise BackendError(f"ONNX export needs the {' and '.join(missing)} package(s): "
                           f"{INSTALL_HINT}")


def check_opset(opset: int) -> None:
    if not MIN_OPSET <= opset <= MAX_OPSET:
        raise ValueError(f"opset must be between {MIN_OPSET} and {MAX_OPSET}, got {opset}")


# --------------------------------------------------------------------------------------------
# What to export
# --------------------------------------------------------------------------------------------


def generator_spec(config: GeneratorConfig) -> NetworkSpec:
    return NetworkSpec(name="generator", file=GENERATOR_ONNX, input_names=("input",),
                       output_name="output",
                       size_multiple=config.size_multiple)


def face_generator_spec(config: FaceGeneratorConfig) -> NetworkSpec:
    return NetworkSpec(name="face_generator", file=FACE_GENERATOR_ONNX,
                       input_names=("label_crop", "face_crop"), output_name="residual", size_multiple=config.size_multiple)


def network_fingerprint(weights: Path, config: GeneratorConfig | FaceGeneratorConfig) -> str:
    """SHA-256 of the configuration and the weights file: what an ONNX file was made from."""
    if not weights.is_file():
        raise InputError(weights, "weights file missing from the model bundle")
    digest = hashlib.sha256(json.dumps(config.to_dict(), sort_keys=True).encode())
    with open(weights, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_shapes(channels: int, size: tuple[int, int], multiple: int,
                  dynamic: bool) -> list[tuple[int, int, int, int]]:
    """Batch 1 at ``size`` (height, width); for a dynamic export also batch 2 at a small
    other size (2 x 4 multiples: the deepest feature map stays 2 pixels, enough for the
    reflection padding of the residual blocks)."""
    shapes = [(1, channels, size[0], size[1])]
    small = (2, channels, 2 * multiple, 4 * multiple)
    if dynamic and small != shapes[0]:
        shapes.append(small)
    return shapes


def bundle_jobs(folder: Path, manifest: BundleManifest, generator: nn.Module | None = None,
                face_generator: nn.Module | None = None,
                dynamic: bool = True) -> list[ExportJob]:
    """The networks of the bundle at ``folder``: G, then the face generator when there is one.

    The networks may be left out (None) by a caller that only wants the specs and
    fingerprints, to look for existing ONNX files without loading PyTorch weights.
    """
    width, height = manifest.generator_size  # G's input: its person window, or the canvas
    config = manifest.generator
    spec = generator_spec(config)
    jobs = [ExportJob(spec, generator, config,
                      _check_shapes(config.input_nc, (height, width), spec.size_multiple, dynamic),
                      network_fingerprint(folder / GENERATOR_FILE, config), manifest.name)]
    face = manifest.face_generator
    if face is not None:
        spec = face_generator_spec(face)
        side = face_box_size(manifest.resolution[1], face.size_multiple)
        jobs.append(ExportJob(spec, face_generator, face,
                              _check_shapes(face.output_nc, (side, side), spec.size_multiple,
                                            dynamic),
                              network_fingerprint(folder / FACE_GENERATOR_FILE, face),
                              manifest.name))
    return jobs


# --------------------------------------------------------------------------------------------
# Exporting one network
# --------------------------------------------------------------------------------------------


def _random_inputs(spec: NetworkSpec, shape: tuple[int, ...], seed: int) -> list[torch.Tensor]:
    """Uniform inputs in [-1, 1], one tensor per network input, reproducible."""
    gen = torch.Generator().manual_seed(seed)
    return [torch.rand(shape, generator=gen) * 2 - 1 for _ in spec.input_names]


def _trace_to_file(job: ExportJob, path: Path, opset: int, dynamic: bool) -> None:
    """torch.onnx.export with the TorchScript exporter (see the module docstring)."""
    smallest = min(job.check_shapes, key=lambda s: s[0] * s[2] * s[3])
    example = tuple(_random_inputs(job.spec, (1, *smallest[1:]), seed=0))
    names = [*job.spec.input_names, job.spec.output_name]
    axes = {name: {0: "batch", 2: "height", 3: "width"} for name in names} if dynamic else None
    net = job.network
    assert net is not None, "checked by export_network"
    net.eval()
    with warnings.catch_warnings():
        # Deprecation notice, tracer warnings from the size checks in forward (they hold for
        # any valid size), "instance_norm is set to train=True" (correct: instance norm always
        # uses the statistics of its input), constant folding notes.
        warnings.simplefilter("ignore")
        torch.onnx.export(net, example, str(path), dynamo=False, opset_version=opset,
                          input_names=list(job.spec.input_names),
                          output_names=[job.spec.output_name], dynamic_axes=axes,
                          do_constant_folding=True)


def _add_metadata(path: Path, job: ExportJob, opset: int) -> None:
    """Store what the file is and what it was made from.

    Protobuf merges concatenated messages (repeated fields append, single ones are
    replaced), so appending a ModelProto that holds only the metadata adds it without
    parsing and rewriting a model of hundreds of MiB (which took 18 s and 1.3 GiB of extra
    memory for the paper's generator). The exporter has already run ONNX's checker, and
    ONNX Runtime loads the result in ``compare_with_torch``.
    """
    import onnx

    meta = {
        "network": job.spec.name,
        "bundle": job.bundle_name,
        "config": json.dumps(job.config.to_dict(), sort_keys=True),
        "size_multiple": str(job.spec.size_multiple),
        "fingerprint": job.fingerprint,
        "exporter": f"torch {torch.__version__} TorchScript exporter, opset {opset}",
    }
    extra = onnx.ModelProto()
    for key, value in meta.items():
        extra.metadata_props.add(key=META_PREFIX + key, value=value)
    extra.doc_string = f"Everybody Dance Now {job.spec.name} of bundle {job.bundle_name!r}"
    with open(path, "ab") as f:
        f.write(extra.SerializeToString())


def compare_with_torch(path: Path, job: ExportJob, atol: float) -> float:
    """Largest |ONNX Runtime - PyTorch| over the job's check shapes; raises past ``atol``."""
    net = job.network
    if net is None:
        raise ValueError(f"compare_with_torch: the {job.spec.name} network was not given")
    session = OnnxGenerator(path)
    worst = 0.0
    for i, shape in enumerate(job.check_shapes):
        inputs = _random_inputs(job.spec, shape, seed=1 + i)
        with torch.inference_mode():
            expected = net(*inputs)
        got = session(*inputs)
        if got.shape != expected.shape:
            raise OnnxMismatchError(f"{job.spec.name}: ONNX Runtime output {tuple(got.shape)} "
                                    f"!= PyTorch {tuple(expected.shape)} for input {shape}")
        diff = float((got - expected).abs().max())
        if not diff <= atol:  # also catches NaN
            raise OnnxMismatchError(f"{job.spec.name}: ONNX Runtime differs from PyTorch by "
                                    f"{diff:.3g} (tolerance {atol:g}) for input {shape}")
        worst = max(worst, diff)
    return worst


def export_network(job: ExportJob, path: str | Path, opset: int = DEFAULT_OPSET,
                   dynamic: bool = True, check: bool = True,
                   atol: float = DEFAULT_ATOL) -> ExportedNetwork:
    """Write ``job``'s network to ``path`` as ONNX; an old file there is replaced only by a
    new one that passed the checks."""
    require_onnx_packages()
    check_opset(opset)
    if job.network is None:
        raise ValueError(f"export_network: the {job.spec.name} network was not given")
    path = Path(path)
    if path.is_dir():
        raise InputError(path, "is a folder; expected the path of an .onnx file to write")
    with atomic_file(path) as tmp:  # an old file is replaced only by one that passed
        _trace_to_file(job, tmp, opset, dynamic)
        _add_metadata(tmp, job, opset)
        diff = compare_with_torch(tmp, job, atol) if check else None
    return ExportedNetwork(job.spec.name, path, path.stat().st_size, diff,
                           list(job.check_shapes) if check else [])


# --------------------------------------------------------------------------------------------
# Exporting a bundle
# --------------------------------------------------------------------------------------------


def export_bundle_onnx(bundle_dir: str | Path, out_dir: str | Path | None = None,
                       opset: int = DEFAULT_OPSET, dynamic: bool = True, check: bool = True,
                       atol: float = DEFAULT_ATOL) -> OnnxExport:
    """Export the bundle at ``bundle_dir`` to ONNX.

    Writes ``generator.onnx`` and, when the bundle has a face generator,
    ``face_generator.onnx`` into ``out_dir`` (default: the bundle folder itself, where
    ``load_cpu_networks`` looks first). ``dynamic`` leaves batch, height and width free (else
    the graph is fixed to batch 1 at the training resolution). With ``check`` every file is
    compared with PyTorch (see ``compare_with_torch``) before it is written.
    """
    require_onnx_packages()
    check_opset(opset)
    bundle = load_bundle(bundle_dir, device="cpu")
    folder = bundle.folder if out_dir is None else Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise InputError(folder, "exists and is not a folder")
    jobs = bundle_jobs(bundle.folder, bundle.manifest, bundle.generator, bundle.face_generator,
                       dynamic)
    exported = [export_network(job, folder / job.spec.file, opset, dynamic, check, atol)
                for job in jobs]
    return OnnxExport(folder, exported)


def describe(result: ExportedNetwork) -> str:
    """One line for the command line."""
    size = f"{result.size_bytes / 2**20:.1f} MiB"
    if result.max_abs_diff is None:
        return f"{result.path}: {size} (not checked)"
    shapes = ", ".join("x".join(map(str, s)) for s in result.checked_shapes)
    return (f"{result.path}: {size}, max |ONNX Runtime - PyTorch| = {result.max_abs_diff:.2g} "
            f"(inputs {shapes})")
