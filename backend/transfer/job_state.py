"""What a run does with its job folder: Start, Resume, Revise or Restart, decided in one place.

`OnDisk` is what the folder holds, read once while the run holds the folder's lock; `decide`
compares it with the run's job and gives the `Decision`:

    START    nothing of this job's frames is there: a new or empty folder, or the same job
             (or a revision of it) that made no frame yet. job.json is written.
    RESUME   the same job with frames: continue after the last one, on the backend that
             made them (job.json stays as it is).
    REVISE   the same job with other adjustments and frames: keep the frames before the
             first changed one (job.json is rewritten once that is known, see `pipeline`).
    RESTART  another job (or frames the chosen backend may not continue), with ``overwrite``:
             the folder's job files are discarded, then as START.

A job's backend is part of what it is: written into job.json when the job claims the folder
and never by progress, so a job resumed without its status.json continues on it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from ..errors import FolderTaken, InputError
from ..folders import TRANSFER_JOB, is_empty, refuse_other_kind
from .inference import BACKEND_NAMES, LEGACY_BACKEND, BackendConflict

ADJUSTMENTS = "adjustments"  # the identity's field an editor changes most (a revision)


class Action(Enum):
    START = "start"
    RESUME = "resume"
    REVISE = "revise"
    RESTART = "restart"


@dataclass(frozen=True)
class Decision:
    action: Action
    backend: str | None  # what runs the networks ("onnx", "torch"; None: no networks)


@dataclass(frozen=True)
class OnDisk:
    """What a job folder holds: its job.json (None: none), how many frames, its files."""

    root: Path
    job: dict[str, Any] | None
    frames: int
    status_backend: Any = None  # status.json's "backend", for folders of earlier versions

    @property
    def identity(self) -> Any:
        return None if self.job is None else self.job.get("identity")

    @property
    def backend(self) -> str | None:
        """The backend that made the frames: job.json's, else (a folder of an earlier
        version) status.json's, else PyTorch; None when that record is unreadable."""
        recorded = (self.job or {}).get("backend", self.status_backend or LEGACY_BACKEND)
        return recorded if recorded in BACKEND_NAMES else None


def check_claimable(root: Path) -> None:
    """Refuse, before anything is written, a folder no transfer job may write into."""
    if root.exists() and not root.is_dir():
        raise InputError(root, "is a file; give a folder for the transfer's output")
    refuse_other_kind(root, TRANSFER_JOB)
    if root.is_dir() and not (root / "job.json").is_file() and not is_empty(root):
        raise InputError(root, "is not empty and holds no transfer job (no job.json); "
                               "give a new or empty folder")


Choose = Callable[[str | None], str | None]  # recorded backend -> this run's (BackendConflict)


def decide(disk: OnDisk, identity: dict[str, Any], overwrite: bool, choose: Choose) -> Decision:
    """What this run does with the folder (see the module docstring); `InputError` when it
    may not use it. ``choose(recorded)`` picks the run's backend given the one that made the
    frames so far (None: no frames), raising `BackendConflict` when it may not continue."""
    old = disk.identity
    same = disk.job is not None and old == identity
    if disk.job is None or ((same or revises(old, identity)) and disk.frames == 0):
        return Decision(Action.START, choose(None))
    if same or revises(old, identity):
        try:
            return Decision(Action.RESUME if same else Action.REVISE, choose(disk.backend))
        except BackendConflict as exc:
            if not overwrite:
                raise FolderTaken(disk.root, exc.problem, exc.hint, exc.plain_hint) from None
            return Decision(Action.RESTART, choose(None))
    if not overwrite:
        raise FolderTaken(disk.root, f"holds a transfer job with other parameters "
                                     f"({_differences(old, identity)})",
                          "use another output folder, or --overwrite to discard it")
    return Decision(Action.RESTART, choose(None))


def revises(old: Any, new: dict[str, Any]) -> bool:
    """Whether a job of identity ``new`` is the job of identity ``old`` with other
    adjustments (and nothing else changed)."""
    if not isinstance(old, dict) or old == new:
        return False
    return ({k: v for k, v in old.items() if k != ADJUSTMENTS}
            == {k: v for k, v in new.items() if k != ADJUSTMENTS})


def _differences(old: Any, new: dict[str, Any]) -> str:
    """What differs, in words: "range, adjustments differ" or why the old job is unreadable."""
    if not isinstance(old, dict):
        return str(old)
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return f"{', '.join(keys)} differ"

