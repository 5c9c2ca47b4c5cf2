"""Joining a Ray cluster: "local" (start or join one on this machine) or an address.

Ray is an optional extra; `require_ray` is the one place that imports it for the first time,
so a machine without it gets one clear message (exit 2 on the command line) and nothing else
changes.
"""

from __future__ import annotations

import os
import socket
import sys
from dataclasses import dataclass
from types import ModuleType
from typing import Any

from ..errors import BackendError

LOCAL = "local"
INSTALL = "pip install -e '.[cluster]'"
# An embedded Ray passes only job descriptions and results through its object store: a small
# store spares the machine's shared memory (Ray's default is 30% of the RAM).
LOCAL_OBJECT_STORE_BYTES = 128 * 2**20
# Ray retries an address where nothing answers for many minutes; a plain TCP connection to it
# first says so at once.
REACH_TIMEOUT_S = 10.0


class ClusterUnavailable(BackendError):
    """Ray is not installed, or the cluster cannot be joined."""

    code = "cluster_unavailable"


def require_ray() -> ModuleType:
    """The ``ray`` module, or `ClusterUnavailable` saying how to install it."""
    try:
        import ray
    except ImportError:
        raise ClusterUnavailable(
            f"--cluster needs Ray, which is not installed for {sys.executable}: install the "
            f"project's cluster extra in its folder with  {INSTALL}") from None
    return ray


@dataclass(frozen=True)
class Cluster:
    """The joined cluster: its address and what its nodes offer in all."""

    address: str  # the cluster's GCS address (host:port), what other machines join
    gpus: float
    cpus: float

    @property
    def slots(self) -> int:
        """Jobs it runs at once: one per GPU, else one per CPU."""
        return max(1, int(self.gpus or self.cpus))

    def task_resources(self, device: str) -> dict[str, Any]:
        """What one job's task asks for: one GPU where the cluster has GPUs (and the job
        may use one), else one CPU."""
        if self.gpus >= 1 and device in ("auto", "cuda"):
            return {"num_gpus": 1, "num_cpus": 1}
        return {"num_gpus": 0, "num_cpus": 1}


def connect(address: str) -> Cluster:
    """Join the cluster at ``address`` ("local": the one on this machine, started here when
    there is none); a process already joined stays on its cluster."""
    ray = require_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network calls of its own
    if not ray.is_initialized():
        try:
            if address == LOCAL:
                _start_or_join_local(ray)
            else:
                check_reachable(address)
                ray.init(address=address, log_to_driver=False)
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ClusterUnavailable(
                f"cannot join the Ray cluster at {address}: {exc} (is it started with  ray start "
                f"--head ? Where it uses token authentication, this machine needs "
                f"RAY_AUTH_MODE=token and its token; see the README)") from None
    resources = ray.cluster_resources()
    return Cluster(address=ray.get_runtime_context().gcs_address,
                   gpus=float(resources.get("GPU", 0)), cpus=float(resources.get("CPU", 0)))


def check_reachable(address: str) -> None:
    """`ClusterUnavailable` unless something accepts connections at ``HOST:PORT``."""
    host, _, port = address.rpartition("://")[2].rpartition(":")
    if not host or not port.isdigit():
        raise ClusterUnavailable(f"--cluster {address}: give 'local' or a Ray head node's "
                                 f"HOST:PORT (as `ray start --head` prints it)")
    try:
        socket.create_connection((host, int(port)), timeout=REACH_TIMEOUT_S).close()
    except OSError as exc:
        raise ClusterUnavailable(f"cannot join the Ray cluster at {address}: nothing answers "
                                 f"there ({exc.strerror or exc}); start one with  ray start "
                                 f"--head  (see the README)") from None


def _start_or_join_local(ray: ModuleType) -> None:
    """Join the cluster started on this machine (``ray start --head``), else start an
    embedded one (no dashboard) that ends with this process."""
    try:
        ray.init(address="auto", log_to_driver=False)
    except ConnectionError:
        ray.init(include_dashboard=False, log_to_driver=False,
                 object_store_memory=LOCAL_OBJECT_STORE_BYTES)
