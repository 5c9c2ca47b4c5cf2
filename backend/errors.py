"""The errors the backend raises on purpose.

Every error a user can cause names the file and the problem, so the command line
and the Blender add-on can show it as it is.
"""

from __future__ import annotations

from pathlib import Path


class BackendError(Exception):
    """Base class: a failure with a message meant for the user."""

    code = "backend_error"


class InputError(BackendError):
    """A file given by the user is missing, empty, truncated or of the wrong kind."""

    code = "bad_input"

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")

    def __reduce__(self) -> tuple:
        # Rebuilt from (path, problem), so the error crosses process boundaries (pickling
        # would otherwise call __init__ with the one formatted message).
        return (type(self), (self.path, self.problem))


class FormatVersionError(InputError):
    """A file written by another (incompatible) version of this project."""

    code = "format_version"


class NoSpaceError(InputError):
    """The disk (or the user's quota, or the file size limit) ran out while writing ``path``.

    Everything written before stays; the same command run again with space continues.
    """

    code = "disk_full"

    def __init__(self, path: str | Path, note: str = "") -> None:
        self.path = Path(path)
        self.note = note
        self.problem = "disk full" + (f"; {note}" if note else "")
        BackendError.__init__(self, f"disk full while writing {self.path}"
                                    + (f"; {note}" if note else ""))

    def __reduce__(self) -> tuple:
        return (type(self), (self.path, self.note))

    def noting(self, note: str) -> "NoSpaceError":
        """The same error with ``note`` (what is kept, what to do) added to its message."""
        return NoSpaceError(self.path, note)


class Cancelled(BackendError):
    """The user cancelled a long job; what was written so far stays resumable."""

    code = "cancelled"
