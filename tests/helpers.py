"""Helpers shared by several test files (fixtures are in conftest.py): where things are, tiny
real bundles and clips, a worker through the add-on's client or through bare pipes, and the
tests' tiny trainings on one thread. Test files import from here, never from each other.

Heavy imports (torch, the backend) stay inside the functions: conftest imports this module
for every test run.
"""

from __future__ import annotations

import json
import os
import queue
import subprocess
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    import torch

    from backend.worker.protocol import Run
    from blender_addon.backend_client import BackendClient

REPO = Path(__file__).resolve().parents[1]
# Real footage: ../shared/data next to the checkout, or where $EVERYBODY_DANCE_FOOTAGE says
# (a checkout elsewhere, e.g. a git worktree).
SHARED_DATA = Path(os.environ.get("EVERYBODY_DANCE_FOOTAGE") or REPO.parent / "shared" / "data")
PYTHON = sys.executable
TIMEOUT = 120.0  # generous: the test machine is shared and slow to import torch
N_FRAMES = 12  # frames of the `media` fixture's clip: at a few frames a second on a CPU, a
#                cancel at frame 1 lands mid-job


def footage_path(name: str) -> Path:
    """Path of a clip in ../shared/data, or a clean skip where it is absent."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"real footage {name} not found in {SHARED_DATA} (absent outside the dev setup)")
    return path


# -- tiny networks on shared cores -------------------------------------------------------------


@contextmanager
def single_thread():
    """Tiny networks on shared cores: one thread is fastest (more only wait on each other),
    and subprocesses use one too, so frames made in and out of the test's process are the
    same bytes."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def train_on_one_thread(run: Path, opts, steps: int) -> list[dict]:
    """``training.trainer.train`` for ``steps`` steps per stage, on one thread (tests' tiny
    models)."""
    from training.trainer import train

    with single_thread():
        return train(run, opts, steps=steps)


def random_vgg_state() -> dict[str, torch.Tensor]:
    """A VGG19 state dict with torchvision's keys and shapes (He-scaled random weights), plus
    keys of the deeper layers and classifier that the loader must ignore."""
    import math

    import torch

    from training.models.vgg import VGG19Features

    gen = torch.Generator().manual_seed(1)
    state = {}
    for key, value in VGG19Features().state_dict().items():
        fan_in = value[0].numel() if value.dim() > 1 else 1
        scale = math.sqrt(2.0 / fan_in) if value.dim() > 1 else 0.01
        state[key] = torch.randn(value.shape, generator=gen) * scale
    state["features.30.weight"] = torch.zeros(4, 4, 3, 3)  # deeper layers: ignored
    state["classifier.6.bias"] = torch.zeros(1000)
    return state


# -- tiny real model bundles and clips ---------------------------------------------------------


def make_bundle(folder: Path, normalization: dict, resolution=(128, 64), face=True) -> Path:
    """An untrained tiny bundle (weights fixed by the seed) with real target statistics."""
    import torch

    from backend.labels import LabelStyle
    from backend.models import (BundleManifest, FaceGeneratorConfig, GeneratorConfig,
                                build_face_generator, build_generator, save_bundle)

    torch.manual_seed(0)
    config = GeneratorConfig(ngf=8, n_downsample_global=2, n_blocks_global=2)
    face_config = FaceGeneratorConfig(ngf=8, n_downsampling=2, n_blocks=1) if face else None
    manifest = BundleManifest(name="tiny", generator=config, resolution=resolution,
                              label_style=LabelStyle().to_dict(), normalization=normalization,
                              face_generator=face_config)
    return save_bundle(folder, manifest, build_generator(config),
                       build_face_generator(face_config) if face else None)


def make_tiny_bundle(folder: Path, format_version: int | None = None) -> Path:
    """A real, tiny model bundle with the demo target's normalization statistics."""
    import torch

    from backend.demo import target_motion
    from backend.labels import LabelStyle
    from backend.models import BundleManifest, GeneratorConfig, build_generator, save_bundle
    from backend.normalize import compute_stats

    tiny = GeneratorConfig(ngf=8, n_downsample_global=2, n_blocks_global=2)
    torch.manual_seed(0)
    stats = compute_stats(target_motion(60, fps=30.0, size=(128, 128)))
    manifest = BundleManifest(name="tiny-demo-target", generator=tiny, resolution=(64, 32),
                              label_style=LabelStyle().to_dict(), normalization=stats.to_dict())
    save_bundle(folder, manifest, build_generator(tiny))
    if format_version is not None:
        path = folder / "manifest.json"
        data = json.loads(path.read_text())
        data["format_version"] = format_version
        path.write_text(json.dumps(data))
    return folder


def make_demo_media(root: Path, n_frames: int) -> dict[str, Path]:
    """A clip of the demo performer dancing (12 fps, 128x128) and a tiny bundle, in ``root``."""
    from backend.demo import make_demo_clip

    make_demo_clip(root / "dance.mp4", "dance", n_frames=n_frames, fps=12.0, size=(128, 128),
                   progress=False)
    return {"clip": root / "dance.mp4", "bundle": make_tiny_bundle(root / "bundle")}


# -- the worker ----------------------------------------------------------------------------------


def start_client(tmp_path: Path, name: str = "worker") -> BackendClient:
    """A started client whose worker keeps its caches under ``tmp_path`` (not the user's)."""
    from blender_addon.backend_client import BackendClient

    env = {**os.environ, "EVERYBODY_DANCE_CACHE": str(tmp_path / "cache")}
    client = BackendClient(PYTHON, log_path=tmp_path / f"{name}.log", args=["--device", "cpu"],
                           env=env)
    client.start(timeout=TIMEOUT)
    return client


def job(media: dict[str, Path], out: Path, job_id: str, **fields) -> Run:
    """A ``run`` request of the `media` fixture's clip and bundle into ``out``."""
    from backend.worker.protocol import Run

    return Run(job_id=job_id, source=str(media["clip"]), model=str(media["bundle"]),
               output_dir=str(out), **fields)


class RawWorker:
    """The worker with bare pipes, to send what the client never would and read every byte."""

    def __init__(self, log: Path) -> None:
        from blender_addon.core.locations import worker_environment

        self.log = log
        with open(log, "wb") as stderr:
            self.proc = subprocess.Popen(
                [PYTHON, "-m", "backend", "serve", "--device", "cpu"], stdin=subprocess.PIPE,
                stdout=subprocess.PIPE, stderr=stderr, cwd=REPO, env=worker_environment(
                    REPO, {**os.environ, "EVERYBODY_DANCE_CACHE": str(log.parent / "cache")}))
        self.lines: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for raw in iter(self.proc.stdout.readline, b""):
            self.lines.put(raw)
        self.lines.put(None)

    def send(self, data: bytes | str) -> None:
        self.proc.stdin.write(data.encode() if isinstance(data, str) else data)
        self.proc.stdin.flush()

    def reply(self, timeout: float = TIMEOUT):
        from backend.worker.protocol import parse_line

        raw = self.lines.get(timeout=timeout)
        assert raw is not None, f"worker closed stdout; log:\n{self.log.read_text()}"
        return parse_line(raw.decode())

    def close(self) -> int:
        if self.proc.poll() is None:
            self.proc.kill()
        return self.proc.wait(30)


def new_run(prepared: Path, tmp_path: Path, name: str = "run") -> Path:
    """A training run folder of its own holding a copy of ``prepared``'s prepared target."""
    import shutil

    run = tmp_path / name
    shutil.copytree(prepared / "prepared", run / "prepared")
    return run
