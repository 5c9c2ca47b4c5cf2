"""ONNX export of a model bundle's generators, and an ONNX Runtime path for CPU inference.

``export.py`` writes ``generator.onnx`` (and ``face_generator.onnx``) and checks that ONNX
Runtime reproduces PyTorch's output; ``runtime.py`` runs them (``OnnxGenerator``) and picks
the CPU backend (``choose_cpu_backend``, ``load_cpu_networks``). PyTorch stays the reference:
every ONNX file is checked against it when it is written.

The ``onnx`` and ``onnxruntime`` packages are optional; ``onnx_available()`` says whether
they are installed, and without them everything runs on PyTorch.
"""

from .runtime import (CPU_BACKEND_ENV, CPU_BACKENDS, CpuNetworks, OnnxGenerator,
                      choose_cpu_backend, load_cpu_networks, onnx_available)

__all__ = [
    "CPU_BACKEND_ENV", "CPU_BACKENDS", "CpuNetworks", "OnnxGenerator", "choose_cpu_backend",
    "load_cpu_networks", "onnx_available",
]
