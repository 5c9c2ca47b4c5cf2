"""Checks of where a command is told to write, made before any work starts.

A path under a file, a folder the user may not write in, a read-only file system or a
pseudo file system such as ``/proc`` are refused at once with the reason (`InputError`),
instead of a traceback after minutes of work. The checks create nothing: a refused command
leaves no empty folder behind.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path

from .errors import InputError
from .oserrors import problem_of


def check_output_folder(path: str | Path) -> None:
    """Refuse ``path`` as a folder to write into when it cannot be made or written in."""
    path = Path(path)
    existing = _nearest_existing(path)
    if existing == path and not path.is_dir():
        raise InputError(path, "is a file; give a folder")
    _check_writable_in(path, existing)


def check_output_file(path: str | Path, suffix: str | None = None, what: str = "file") -> None:
    """Refuse ``path`` as a file to write when it is a folder, lies under a file or in a
    folder that cannot be written, or (with ``suffix``) has another extension."""
    path = Path(path)
    existing = _nearest_existing(path)
    if existing == path and path.is_dir():
        raise InputError(path, f"is a folder; give the name of the {what} to write")
    if suffix is not None and path.suffix.lower() != suffix:
        raise InputError(path, f"a {what} is written to a {suffix} file; give a name ending in "
                               f"{suffix}, such as {path.with_suffix(suffix).name}")
    _check_writable_in(path, _nearest_existing(path.parent) if existing == path else existing)


def refuse_foreign_file(path: str | Path, load: Callable[[Path], object], what: str) -> None:
    """Refuse to replace an existing ``path`` that ``load`` (which reads a ``what``) refuses:
    it may be the user's own file, which a command must never overwrite."""
    path = Path(path)
    if not path.is_file():
        return
    try:
        load(path)
    except InputError:
        raise InputError(path, f"exists and is not a {what} this program reads; refusing to "
                               f"replace it (remove it or give another name)") from None


def _nearest_existing(path: Path) -> Path:
    """``path`` itself or its closest ancestor that exists."""
    for candidate in (path, *path.absolute().parents):
        try:
            if candidate.exists():
                return candidate
        except OSError as exc:  # e.g. a name too long for the file system
            raise InputError(path, problem_of(exc)) from None
    return Path(path.anchor or ".")


def _check_writable_in(path: Path, existing: Path) -> None:
    """``path`` is to be made or written in the existing folder ``existing``: can it be?"""
    if not existing.is_dir():
        raise InputError(path, f"cannot be written: {existing} is a file, not a folder")
    try:
        with tempfile.TemporaryFile(dir=existing):  # the one sure test: write something there
            pass
    except OSError as exc:
        raise InputError(path, f"cannot be written in {existing} ({problem_of(exc)})") from None
