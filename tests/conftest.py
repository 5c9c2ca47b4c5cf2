"""Shared fixtures: real footage from ../shared/data, a private cache, a worker and its media,
one thread for tiny networks. Shared functions and constants are in helpers.py."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from .helpers import N_FRAMES, footage_path, make_demo_media, single_thread, start_client
from .ray_cluster import ray_cluster  # noqa: F401 - one local Ray for the session (a fixture)


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
