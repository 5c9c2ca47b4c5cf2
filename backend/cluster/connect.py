"""Joining a Ray cluster: "local" (this machine's) or an address.

"local" joins the cluster the user started on this machine (``RAY_ADDRESS``, or the one
``ray start --head`` recorded), else starts an *embedded* cluster that belongs to this process
alone: its servers listen on loopback only (Ray's single-machine mode, as on macOS and
Windows: nothing reaches it from the network, and the DESIGN's rule for services the program
starts for itself), its files are in a temporary folder of its own (so a second ``--cluster
local`` command started meanwhile starts its own instead of joining this one, which ends with
this process), and it ends, folder and all, with this process. A remote address is the user's
choice: its servers listen where they were started (see the README).

Ray is an optional extra; `require_ray` is the one place that imports it for the first time,
so a machine without it gets one clear message (exit 2 on the command line) and nothing else
changes.
"""

from __future__ import annotations

import atexit
import ipaddress
import logging
import os
import shutil
import socket
import sys
import tempfile
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
LOOPBACK = "127.0.0.1"  # where an embedded cluster's node is, and all its servers listen
# Where an embedded cluster's folder goes: Ray's sockets live under it and a socket's path is
# short (about 100 bytes), so under /tmp where there is one, as Ray's own (or RAY_TMPDIR's).
SHORT_TEMP = "/tmp" if os.path.isdir("/tmp") else None


# Which cluster this process joined, in words (`Cluster.about`): a process joins one, once.
_joined = ""


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
    about: str = ""  # which cluster it is, for the logs: embedded here (loopback only), ...

    def describe(self) -> str:
        """"ADDRESS (ABOUT)", as the logs name it."""
        return f"{self.address} ({self.about})" if self.about else self.address

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
    global _joined
    ray = require_ray()
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")  # no network calls of its own
    if not ray.is_initialized():
        try:
            if address == LOCAL:
                _joined = _start_or_join_local(ray)
            else:
                check_reachable(address)
                ray.init(address=address, log_to_driver=False)
                _joined = f"the cluster at {address}"
        except (ConnectionError, RuntimeError, ValueError) as exc:
            raise ClusterUnavailable(
                f"cannot join the Ray cluster at {address}: {exc} (is it started with  ray start "
                f"--head ? Where it uses token authentication, this machine needs "
                f"RAY_AUTH_MODE=token and its token; see the README)") from None
    resources = ray.cluster_resources()
    return Cluster(address=ray.get_runtime_context().gcs_address,
                   gpus=float(resources.get("GPU", 0)), cpus=float(resources.get("CPU", 0)),
                   about=_joined)


def check_reachable(address: str) -> None:
    """`ClusterUnavailable` unless something accepts connections at ``HOST:PORT``."""
    host, _, port = address.rpartition("://")[2].rpartition(":")
    if host.startswith("[") and host.endswith("]"):  # an IPv6 address, [::1]:6379
        host = host[1:-1]
    if not host or not port.isdigit() or "[" in host or "]" in host:
        raise ClusterUnavailable(f"--cluster {address}: give 'local' or a Ray head node's "
                                 f"HOST:PORT (as `ray start --head` prints it; an IPv6 "
                                 f"address in brackets, [ADDRESS]:PORT)")
    try:
        socket.create_connection((host, int(port)), timeout=REACH_TIMEOUT_S).close()
    except OSError as exc:
        raise ClusterUnavailable(f"cannot join the Ray cluster at {address}: nothing answers "
                                 f"there ({exc.strerror or exc}); start one with  ray start "
                                 f"--head  (see the README)") from None


def _start_or_join_local(ray: ModuleType) -> str:
    """Join the cluster the user started on this machine, else start an embedded one
    (`_start_embedded`); which one, in words."""
    if os.environ.get("RAY_ADDRESS"):  # the user's choice
        check_reachable(os.environ["RAY_ADDRESS"])
        ray.init(address=os.environ["RAY_ADDRESS"], log_to_driver=False)
        return "RAY_ADDRESS"
    started = _recorded_by_ray_start()
    if started:
        ray.init(address=started, log_to_driver=False)
        return "started on this machine with  ray start"
    _start_embedded(ray)
    return f"embedded in this process, listening on {LOOPBACK} only"


def _recorded_by_ray_start() -> str | None:
    """The address ``ray start --head`` recorded on this machine, if its cluster still
    answers (the record outlives a head that was killed)."""
    from ray._private.utils import read_ray_address  # where `ray start` writes it

    address = read_ray_address()
    if not address:
        return None
    try:
        check_reachable(address)
    except ClusterUnavailable:
        return None
    return address


def _start_embedded(ray: ModuleType) -> None:
    """Start a cluster of this process alone (no dashboard): on loopback, in a folder of its
    own, ended with this process. Ray's single-machine mode (``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER
    =0``, its default on macOS and Windows) gives the node the loopback address, where all of
    its servers then listen; Ray reads it when imported, so the setting that import made is
    changed here too, and the processes the cluster starts inherit the variable."""
    from ray._private import ray_constants

    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray_constants.ENABLE_RAY_CLUSTER = False
    folder = tempfile.mkdtemp(prefix="ray-", dir=os.environ.get("RAY_TMPDIR") or SHORT_TEMP)
    atexit.register(_end_embedded, ray, folder)  # runs before Ray's own hook (LIFO)
    # Ray's own lines about a cluster that lives and ends within this command (that it
    # started; that token authentication, its default, is on and how to turn it off) are
    # not the user's concern: its errors still raise.
    ray.init(include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR,
             object_store_memory=LOCAL_OBJECT_STORE_BYTES, _temp_dir=folder)
    ip = ray.util.get_node_ip_address()
    if not ipaddress.ip_address(ip).is_loopback:  # a Ray that no longer does as said above
        ray.shutdown()
        raise ClusterUnavailable(f"the embedded Ray cluster would listen on {ip}, not on "
                                 f"loopback only: start one with  ray start --head  and give "
                                 f"its address (see the README)")


def _end_embedded(ray: ModuleType, folder: str) -> None:
    ray.shutdown()
    shutil.rmtree(folder, ignore_errors=True)
