"""Operating-system errors that the user's files or disk cause, in plain words.

A full disk, a read-only folder or a name too long for the file system is not a bug: the
command line shows it as ``error: PATH: problem`` (exit status 2) and the worker as an
``error`` reply with the error's code, never as a traceback or ``internal``.
"""

from __future__ import annotations

import errno
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .errors import BackendError, InputError, NoSpaceError

# ENOSPC: the disk is full; EDQUOT: the user's quota is; EFBIG: the file outgrew what the
# file system or the process's file size limit (ulimit -f) allows. To the user all are "no space".
NO_SPACE = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG})

# Errors that say something about the path the user gave or the disk, not about our code.
_PROBLEMS = {
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.EROFS: "read-only file system",
    errno.ENAMETOOLONG: "file name too long for the file system",
    errno.ENOTDIR: "a part of the path is a file, not a folder",
    errno.EISDIR: "is a folder, not a file",
    errno.EEXIST: "already exists",
    errno.ELOOP: "too many symbolic links in the path",
}


def problem_of(exc: OSError) -> str:
    """What ``exc`` means for the user, in a few words."""
    if exc.errno in NO_SPACE:
        return "disk full"
    return _PROBLEMS.get(exc.errno or 0) or (exc.strerror or str(exc)).lower()


def user_error(exc: OSError, path: str | Path | None = None) -> BackendError | None:
    """``exc`` as the error a user should see (naming ``path``, else the file in ``exc``),
    or None when it does not come from the user's files or disk."""
    where = path if path is not None else exc.filename
    if exc.errno in NO_SPACE:
        return NoSpaceError(where if where is not None else "a file")
    if exc.errno not in _PROBLEMS or where is None:
        return None
    return InputError(where, problem_of(exc))


def as_backend_error(exc: BaseException) -> BackendError | None:
    """The error to show the user for ``exc`` (itself, or an OS error translated), or None
    for an unexpected failure (a bug, which keeps its traceback)."""
    if isinstance(exc, BackendError):
        return exc
    if isinstance(exc, OSError):
        return user_error(exc)
    return None


@contextmanager
def writing(path: str | Path) -> Iterator[None]:
    """Turn running out of space inside the block into `NoSpaceError` naming ``path``
    (a write's ``OSError`` carries no file name)."""
    try:
        yield
    except OSError as exc:
        if exc.errno in NO_SPACE:
            raise NoSpaceError(path) from exc
        raise
