"""A real Ray cluster for the tests: started once per session in the test's process, stopped
at its end (imported as a fixture by the test modules that need it).

Its servers listen on loopback only: Ray gives a node the loopback address, and binds its
servers to it, where clusters of several machines are off (RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0,
read when ray is imported; the default on macOS and Windows), which every Ray process the tests
start inherits. The cluster has 2 CPUs and no dashboard, and token authentication (Ray 2.60's
default) guards it.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import pytest

CPUS = 2
os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # loopback only (see above)


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory) -> str:
    """The address of a running local Ray cluster (this process is its driver)."""
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install -e '.[cluster]')")
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Its processes keep the environment of ray.init: a pose cache of the session's own (Ray
    # gives each task one thread, OMP_NUM_THREADS).
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("EVERYBODY_DANCE_CACHE", str(tmp_path_factory.mktemp("ray-cache")))
        ray.init(num_cpus=CPUS, include_dashboard=False, log_to_driver=False,
                 object_store_memory=128 * 2**20)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def can_unshare() -> bool:
    """Whether this process may make a mount namespace (root, or a user namespace allowed)."""
    try:
        return subprocess.run(["unshare", "--mount", "--propagation", "private", "true"],
                              capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


class BlindHead:
    """A second Ray cluster, one CPU, in a mount namespace of its own where ``hidden`` is an
    empty folder: a node that does not see the job folders. Stopped by ending its process
    group (the processes this test started). Its token (`env`) is its own: a process joins it
    with that environment, as from another machine."""

    def __init__(self, hidden: Path) -> None:
        self.port = free_port()
        self.env = {**os.environ, "RAY_AUTH_MODE": "token", "RAY_AUTH_TOKEN": uuid.uuid4().hex}
        self.env.pop("RAY_ADDRESS", None)
        self.temp = tempfile.mkdtemp(prefix="rayb", dir="/tmp")  # short: Ray's socket paths
        ray = [sys.executable, "-m", "ray.scripts.scripts", "start", "--head",
               f"--port={self.port}", "--num-cpus=1", "--include-dashboard=false",
               f"--temp-dir={self.temp}", "--block"]
        script = f'mount -t tmpfs none "$1" && shift && exec "$@"'
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private", "sh", "-c", script, "sh",
             str(hidden), *ray], start_new_session=True, stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE, env=self.env)

    def wait_ready(self, timeout: float = 90.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"ray start failed: {self.proc.stderr.read().decode()[-3000:]}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                time.sleep(2.0)  # the GCS answers before the node has registered
                return
            except OSError:
                time.sleep(0.5)
        raise TimeoutError("the blind Ray head did not start")

    def stop(self) -> None:
        """SIGTERM ends Ray's processes; ``ray start --block`` itself then waits forever."""
        try:
            os.killpg(self.proc.pid, signal.SIGTERM)
            self.proc.wait(5)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            pass
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait()
        shutil.rmtree(self.temp, ignore_errors=True)
