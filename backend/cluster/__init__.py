"""Transfer jobs as tasks of a Ray cluster (``--cluster ADDRESS``), past one machine.

    caller (retarget command, or the worker)              a node of the cluster
    ------------------------------------------            ---------------------------------
    `connect`: join the cluster ("local": this machine)
    `visibility`: a token file beside the job folder  ->  the task finds it, or fails the job
    `remote.run_job` as a Ray task (1 GPU, else 1 CPU) ->  `run_transfer` in the job folder
    `follow`: status.json -> progress; Ctrl-C/cancel  ->  ray.cancel: the run's own cancel
              check the folder here holds the frames      (KeyboardInterrupt, folder resumable)

The job folder is the truth: the task writes it as any run does (status.json, log.txt, the
frames), the caller reads it. A worker process or node that dies makes Ray run the task again
(`MAX_RETRIES`); the new run resumes from the folder, so the frames are those of an
uninterrupted run. Ray is an optional extra (``pip install -e '.[cluster]'``); without it
`require_ray` says how to install it.
"""

from .connect import ClusterUnavailable, connect, require_ray
from .follow import run_on_cluster

__all__ = ["ClusterUnavailable", "connect", "require_ray", "run_on_cluster"]
