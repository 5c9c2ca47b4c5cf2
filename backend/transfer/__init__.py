"""Stage 6, transfer: a source's dance performed by the target of a model bundle.

``run_transfer(TransferJob(source, model, output_dir, ...))`` runs (or resumes) one job in a
job folder; ``python -m backend retarget`` is its command line. See `pipeline` for the flow,
`job` for the folder, `generate` for the generator loop, `nearest` for the paper's
nearest-neighbour baseline, `device` for device and precision choice and `inference` for
the CPU's backend (ONNX Runtime or PyTorch).
"""

from .device import Runtime, resolve_device, resolve_precision
from .inference import CPU_BACKEND_CHOICES, LoadEachTime, ModelSource, choose_backend
from .job import JobFolder, TransferJob, TransferResult
from .pipeline import run_transfer

__all__ = ["CPU_BACKEND_CHOICES", "JobFolder", "LoadEachTime", "ModelSource", "Runtime",
           "TransferJob", "TransferResult", "choose_backend", "resolve_device",
           "resolve_precision", "run_transfer"]
