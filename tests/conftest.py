"""Shared fixtures: real footage from ../shared/data, a private cache, a worker and its media,
one thread for tiny networks. Shared functions and constants are in helpers.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .helpers import N_FRAMES, footage_path, make_demo_media, single_thread, start_client
from .ray_cluster import ray_cluster  # noqa: F401 - one local Ray for the session (a fixture)

# The tests' reference frames and runs are fp32: precision "auto" means fp32 in them, as on a
# CPU without native bf16 (backend/runtime.py). The bf16 path has tests of its own that set
# this to "1"; subprocesses (the worker, the command lines) inherit it.
os.environ.setdefault("EVERYBODY_DANCE_CPU_BF16", "0")


@pytest.fixture
def footage():
    return footage_path


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own cache root so no test sees another's cached poses."""
    root = tmp_path_factory.mktemp("cache")
    monkeypatch.setenv("EVERYBODY_DANCE_CACHE", str(root))
    return root


@pytest.fixture
def one_thread():
    with single_thread():
        yield


@pytest.fixture(scope="session")
def session_cache(tmp_path_factory) -> Path:
    """A cache root shared within the session, for expensive detections reused by many tests."""
    return tmp_path_factory.mktemp("session-cache")


@pytest.fixture(scope="module")
def client(tmp_path_factory):
    """A worker through the add-on's client, one per test module (starting one takes seconds)
    for the tests that leave it in a usable state."""
    with start_client(tmp_path_factory.mktemp("client")) as shared:
        yield shared


@pytest.fixture(scope="module")
def media(tmp_path_factory) -> dict[str, Path]:
    """A clip of the demo performer (`N_FRAMES` frames) and a tiny bundle, one per test module
    (a module that needs other media defines its own ``media``)."""
    return make_demo_media(tmp_path_factory.mktemp("media"), N_FRAMES)


os.environ.setdefault("TQDM_DISABLE", "1")


@pytest.fixture(scope="module")
def prepared_demo(tmp_path_factory) -> Path:
    """A run folder holding a prepared 24-frame demo-performer clip at the tiny sizes."""
    from backend.demo import make_demo_clip
    from training.data.prepare import PrepareOptions, prepare
    from training.options import preset

    folder = tmp_path_factory.mktemp("demo-run")
    track = make_demo_clip(folder / "clip.mp4", motion="target", n_frames=24, fps=30,
                           size=(128, 64), progress=False)
    opts = preset("tiny")
    prepare(folder / "clip.mp4", folder / "run",
            PrepareOptions(size=opts.size, label_sizes=tuple(opts.sizes_needed())),
            track=track, progress=False)
    return folder / "run"
