"""Where the backend keeps caches and how files are written safely."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from .oserrors import writing

APP_NAME = "everybody-dance"


def cache_dir(kind: str) -> Path:
    """A per-user cache folder for ``kind`` (``poses``, ``weights``, ...).

    ``EVERYBODY_DANCE_CACHE`` overrides the root (tests point it at a temp folder);
    otherwise ``$XDG_CACHE_HOME`` or ``~/.cache`` is used.
    """
    root = os.environ.get("EVERYBODY_DANCE_CACHE")
    if root:
        base = Path(root)
    else:
        base = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / APP_NAME
    folder = base / kind
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@contextlib.contextmanager
def atomic_file(path: str | Path) -> Iterator[Path]:
    """A temporary path next to ``path`` to write; when the block ends without an error the
    file is made durable and renamed to ``path`` (readers see the old or the new file, never
    half), else it is deleted and ``path`` stays as it was."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.chmod(tmp, 0o666 & ~current_umask())  # mkstemp makes 0600; give the usual permissions
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def atomic_write_bytes(path: str | Path, data: bytes) -> None:
    """Write ``data`` to ``path`` so that readers see the old or the new file, never half.

    A full disk raises `NoSpaceError` naming ``path``; the old file stays as it was."""
    path = Path(path)
    with writing(path), atomic_file(path) as tmp:
        tmp.write_bytes(data)


def current_umask() -> int:
    """The process umask (reading it needs setting it; put back at once)."""
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write_json(path: str | Path, obj: Any) -> None:
    atomic_write_bytes(path, (json.dumps(obj, indent=2, sort_keys=True) + "\n").encode())


def read_json_field(path: str | Path, key: str) -> Any:
    """``key`` of the JSON object in ``path``, or None where there is no such file, object or
    key (a record that is only consulted, never required)."""
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return None
    return data.get(key) if isinstance(data, dict) else None
