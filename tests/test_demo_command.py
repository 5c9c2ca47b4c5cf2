"""The README's first command: the built-in demo, the whole transfer on built-in material."""

from __future__ import annotations

import subprocess
import sys

import pytest

from backend.demo.run import DEMO_BUNDLE
from backend.models import read_manifest
from backend.video import probe

from .helpers import REPO


def test_the_demo_bundle_ships_and_is_small():
    manifest = read_manifest(DEMO_BUNDLE)
    assert manifest.normalization["method"] == "ankles"
    size = sum(p.stat().st_size for p in DEMO_BUNDLE.iterdir())
    assert size < 20 * 1024 * 1024  # the limit for a bundle kept in the repository


@pytest.mark.slow
def test_demo_writes_a_watchable_video_of_the_whole_dance(tmp_path):
    out = tmp_path / "demo"
    result = subprocess.run([sys.executable, "-m", "backend", "demo", "-o", str(out), "--seconds", "1", "-q"],
                            cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr[-2000:]
    source = probe(out / "source.mp4")
    video = probe(out / "transfer" / "result.mp4")
    assert video.frame_count == source.frame_count == 30 and video.fps == source.fps
    assert probe(out / "transfer" / "side_by_side.mp4").frame_count == 30
    assert len(list((out / "transfer" / "frames").glob("*.png"))) == 30
