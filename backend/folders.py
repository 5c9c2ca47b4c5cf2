"""The folders commands write into: what kind each is, and the OS lock of a busy one.

Each kind of folder this project writes carries a file that says what it is: a transfer job
``job.json`` (its ``kind``), a training run ``prepared/manifest.json`` or
``train_options.json``, a pose preview ``preview.json``, a model bundle ``manifest.json``.
A command refuses a folder of another kind before it writes anything (`refuse_other_kind`),
so a mistyped path never mixes a training run into a job folder or the other way round.

A process working in a folder holds `FolderLock` on it: ``fcntl.flock`` (``msvcrt.locking``
on Windows) on ``FOLDER/.lock``. The OS drops the lock when the process ends however it ends
(SIGKILL included), so nothing stale is ever left; a second process is refused at once.
"""

from __future__ import annotations

import os
from pathlib import Path

from .errors import InputError
from .paths import read_json_field

TRANSFER_JOB = "transfer job"
TRAINING_RUN = "training run"
POSE_PREVIEW = "pose preview"
MODEL_BUNDLE = "model bundle"
TRANSFER_JOB_KIND = "everybody-dance-transfer-job"  # job.json's "kind"
LOCK_FILE = ".lock"


def kind_of(folder: str | Path) -> str | None:
    """Which of this project's kinds ``folder`` is, or None (missing, not a folder, empty, or
    files of the user's own)."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    if read_json_field(folder / "job.json", "kind") == TRANSFER_JOB_KIND:
        return TRANSFER_JOB
    if (folder / "prepared" / "manifest.json").is_file() \
            or (folder / "train_options.json").is_file():
        return TRAINING_RUN
    if (folder / "preview.json").is_file():
        return POSE_PREVIEW
    if (folder / "manifest.json").is_file() and any(folder.glob("*.safetensors")):
        return MODEL_BUNDLE
    return None


def refuse_other_kind(folder: str | Path, wanted: str) -> None:
    """`InputError` when ``folder`` is one of this project's folders of another kind than
    ``wanted``: a command writes only into its own kind (or a new or empty folder)."""
    kind = kind_of(folder)
    if kind is not None and kind != wanted:
        raise InputError(folder, f"is a {kind} folder, not a {wanted}; refusing to write into "
                                 f"it (give another folder)")


def require_kind(folder: str | Path, wanted: str, how: str) -> None:
    """`InputError` unless ``folder`` is a ``wanted`` folder (``how``: how one is made)."""
    kind = kind_of(folder)
    if kind != wanted:
        refuse_other_kind(folder, wanted)
        raise InputError(folder, f"is not a {wanted} folder; {how}")


def is_empty(folder: Path) -> bool:
    """Whether ``folder`` holds nothing but (perhaps) its lock file."""
    return not any(p.name != LOCK_FILE for p in folder.iterdir())


class FolderLock:
    """An exclusive OS lock on a folder for as long as this process works in it."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self._fd: int | None = None

    def acquire(self) -> "FolderLock":
        """Take the lock (making the folder if needed); `InputError` at once when another
        process holds it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            _lock(fd)
        except OSError:
            try:
                holder = os.read(fd, 32).decode(errors="replace").strip()
            except OSError:  # Windows: the holder's locked byte cannot be read
                holder = ""
            os.close(fd)
            raise InputError(self.folder, "is in use by another process"
                             + (f" (pid {holder})" if holder.isdigit() else "")
                             + " working in it; wait for it to finish, or cancel it") from None
        os.ftruncate(fd, 0)
        os.write(fd, str(os.getpid()).encode())
        self._fd = fd
        return self

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing drops the lock
            self._fd = None

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, *exc: object) -> None:
        self.release()


def _lock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

