"""A training run's folder: where each of its files lives, the options it was started with,
its stages' newest checkpoints, and whether those may be continued with other options.

A run folder holds::

    prepared/                   what ``prepare`` wrote
    train_options.json          the options of the run (written by the first ``train``)
    checkpoints/<stage>/step_XXXXXXXX/   see training/checkpoint.py; latest.json names the newest
    samples/<stage>_step_XXXXXXXX.png    label | real | generated on held-out frames
    tensorboard/                scalars and image grids
    status.json                 for the Blender add-on (training/logging.py)
    STOP                        create it to stop after the current step (with a checkpoint)
    .lock                       held by the process training, preparing or exporting into the
                                run (backend/folders.py): a second one is refused at once
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from backend.errors import InputError

from . import checkpoint as ckpt
from .options import TrainOptions

OPTIONS_FILE = "train_options.json"


@dataclass(frozen=True)
class RunFolder:
    root: Path

    def checkpoints(self, stage: str) -> Path:
        return self.root / "checkpoints" / stage

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    @property
    def options(self) -> Path:
        return self.root / OPTIONS_FILE

    @property
    def samples(self) -> Path:
        return self.root / "samples"

    @property
    def tensorboard(self) -> Path:
        return self.root / "tensorboard"

    @property
    def stop_file(self) -> Path:
        return self.root / "STOP"


def load_run_options(run_dir: str | Path) -> TrainOptions | None:
    """The options a run was started with, or None for a run not trained yet."""
    path = RunFolder(Path(run_dir)).options
    if not path.is_file():
        return None
    try:
        return TrainOptions.from_dict(json.loads(path.read_text()))
    except (ValueError, TypeError, KeyError) as exc:
        raise InputError(path, f"unreadable training options ({exc})") from exc


def stage_checkpoint(run_dir: str | Path, stage: str) -> Path | None:
    """The newest checkpoint of ``stage`` in ``run_dir``, or None."""
    return ckpt.latest_checkpoint(RunFolder(Path(run_dir)).checkpoints(stage))


def check_checkpoints(run: RunFolder, opts: TrainOptions, stages: list[str],
                       resume: bool) -> None:
    """Refuse, before anything is written, stages whose checkpoints this call may not
    continue: any without ``resume``, and those of other network options with it."""
    for stage in stages:
        latest = stage_checkpoint(run.root, stage)
        if latest is None:
            continue
        if not resume:
            raise InputError(run.checkpoints(stage),
                             "already has checkpoints; pass --resume to continue, or "
                             "delete this folder to train the stage again")
        check_network_options(TrainOptions.from_dict(ckpt.saved_options(latest)), opts,
                               latest)


def check_network_options(old: TrainOptions, new: TrainOptions, path: Path) -> None:
    """`InputError` naming the network options in which ``new`` differs from the options
    the checkpoint ``path`` was trained with, and how to continue."""
    differ = [(f"--{name.replace('_', '-')}", was, now)
              for name, was, now in network_differences(old, new)]
    if differ:
        given = ", ".join(f"{flag} {now}" for flag, _, now in differ)
        own = " ".join(f"{flag} {was}" for flag, was, _ in differ)
        raise InputError(path, f"was trained with other network options than {given}; "
                               f"resume with the run's own ({own}), or train these options in "
                               f"a new run folder")


def network_differences(old: TrainOptions, new: TrainOptions) -> list[tuple[str, Any, Any]]:
    """(option, old value, new value) for each network option (the size, the model's
    fields) that differs: a checkpoint continues only with its own."""
    def shown(value: Any) -> str:
        return "x".join(map(str, value)) if isinstance(value, (tuple, list)) else str(value)

    differ = [("size", shown(old.size), shown(new.size))] if old.size != new.size else []
    was, now = asdict(old.model), asdict(new.model)
    return differ + [(name, shown(was[name]), shown(now[name])) for name in was
                     if was[name] != now[name]]
