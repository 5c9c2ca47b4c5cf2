"""Shared fixtures: real footage from ../shared/data, a private cache, small generated clips."""

from __future__ import annotations

import os
from contextlib import contextmanager
from pathlib import Path

import pytest

from .ray_cluster import ray_cluster  # noqa: F401 - one local Ray for the session (a fixture)

REPO = Path(__file__).resolve().parents[1]
# The tests' reference frames and runs are fp32: precision "auto" means fp32 in them, as on a
# CPU without native bf16 (backend/runtime.py). The bf16 path has tests of its own that set
# this to "1"; subprocesses (the worker, the command lines) inherit it.
os.environ.setdefault("EVERYBODY_DANCE_CPU_BF16", "0")
# Real footage: ../shared/data next to the checkout, or where $EVERYBODY_DANCE_FOOTAGE says
# (a checkout elsewhere, e.g. a git worktree).
SHARED_DATA = Path(os.environ.get("EVERYBODY_DANCE_FOOTAGE") or REPO.parent / "shared" / "data")


def footage_path(name: str) -> Path:
    """Path of a clip in ../shared/data, or a clean skip where it is absent."""
    path = SHARED_DATA / name
    if not path.is_file():
        pytest.skip(f"real footage {name} not found in {SHARED_DATA} (absent outside the dev setup)")
    return path


@pytest.fixture
def footage():
    return footage_path


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own cache root so no test sees another's cached poses."""
    root = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("EVERYBODY_DANCE_CACHE", str(root))
    return root


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


@pytest.fixture
def one_thread():
    with single_thread():
        yield


def train_on_one_thread(run: Path, opts, steps: int) -> list[dict]:
    """``training.trainer.train`` for ``steps`` steps per stage, on one thread (tests' tiny
    models)."""
    from training.trainer import train

    with single_thread():
        return train(run, opts, steps=steps)


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    """A cache root shared within the session, for expensive detections reused by many tests."""
    return tmp_path_factory.mktemp("session-cache")


os.environ.setdefault("TQDM_DISABLE", "1")
