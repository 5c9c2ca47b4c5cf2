"""``python -m training train``: a run's stages in order, with the run folder locked, the
"auto" options resolved, the status file and the board kept, and a full disk explained.

Where the parts live: the run folder and its checkpoints' options (training/run_folder.py),
the options resolved against the prepared run (training/resolve.py), one stage's loop,
checkpoints and exact resume (training/stage_run.py), the learning rate
(training/learning_rate.py), stop requests (training/stopping.py), divergence
(training/divergence.py).
"""

from __future__ import annotations

from contextlib import nullcontext, suppress
from dataclasses import replace
from pathlib import Path
from typing import Callable

import torch

from backend.errors import BackendError, JobCancelled, NoSpaceError
from backend.folders import TRAINING_RUN_FILES, FolderLock
from backend.oserrors import NO_SPACE
from backend.paths import atomic_write_json

from backend.runtime import Runtime
from backend.target.prepared import PreparedRun

from .data.prepare import render_labels
from .distributed import barrier, setup
from .logging import Board, StatusFile
from .options import TrainOptions, describe
from .resolve import check_prepared, precision_to_run, resolve_matte, resolve_window
from .run_folder import RunFolder, check_checkpoints
from .stage_run import RunContext, StageRun
from .stopping import StopRequest


def _perceptual(opts: TrainOptions, runtime: Runtime) -> torch.nn.Module | None:
    """The VGG loss, or None with ``--perceptual none``; WeightsUnavailable stops training."""
    if opts.loss.perceptual == "none":
        return None
    from training.models.losses import VGGLoss
    from training.models.vgg import load_vgg19

    vgg = VGGLoss(load_vgg19(opts.loss.vgg_weights))
    return runtime.prepare_module(vgg)


def train(run_dir: str | Path, opts: TrainOptions, stages: list[str] | None = None,
          resume: bool = False, steps: int | None = None, epochs: float | None = None,
          stop_at: int | None = None, should_stop: Callable[[], bool] | None = None) -> list[dict]:
    """Train ``stages`` (default: every stage of the run, in order) of the run in ``run_dir``.

    ``steps`` / ``epochs`` override each stage's length; ``opts.runtime.progress`` shows bars. Stages already finished are skipped
    when resuming. Raises ``JobCancelled`` after saving a checkpoint when stopped by SIGINT /
    SIGTERM, a ``STOP`` file in the run folder, ``should_stop()`` returning True, or when a
    stage reaches step ``stop_at``; the status file says what happened.
    Returns one summary per stage (step, losses, seconds per step, checkpoint, networks)."""
    opts.validate()
    threads = torch.get_num_threads()
    try:
        return _train(run_dir, opts, stages, resume, steps, epochs, stop_at, should_stop)
    finally:
        torch.set_num_threads(threads)  # setup() may have changed it for this run


def _train(run_dir: str | Path, opts: TrainOptions, stages: list[str] | None, resume: bool,
           steps: int | None, epochs: float | None, stop_at: int | None,
           should_stop: Callable[[], bool] | None) -> list[dict]:
    run = RunFolder(Path(run_dir))
    runtime = setup(opts.runtime.device, precision_to_run(opts, run),
                    opts.runtime.channels_last, opts.runtime.threads,
                    pixels=opts.size[0] * opts.size[1])
    # The precision actually used is what the run records: "auto" may mean another precision
    # on another machine (or version), and a resume is exact only at the same one.
    opts = replace(opts, runtime=replace(opts.runtime, precision=runtime.precision))
    stages = list(stages or opts.schedule.stages)
    for stage in stages:
        if stage not in opts.schedule.stages:
            raise ValueError(f"stage {stage} is not part of this run's stages "
                             f"{opts.schedule.stages}")
    # One process trains a run at a time (the main one holds the lock for all ranks).
    with FolderLock(run.root, TRAINING_RUN_FILES) if runtime.is_main else nullcontext():
        prepared = PreparedRun.open(run.root)
        check_prepared(prepared, opts)
        opts = resolve_matte(opts, prepared, runtime.is_main)
        opts = resolve_window(opts, prepared, runtime.is_main).with_reconstruction()
        check_checkpoints(run, opts, stages, resume)  # a refused command writes nothing
        return _train_stages(run, opts, runtime, prepared, stages, (steps, epochs, stop_at),
                             should_stop)


def _no_space(exc: BaseException) -> BaseException:
    """A full disk as the command line shows it for a transfer: what is kept, what to do
    (the checkpoints written so far are complete; an unfinished one is never seen)."""
    if isinstance(exc, OSError) and exc.errno in NO_SPACE:
        exc = NoSpaceError(exc.filename if exc.filename is not None else "a file")
    if not isinstance(exc, NoSpaceError):
        return exc
    return exc.noting("the checkpoints written are kept; free space and train again with "
                      "--resume to continue")


def _train_stages(run: RunFolder, opts: TrainOptions, runtime: Runtime, prepared: PreparedRun,
                  stages: list[str], length: tuple[int | None, float | None, int | None],
                  should_stop: Callable[[], bool] | None) -> list[dict]:
    """Train ``stages`` in order (the options checked): the status file says how it went."""
    status = StatusFile(run.status, enabled=runtime.is_main)
    status.update(state="running", stages=stages, message=describe(opts))
    board = Board(run.tensorboard, enabled=opts.runtime.tensorboard and runtime.is_main)
    results = []
    try:
        if runtime.is_main:
            atomic_write_json(run.options, opts.to_dict())
            for size in opts.sizes_needed():
                render_labels(prepared, size, progress=opts.runtime.progress)
        barrier(runtime)
        vgg = _perceptual(opts, runtime)
        if runtime.is_main:
            run.stop_file.unlink(missing_ok=True)  # a stale request from an earlier run
        barrier(runtime)
        with StopRequest(run.stop_file, should_stop) as stop:
            for stage in stages:
                context = RunContext(run, opts, runtime, prepared, vgg, board, status, stop)
                stage_run = StageRun(context, stage)
                results.append(stage_run.train(*length))
        status.update(state="done", message="training finished", eta_s=0)
    except JobCancelled:
        raise
    except BaseException as exc:
        error = _no_space(exc)
        with suppress(OSError, BackendError):  # a full disk may refuse the status too
            if isinstance(exc, KeyboardInterrupt):
                status.update(state="cancelled", message="interrupted")
            else:
                status.update(state="failed", message=str(error) if isinstance(
                    error, BackendError) else f"{type(error).__name__}: {error}")
        if error is exc:
            raise
        raise error from exc
    finally:
        board.close()
    return results
