"""Running one exported generator with ONNX Runtime on the CPU.

``OnnxGenerator`` is called exactly like the PyTorch generator it was exported from:
``generator(x)`` with x N x 6 x H x W in [-1, 1] returns N x 3 x H x W, and
``face_generator(label_crop, face_crop)`` returns the face residual. Tensors in, tensor out
(numpy arrays in, array out). Each file carries our metadata (``everybody_dance.*``, written
by `export`): which network it is and the fingerprint of the weights it was made from.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch

from backend.errors import InputError

META_PREFIX = "everybody_dance."


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


def metadata_of(model_meta: dict[str, Any]) -> dict[str, str]:
    """Our ``everybody_dance.*`` metadata from an ONNX file's metadata map, prefix removed."""
    return {k[len(META_PREFIX):]: str(v) for k, v in model_meta.items()
            if k.startswith(META_PREFIX)}
