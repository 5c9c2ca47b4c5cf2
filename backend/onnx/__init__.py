"""ONNX export of a model bundle's generators, and an ONNX Runtime path for CPU inference.

``export.py`` writes ``generator.onnx`` (and ``face_generator.onnx``) and checks that ONNX
Runtime reproduces PyTorch's output; ``session.py`` runs one (``OnnxGenerator``);
``runtime.py`` picks the CPU backend (``choose_cpu_backend``) and hands out a bundle's
networks for it (``load_cpu_networks``). PyTorch stays the reference: every ONNX file is
checked against it when it is written.

``onnx`` and ``onnxruntime`` are dependencies of the project, but an environment may lack
them (a Python set up by hand for the add-on): ``onnx_available()`` says whether they are
installed, and without them everything runs on PyTorch.
"""

from .runtime import (CPU_BACKEND_ENV, CPU_BACKENDS, CpuNetworks, choose_cpu_backend,
                      load_cpu_networks, onnx_available)
from .session import OnnxGenerator

__all__ = [
    "CPU_BACKEND_ENV", "CPU_BACKENDS", "CpuNetworks", "OnnxGenerator", "choose_cpu_backend",
    "load_cpu_networks", "onnx_available",
]
