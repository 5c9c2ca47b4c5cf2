"""Stage 6, transfer: a source's dance performed by the target of a model bundle.

``run_transfer(TransferJob(source, model, output_dir, ...))`` runs (or resumes) one job in a
job folder; ``python -m backend retarget`` is its command line. See `pipeline` for the flow
(`TransferRun`), `job_setup` for what a run settles first (the job's identity among it),
`job` for the folder, `plan` for the pose pass, `target_spec` for what the job draws,
`showing` for what its frames show, `generate` for the generator loop, `nearest` for the
paper's nearest-neighbour baseline and `inference` for the CPU's backend (ONNX Runtime or
PyTorch); device and precision are ``backend.runtime``'s.
"""

from .inference import CPU_BACKEND_CHOICES, LoadEachTime, ModelSource, choose_backend
from .job import JobFolder, TransferJob, TransferResult
from .pipeline import run_transfer

__all__ = ["CPU_BACKEND_CHOICES", "JobFolder", "LoadEachTime", "ModelSource", "TransferJob",
           "TransferResult", "choose_backend", "run_transfer"]
