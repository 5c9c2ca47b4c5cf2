"""The folders commands write into: what kind each is, and the OS lock of a busy one.

Each kind of folder this project writes carries a file that says what it is: a transfer job
``job.json`` (its ``kind``), a training run ``prepared/manifest.json`` or
``train_options.json``, a pose preview ``preview.json``, a model bundle ``manifest.json``.
A command refuses a folder of another kind before it writes anything (`refuse_other_kind`),
so a mistyped path never mixes a training run into a job folder or the other way round.

A process working in a folder holds `FolderLock` on it: ``fcntl.flock`` (``msvcrt.locking``
on Windows) on ``FOLDER/.lock``, and on POSIX on the folder itself too, so that a ``.lock``
removed while a job runs does not let a second process in. The OS drops the lock when the
process ends however it ends (SIGKILL included), so nothing stale is ever left; a second
process is refused at once.

A folder a command writes is its own: nothing is written through a symbolic link out of it.
Files are replaced by renaming (`paths.atomic_file`, which replaces a link, never follows
it), appended to through `open_append` (``O_NOFOLLOW``), and `FolderLock` refuses a folder
whose own files (``owned``: ``frames``, ``log.txt``, ...) or ``.lock`` are links, before
anything is written or deleted.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable
from pathlib import Path
from typing import IO

from .errors import InputError
from .paths import read_json_field

TRANSFER_JOB = "transfer job"
TRAINING_RUN = "training run"
POSE_PREVIEW = "pose preview"
MODEL_BUNDLE = "model bundle"
TRANSFER_JOB_KIND = "everybody-dance-transfer-job"  # job.json's "kind"
LOCK_FILE = ".lock"
# What the training commands write in a run folder (its lock refuses these as links).
TRAINING_RUN_FILES = ("prepared", "train_options.json", "checkpoints", "samples", "tensorboard",
                      "status.json", "STOP")


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
    """Whether ``folder`` holds nothing but (perhaps) this program's own lock file: a
    ``.lock`` that is a link, or a file of the user's, makes it not empty."""
    return not any(p.name != LOCK_FILE or not _is_our_lock(p) for p in folder.iterdir())


def refuse_links(folder: str | Path, names: Iterable[str]) -> None:
    """`InputError` naming the first ``folder/NAME`` that is a symbolic link: a command
    writes and deletes only its own files, never through a link out of its folder."""
    for name in names:
        path = Path(folder) / name
        if path.is_symlink():
            raise InputError(path, "is a symbolic link; this program writes only its own "
                                   "files in the folder, never through a link (remove the "
                                   "link, or give another folder)")


def check_deletable(path: str | Path) -> None:
    """`InputError` unless ``path`` (absent, a file, or a folder of files) can be deleted
    whole: checked before deleting anything, so that nothing is deleted half."""
    path = Path(path)
    refuse_links(path.parent, [path.name])
    if not path.is_dir():
        return
    for folder, _, _ in os.walk(path):
        if not os.access(folder, os.W_OK | os.X_OK):
            raise InputError(folder, "cannot be deleted (permission denied); nothing was "
                                     "deleted")


def open_nofollow(path: str | Path, flags: int, mode: int = 0o644) -> int:
    """``os.open`` that refuses a symbolic link at ``path`` (`InputError`) instead of
    writing to the file it points to."""
    path = Path(path)
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    if not nofollow and path.is_symlink():  # Windows: no O_NOFOLLOW, check first
        refuse_links(path.parent, [path.name])
    try:
        return os.open(path, flags | nofollow, mode)
    except OSError as exc:
        if path.is_symlink():  # ELOOP (Linux) or EMLINK (FreeBSD): the link itself
            refuse_links(path.parent, [path.name])
        raise


def open_append(path: str | Path) -> IO[str]:
    """``path`` opened to append text (made when missing), never through a link."""
    fd = open_nofollow(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    return os.fdopen(fd, "a", encoding="utf-8")


class FolderLock:
    """An exclusive OS lock on a folder for as long as this process works in it.

    ``owned``: the names of the files and folders the command writes or deletes in the
    folder; acquiring refuses the folder when one of them is a symbolic link."""

    def __init__(self, folder: str | Path, owned: Iterable[str] = ()) -> None:
        self.folder = Path(folder)
        self.path = self.folder / LOCK_FILE
        self.owned = tuple(owned)
        self.made = False  # whether acquiring made the folder
        self._fds: list[int] = []

    def acquire(self) -> "FolderLock":
        """Take the lock (making the folder if needed); `InputError` at once when another
        process holds it, when ``.lock`` is not this program's, or when an owned name is a
        link."""
        self.made = not self.folder.exists()
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = open_nofollow(self.path, os.O_RDWR | os.O_CREAT)
        self._fds = [fd]
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                raise InputError(self.path, "is not a file; this program keeps its lock there "
                                            "(remove it)")
            try:
                _lock(fd)
                self._lock_folder()
            except OSError:
                raise InputError(self.folder, _in_use(fd)) from None
            if not _holds_a_pid(os.read(fd, 64)):
                raise InputError(self.path, "is not this program's lock file (it holds "
                                            "something else); refusing to overwrite it "
                                            "(remove it, or give another folder)")
            refuse_links(self.folder, self.owned)
            os.lseek(fd, 0, os.SEEK_SET)
            os.ftruncate(fd, 0)
            os.write(fd, str(os.getpid()).encode())
        except BaseException:
            self.release()
            raise
        return self

    def _lock_folder(self) -> None:
        """POSIX: lock the folder itself too, so that removing ``.lock`` lets nobody in.
        Where folders cannot be locked (Windows, some network file systems) the file's
        lock alone holds."""
        try:
            import fcntl
            dfd = os.open(self.folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
        except (ImportError, OSError):
            return
        self._fds.append(dfd)
        try:
            fcntl.flock(dfd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise
        except OSError:  # ENOLCK, EBADF, EINVAL: this file system locks no folders
            self._fds.remove(dfd)
            os.close(dfd)

    def release(self, abandon: bool = False) -> None:
        """Drop the lock. ``abandon``: the command failed before writing anything, so a
        folder that acquiring made is removed again (a refused command leaves nothing)."""
        for fd in self._fds:
            os.close(fd)  # closing drops the lock
        self._fds = []
        if abandon and self.made:
            try:
                self.path.unlink(missing_ok=True)
                self.folder.rmdir()
            except OSError:  # it holds something after all: keep it
                pass

    def __enter__(self) -> "FolderLock":
        return self.acquire()

    def __exit__(self, kind: type | None, *exc: object) -> None:
        self.release(abandon=kind is not None)


def _in_use(fd: int) -> str:
    """The refusal of a folder another process holds, naming its pid where ``.lock`` says."""
    try:
        holder = os.read(fd, 32).decode(errors="replace").strip()
    except OSError:  # Windows: the holder's locked byte cannot be read
        holder = ""
    return ("is in use by another process" + (f" (pid {holder})" if holder.isdigit() else "")
            + " working in it; wait for it to finish, or cancel it")


def _holds_a_pid(content: bytes) -> bool:
    """Whether a lock file's content is what `FolderLock` writes (a pid, or nothing yet)."""
    text = content.strip()
    return not text or text.isdigit()


def _is_our_lock(path: Path) -> bool:
    """Whether ``path`` is a lock file this program made (a plain file holding a pid)."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        with open(path, "rb") as f:
            return _holds_a_pid(f.read(64))
    except OSError:  # Windows: a held lock's byte cannot be read
        return True


def _lock(fd: int) -> None:
    try:
        import fcntl
    except ImportError:  # Windows
        import msvcrt

        msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        return
    fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
