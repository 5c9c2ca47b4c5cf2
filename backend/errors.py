"""The errors the backend raises on purpose.

Every error a user can cause names the file and the problem, so the command line
and the Blender add-on can show it as it is.
"""

from __future__ import annotations

from pathlib import Path


class BackendError(Exception):
    """Base class: a failure with a message meant for the user."""

    code = "backend_error"


class RequestError(BackendError, ValueError):
    """A job request whose values make no sense, wherever it comes from: the command line's
    flags (exit 2), a worker's ``run`` or ``preview`` (``bad_message``), the add-on's job (the
    panel shows it). The message names the field, the value and what is allowed; the check
    is ``backend.worker.protocol.validate``."""

    code = "bad_message"


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


class FolderTaken(InputError):
    """A job folder holding another job, or frames this run may not continue. ``hint`` is
    the command line's remedy (which may name ``--overwrite``), ``plain_hint`` the one a
    client of the worker can follow (it has no such flag)."""

    def __init__(self, path: str | Path, problem: str, hint: str,
                 plain_hint: str = "use another output folder") -> None:
        super().__init__(path, f"{problem}; {hint}")
        self.bare, self.hint, self.plain_hint = problem, hint, plain_hint

    def __reduce__(self) -> tuple:
        return (type(self), (self.path, self.bare, self.hint, self.plain_hint))

    def plain(self) -> InputError:
        """The same refusal in a worker client's words."""
        return InputError(self.path, f"{self.bare}; {self.plain_hint}")


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


class JobCancelled(BackendError):
    """The user cancelled a long job; what was written so far stays resumable."""

    code = "cancelled"
