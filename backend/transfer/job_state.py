"""What a run does with its job folder, decided in one place from what the folder holds.

`OnDisk` is what the folder holds, read once while the run holds the folder's lock: its
record (job.json, parsed by `read_record`: a `JobRecord`, an `Unreadable` one, or none), how
many frames, whether the job is complete. `decide` compares it with the run's job and gives
the `Decision`, whose `Action` is the folder's state for this run; everything else a run
does differently follows from it (nothing is stored beside it or changed mid-run):

    START       nothing of this job's frames is there: a new or empty folder, or the same
                job (or a revision of it) that made no frame yet. job.json is written.
    RESUME      the same job with frames: continue after the last one, with the backend and
                the precision that made them (job.json stays as it is).
    REVISE      the same job with other adjustments and frames: keep the frames before the
                first changed one (job.json is rewritten once that is known, see `pipeline`).
    FINISHED    the same job, complete (every frame and the videos it asks for): nothing to do.
    RESTART     another job, an unreadable record, or frames this run may not continue, with
                ``overwrite``: the folder's job files are discarded, then as START.

Without ``overwrite`` the last three cases are refused (`FolderTaken`, exit 2), saying what
to do. What made a job's frames (`Made`: the backend running the networks and the resolved
precision) is part of what the job is: written into job.json when the job claims the folder
and never by progress, so a job resumed without its status.json continues on it. A record
whose backend, precision or model fingerprint is unreadable or unknown is `Unreadable`, like
a job.json that is not JSON: never a silent choice of another backend.

Folders of earlier versions, where unambiguous: job.json without ``backend`` takes
status.json's; without either, a job whose parameters have no ``cpu_backend`` was made by
PyTorch (before the choice existed); job.json without ``precision`` takes the one its
parameters asked for, else the one status.json's ``device`` names ("cpu, fp32").
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any, Generic, TypeVar

from ..errors import FolderTaken, InputError
from ..folders import TRANSFER_JOB, is_empty, refuse_other_kind
from .inference import BACKEND_NAMES, LEGACY_BACKEND, BackendConflict

ADJUSTMENTS = "adjustments"  # the identity's field an editor changes most (a revision)
NO_ADJUSTMENTS = {"scale": 1.0, "offset_x": 0.0, "offset_y": 0.0}  # the same as none
RESOLVED_PRECISIONS = ("fp32", "bf16", "fp16")
OVERWRITE_HINT = "use another output folder, or --overwrite to discard it"


class Action(Enum):
    START = "start"
    RESUME = "resume"
    REVISE = "revise"
    RESTART = "restart"
    FINISHED = "finished"

    @property
    def continues(self) -> bool:
        """Whether the run keeps frames already made (and so what made them)."""
        return self in (Action.RESUME, Action.REVISE, Action.FINISHED)


@dataclass(frozen=True)
class Made:
    """What makes (or made) a job's frames: recorded in job.json, kept by a resumed job."""

    backend: str | None  # "onnx" or "torch" (None: no networks, the nearest-neighbour baseline)
    precision: str  # "fp32", "bf16" or "fp16", as resolved (never "auto")


@dataclass(frozen=True)
class JobRecord:
    """A readable job.json: the job's identity and what made its frames."""

    identity: dict[str, Any]
    made: Made


@dataclass(frozen=True)
class Unreadable:
    """A job.json this version cannot trust: ``why``, in words ("its job.json is ...")."""

    why: str


Record = JobRecord | Unreadable | None


@dataclass(frozen=True)
class OnDisk:
    """What a job folder holds: its record (None: no job.json), how many frames, and whether
    they and the videos are complete (status.json says "done")."""

    root: Path
    record: Record
    frames: int
    complete: bool = False


T = TypeVar("T")
Choose = Callable[[Made | None], T]  # what made the frames so far -> this run's choice


@dataclass(frozen=True)
class Decision(Generic[T]):
    action: Action
    chosen: T  # what `choose` gave: this run's runtime and backend (see `pipeline`)
    earlier: JobRecord | None = None  # the record whose frames the run continues


def check_claimable(root: Path) -> None:
    """Refuse, before anything is written, a folder no transfer job may write into."""
    if root.exists() and not root.is_dir():
        raise InputError(root, "is a file; give a folder for the transfer's output")
    refuse_other_kind(root, TRANSFER_JOB)
    if root.is_dir() and not (root / "job.json").is_file() and not is_empty(root):
        raise InputError(root, "is not empty and holds no transfer job (no job.json); "
                               "give a new or empty folder")


def decide(disk: OnDisk, identity: dict[str, Any], overwrite: bool, choose: Choose) -> Decision:
    """What this run does with the folder (see the module docstring); `FolderTaken` when it
    may not use it. ``choose(made)`` picks the run's runtime and backend given what made the
    frames so far (None: no frames), raising `BackendConflict` when it may not continue."""
    record = disk.record
    if isinstance(record, Unreadable):
        if not overwrite:
            raise FolderTaken(disk.root, record.why, OVERWRITE_HINT)
        return Decision(Action.RESTART, choose(None))
    if record is None:
        return Decision(Action.START, choose(None))
    same = _comparable(record.identity) == _comparable(identity)
    if not (same or revises(record.identity, identity)):
        if not overwrite:
            raise FolderTaken(disk.root, f"holds a transfer job with other parameters "
                                         f"({_differences(record.identity, identity)})",
                              OVERWRITE_HINT)
        return Decision(Action.RESTART, choose(None))
    if disk.frames == 0:
        return Decision(Action.START, choose(None))
    action = (Action.FINISHED if disk.complete else Action.RESUME) if same else Action.REVISE
    try:
        return Decision(action, choose(record.made), record)
    except BackendConflict as exc:
        if not overwrite:
            raise FolderTaken(disk.root, exc.problem, exc.hint, exc.plain_hint) from None
        return Decision(Action.RESTART, choose(None))


def revises(old: dict[str, Any], new: dict[str, Any]) -> bool:
    """Whether a job of identity ``new`` is the job of identity ``old`` with other
    adjustments (and nothing else changed)."""
    old, new = _comparable(old), _comparable(new)
    if old == new:
        return False
    return ({k: v for k, v in old.items() if k != ADJUSTMENTS}
            == {k: v for k, v in new.items() if k != ADJUSTMENTS})


def _comparable(identity: dict[str, Any]) -> dict[str, Any]:
    """``identity`` with adjustments that change nothing written as none (a job of an
    earlier command line recorded none where the worker recorded the defaults)."""
    if identity.get(ADJUSTMENTS) == NO_ADJUSTMENTS:
        return {**identity, ADJUSTMENTS: None}
    return identity


def _differences(old: dict[str, Any], new: dict[str, Any]) -> str:
    """What differs, in words: "range, adjustments differ"."""
    old, new = _comparable(old), _comparable(new)
    keys = sorted(k for k in set(old) | set(new) if old.get(k) != new.get(k))
    return f"{', '.join(keys)} differ"


# -- reading job.json --------------------------------------------------------------------------


def read_record(job: Any, status: dict[str, Any]) -> Record:
    """job.json's content (``job``: None when there is none, else what it parsed to, already
    checked for its kind and version) as a `Record`; ``status`` is status.json's content (for
    folders of earlier versions, see the module docstring)."""
    if job is None:
        return None
    identity = job.get("identity")
    if not isinstance(identity, dict):
        return Unreadable("its job.json holds no readable identity")
    model = identity.get("model")
    if not (model is None or (isinstance(model, str) and len(model) == 64)):
        return Unreadable(f"its job.json's model fingerprint {_short(model)} is unreadable")
    nearest = identity.get("method") == "nearest"
    backend = _recorded_backend(job, status, nearest)
    if isinstance(backend, Unreadable):
        return backend
    precision = _recorded_precision(job, status)
    if isinstance(precision, Unreadable):
        return precision
    return JobRecord(identity, Made(backend, precision))


def _recorded_backend(job: dict[str, Any], status: dict[str, Any],
                      nearest: bool) -> str | None | Unreadable:
    if "backend" in job:
        value, where = job["backend"], "its job.json's backend"
    elif "backend" in status:
        value, where = status["backend"], "its status.json's backend (a folder of an earlier version)"
    elif "cpu_backend" not in (job.get("parameters") or {}):
        return None if nearest else LEGACY_BACKEND  # before the CPU had a choice
    else:
        return Unreadable("its job.json records no backend (the library that made its frames); "
                          "put back \"backend\": \"onnx\" or \"torch\", whichever made them")
    if value in BACKEND_NAMES or (value is None and nearest):
        return value
    return Unreadable(f"{where} {_short(value)} is not one this version knows "
                      f"({', '.join(BACKEND_NAMES)}); put back the one that made its frames")


def _recorded_precision(job: dict[str, Any], status: dict[str, Any]) -> str | Unreadable:
    if "precision" in job:
        value = job["precision"]
        if value in RESOLVED_PRECISIONS:
            return value
        return Unreadable(f"its job.json's precision {_short(value)} is not one this version "
                          f"knows ({', '.join(RESOLVED_PRECISIONS)}); put back the one that "
                          f"made its frames")
    asked = (job.get("parameters") or {}).get("precision")
    if asked in RESOLVED_PRECISIONS:
        return asked
    device = status.get("device")
    described = device.rsplit(", ", 1)[-1] if isinstance(device, str) else None
    if described in RESOLVED_PRECISIONS:
        return described
    return Unreadable("its job.json records no precision (a folder of an earlier version "
                      "whose status.json is gone); put back \"precision\": \"fp32\" (or the "
                      "one that made its frames)")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else f"{text[:80]}..."
