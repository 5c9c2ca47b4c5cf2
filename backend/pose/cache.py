"""The pose-track cache: detection is slow, so each result is kept and found again by content.

A cached track is keyed by the video's *identity* (its content, not its name: the file size
plus hashes of chunks sampled through it, so a renamed or moved copy still hits and an edited
file misses) and by everything that changes the result (the detector's settings and version,
the frame range). Tracks are stored as ``<key>.npz`` under ``cache_dir("poses")``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..paths import cache_dir
from .track import PoseTrack

CHUNK = 64 * 1024  # bytes read per sample
SAMPLES = 16  # chunks sampled through a file (plus its last chunk)
WHOLE_FILE_LIMIT = 2 * 1024 * 1024  # smaller files are hashed whole


def file_identity(path: str | Path) -> str:
    """A content hash of one file: its size and sampled chunks (all of it when small)."""
    path = Path(path)
    size = path.stat().st_size
    digest = hashlib.sha256(f"size={size};".encode())
    with path.open("rb") as f:
        if size <= WHOLE_FILE_LIMIT:
            digest.update(f.read())
        else:
            offsets = [i * (size - CHUNK) // SAMPLES for i in range(SAMPLES)] + [size - CHUNK]
            for offset in offsets:
                f.seek(offset)
                digest.update(f.read(CHUNK))
    return digest.hexdigest()


def video_identity(path: str | Path) -> str:
    """A content hash of a movie file or of an image-sequence folder (names and contents)."""
    path = Path(path)
    if not path.is_dir():
        return file_identity(path)
    digest = hashlib.sha256(b"folder;")
    for file in sorted(p for p in path.iterdir() if p.is_file()):
        digest.update(f"{file.name}={file_identity(file)};".encode())
    return digest.hexdigest()


def track_key(path: str | Path, settings: dict[str, Any]) -> str:
    """The cache key of the track made from the video at ``path`` with ``settings``."""
    text = json.dumps({"video": video_identity(path), "settings": settings}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def cached_track_path(key: str) -> Path:
    return cache_dir("poses") / f"{key}.npz"


def load_cached(key: str) -> PoseTrack | None:
    """The cached track for ``key``, or None when absent or unreadable (then it is remade)."""
    path = cached_track_path(key)
    if not path.is_file():
        return None
    try:
        return PoseTrack.load(path)
    except InputError:  # a damaged or outdated cache entry is a miss, never an error
        path.unlink(missing_ok=True)
        return None


def store(key: str, track: PoseTrack) -> Path:
    """Keep ``track`` under ``key`` (written atomically)."""
    return track.save(cached_track_path(key))
