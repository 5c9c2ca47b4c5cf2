"""The model kept between jobs: the worker's and a cluster node's `ModelSource`.

The worker of ``python -m backend serve`` keeps one (`backend.worker.serve`), and so does
each process of a Ray cluster that runs transfer tasks (`backend.cluster.remote`).
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import torch

from ..models import Bundle, load_bundle
from ..onnx import CpuNetworks, load_cpu_networks

log = logging.getLogger(__name__)


class ModelCache:
    """The most recently used model bundle, kept loaded for the next job.

    It implements the transfer's ``ModelSource``: ``get`` hands out the bundle's PyTorch
    networks on a device, ``cpu_networks`` its CPU networks (ONNX Runtime sessions, or the
    PyTorch modules of the bundle loaded on the CPU), each loaded once and then reused, so a
    second job with the same bundle loads nothing. A bundle is identified by its resolved
    folder and its manifest's modification time (saving a bundle rewrites the manifest, so a
    re-exported bundle is loaded afresh). One bundle at a time: a GPU rarely holds two
    generators comfortably. ``loads`` counts the loads (a test's window into the cache).
    """

    def __init__(self) -> None:
        self._key: tuple | None = None
        self._bundle: Bundle | None = None
        self._device: str | None = None  # where _bundle's networks are
        self._cpu: dict[str, CpuNetworks] = {}  # ONNX Runtime's sessions
        self.loads = 0

    @staticmethod
    def _key_of(folder: Path) -> tuple:
        folder = folder.expanduser().resolve()
        try:
            mtime = (folder / "manifest.json").stat().st_mtime_ns
        except OSError:
            mtime = None  # load_bundle will say what is wrong with the folder
        return str(folder), mtime

    def _select(self, folder: Path) -> str:
        """Forget the kept model unless it is ``folder``'s; the folder's name for the log."""
        key = self._key_of(folder)
        if key != self._key:
            self.clear()  # free the old model before loading the new one
            self._key = key
        return key[0]

    def get(self, folder: Path, device: str) -> Bundle:
        """The bundle at ``folder`` with its networks on ``device``."""
        name = self._select(folder)
        if self._bundle is None or self._device != str(device):
            log.info("loading model bundle %s on %s", name, device)
            started = time.monotonic()
            self._bundle, self._device = load_bundle(folder, device=device), str(device)
            self.loads += 1
            log.info("model bundle loaded in %.2f s", time.monotonic() - started)
        else:
            log.info("reusing the loaded model bundle %s", name)
        return self._bundle

    def cpu_networks(self, folder: Path, backend: str) -> CpuNetworks:
        """The CPU networks of the bundle at ``folder`` on ``backend`` ("onnx" or "torch")."""
        if backend == "torch":  # the bundle's own modules, on the CPU
            return load_cpu_networks(self.get(folder, "cpu"), "torch")
        name = self._select(folder)
        if backend in self._cpu:
            log.info("reusing the loaded model bundle %s (%s)", name, backend)
            return self._cpu[backend]
        log.info("loading model bundle %s for %s on the CPU", name, backend)
        started = time.monotonic()
        # A bundle already loaded on the CPU spares loading its weights again should the
        # networks need exporting; otherwise only the (cached) ONNX files are read.
        source = self._bundle if self._bundle is not None and self._device == "cpu" else folder
        self._cpu[backend] = load_cpu_networks(source, backend)
        self.loads += 1
        log.info("model bundle loaded in %.2f s", time.monotonic() - started)
        return self._cpu[backend]

    def clear(self) -> None:
        self._bundle, self._device, self._key = None, None, None
        self._cpu = {}
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
