"""``python -m training train``: the stages, their schedules, checkpoints and resuming.

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

Each stage trains for its epochs (or ``steps``) with Adam (lr 2e-4, betas 0.5/0.999), the
learning rate constant for the first half and decaying linearly to zero over the second half
(pix2pixHD's niter / niter_decay, applied per step here rather than per epoch). The stage's
step count fixes the schedule; a resumed run with another ``--steps`` recomputes it.

Exact resume: a checkpoint stores the networks, both optimizers, the GradScaler, the step
(from which the epoch, the position in the epoch and the learning rate follow), the data
order's seed, and every random generator's state; the sampler's order depends only on
(seed, epoch), and no step draws from a global random generator. On the CPU, N steps, a stop
and a resume, then N more steps give the same weights as 2N steps in one go. (On CUDA,
cudnn.benchmark may pick different kernels after a restart: equal up to float rounding.)

Divergence: where the losses are measured (each logged step, each checkpoint, the first step
of a call), a loss that is not finite or G's total grown a hundredfold stops the stage before
a checkpoint keeps those weights (`DivergenceWatch`): the last good checkpoint stays, and a
resume with a smaller ``--lr`` continues from it.
"""

from __future__ import annotations

import json
import math
import signal
import sys
import threading
import time
from contextlib import nullcontext, suppress
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any, Callable

import torch
from torch.utils.data import DataLoader

from backend.errors import BackendError, InputError, JobCancelled, NoSpaceError
from backend.folders import TRAINING_RUN_FILES, FolderLock
from backend.oserrors import NO_SPACE
from backend.paths import atomic_write_json

from backend.runtime import Runtime, resolve_device
from backend.target.prepared import PreparedRun
from backend.target.window import Windows

from . import checkpoint as ckpt
from .data.dataset import EpochSampler, FrameSequenceDataset, collate
from .data.prepare import render_labels
from .distributed import any_rank, barrier, mean_over_ranks, setup
from .heldout import heldout_report
from .logging import Board, ProgressBar, StatusFile, image_grid, save_png
from .options import TrainOptions, describe
from .stages import (StageNets, face_multiple, fresh_nets, freeze, generator_param_groups,
                     nets_from_previous, previous_stage, stage_window, trainable_parameters,
                     uses_local)
from .step import Batch, Optimizers, TrainStep

OPTIONS_FILE = "train_options.json"


# --------------------------------------------------------------------------------------------
# The run folder
# --------------------------------------------------------------------------------------------


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


# --------------------------------------------------------------------------------------------
# Learning rate
# --------------------------------------------------------------------------------------------


def lr_factor(step: int, total: int, constant_fraction: float) -> float:
    """pix2pixHD's schedule: 1 for the first ``constant_fraction`` of the steps, then a
    linear decay that reaches 0 at ``total``."""
    constant = round(total * constant_fraction)
    if step < constant or total <= constant:
        return 1.0
    return max(0.0, (total - step) / (total - constant))


def set_learning_rates(optimizers: Optimizers, opts: TrainOptions, step: int, total: int,
                       fixed_trunk_steps: int) -> float:
    lr = opts.optim.lr * lr_factor(step, total, opts.optim.constant_fraction)
    for group in optimizers.generator.param_groups:
        held = group.get("name") == "global_trunk" and step < fixed_trunk_steps
        group["lr"] = 0.0 if held else lr
    for group in optimizers.discriminator.param_groups:
        group["lr"] = lr
    return lr


# --------------------------------------------------------------------------------------------
# Stop requests (SIGINT / SIGTERM)
# --------------------------------------------------------------------------------------------


class StopRequest:
    """Why the loop should stop after the current step (it then saves a checkpoint and stops):
    the first SIGINT/SIGTERM (a second one interrupts at once), a file named ``STOP`` in the
    run folder (works on every OS, where Windows has no catchable SIGTERM), or ``callback()``
    returning True (a caller running training in-process, such as the worker)."""

    def __init__(self, stop_file: Path | None = None,
                 callback: Callable[[], bool] | None = None) -> None:
        self.requested = False
        self.stop_file = stop_file
        self.callback = callback
        self._previous: dict[int, Any] = {}

    def asked(self) -> bool:
        if not self.requested and self.stop_file is not None and self.stop_file.exists():
            self.requested = True
        if not self.requested and self.callback is not None and self.callback():
            self.requested = True
        return self.requested

    def _handle(self, signum: int, frame: Any) -> None:
        if self.requested:
            signal.signal(signum, self._previous.get(signum, signal.SIG_DFL))
            raise KeyboardInterrupt
        self.requested = True
        print(f"\n{signal.Signals(signum).name}: saving a checkpoint, then stopping "
              f"(send it again to stop at once)", file=sys.stderr)

    def __enter__(self) -> "StopRequest":
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: Any) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)


# --------------------------------------------------------------------------------------------
# One stage
# --------------------------------------------------------------------------------------------


@dataclass
class RunContext:
    """What every stage of one ``train`` call shares."""

    run: RunFolder
    opts: TrainOptions
    runtime: Runtime
    prepared: PreparedRun
    vgg: torch.nn.Module | None  # the perceptual loss (None: --perceptual none)
    board: Board
    status: StatusFile
    stop: StopRequest


class StageRun:
    """Trains one stage from its start or its latest checkpoint."""

    def __init__(self, context: RunContext, stage: str) -> None:
        c = context
        self.run, self.opts, self.stage, self.rt = c.run, c.opts, stage, c.runtime
        self.prepared, self.vgg, self.board, self.status = c.prepared, c.vgg, c.board, c.status
        self.stop, self.progress = c.stop, c.opts.runtime.progress
        opts, prepared, runtime = c.opts, c.prepared, c.runtime
        self.size = opts.stage_size(stage)
        multiple = face_multiple(opts)
        length = opts.sequence_length()
        matte = opts.model.matte == "on"
        self.window = stage_window(opts, stage, prepared)
        self.train_data = FrameSequenceDataset(prepared, self.size, "train", length, multiple,
                                               matte, self.window)
        if len(self.train_data) == 0:
            raise InputError(prepared.folder, f"too few training frames for samples of {length} "
                                              f"consecutive frames")
        eval_split = "eval" if prepared.eval_range[1] > prepared.eval_range[0] else "train"
        self.eval_data = FrameSequenceDataset(prepared, self.size, eval_split, 1, multiple, matte,
                                              self.window)
        self.sampler = EpochSampler(len(self.train_data), opts.runtime.seed, runtime.rank,
                                    runtime.world)
        self.steps_per_epoch = math.ceil(self.sampler.per_rank / opts.runtime.batch_size)
        self.last_checkpoint: Path | None = None

    # -- schedule ------------------------------------------------------------------------------

    def total_steps(self, steps: int | None, epochs: float | None) -> int:
        if steps is not None:
            return int(steps)
        epochs = self.opts.stage_epochs(self.stage) if epochs is None else epochs
        return max(1, math.ceil(epochs * self.steps_per_epoch))

    # -- state ---------------------------------------------------------------------------------

    def _build(self, resume_from: Path | None) -> tuple[StageNets, Optimizers, int, dict]:
        """Networks and optimizers, fresh (from the previous stage) or from a checkpoint."""
        opts, stage = self.opts, self.stage
        saved = ckpt.load_checkpoint(resume_from) if resume_from is not None else None
        if saved is not None:
            self._check_compatible(saved, resume_from)
        torch.manual_seed(opts.runtime.seed + ("global", "local", "face").index(stage))
        prev = previous_stage(opts, stage)
        if saved is not None or prev is None:
            nets = fresh_nets(opts, stage)
        else:
            prev_path = stage_checkpoint(self.run.root, prev)
            prev_state = self._finished_previous(prev, prev_path)
            nets = nets_from_previous(opts, stage, prev_state["nets"])
        if saved is not None:
            for name, net in nets.named().items():
                net.load_state_dict(saved["nets"][name])
        for net in nets.named().values():
            self.rt.prepare_module(net)
        if stage == "face":
            freeze(nets.generator)
            freeze(nets.discriminator)
        g_params = generator_param_groups(nets, stage)
        _, d_params = trainable_parameters(nets, stage)
        betas = (opts.optim.beta1, opts.optim.beta2)
        optimizers = Optimizers(
            torch.optim.Adam(g_params, lr=opts.optim.lr, betas=betas),
            torch.optim.Adam(d_params, lr=opts.optim.lr, betas=betas),
            torch.amp.GradScaler(self.rt.device.type, enabled=self.rt.needs_scaler))
        step, extra = 0, {}
        if saved is not None:
            optimizers.generator.load_state_dict(saved["optim"]["G"])
            optimizers.discriminator.load_state_dict(saved["optim"]["D"])
            if saved.get("scaler"):
                optimizers.scaler.load_state_dict(saved["scaler"])
            for optimizer in (optimizers.generator, optimizers.discriminator):
                for group in optimizer.param_groups:  # a resume given new betas takes them
                    group["betas"] = betas
            step = int(saved["step"])
            extra = saved
        return nets, optimizers, step, extra

    def _finished_previous(self, prev: str, path: Path | None) -> dict:
        if path is None:
            raise InputError(self.run.checkpoints(prev), f"stage {prev} has not been trained; "
                                                         f"it comes before {self.stage}")
        state = ckpt.load_checkpoint(path)
        if not state.get("done"):
            raise InputError(path, f"stage {prev} is not finished (step {state['step']} of "
                                   f"{state['total_steps']}); train it first with "
                                   f"--stage {prev} --resume")
        return state

    def _check_compatible(self, saved: dict, path: Path) -> None:
        if saved.get("stage") != self.stage:
            raise InputError(path, f"is a checkpoint of stage {saved.get('stage')}, not {self.stage}")
        if saved.get("prepared") != self.prepared.fingerprint:
            raise InputError(path, "was trained on other prepared data (the run folder was "
                                   "prepared again); start a new run")
        _check_network_options(TrainOptions.from_dict(saved["options"]), self.opts, path)
        changed = (saved.get("world"), saved.get("batch_size")) != (self.rt.world,
                                                                    self.opts.runtime.batch_size)
        if changed and self.rt.is_main:
            print(f"note: {path} was written by {saved.get('world')} process(es) with batch "
                  f"{saved.get('batch_size')}; continuing with {self.rt.world} and batch "
                  f"{self.opts.runtime.batch_size} (the data order changes)", file=sys.stderr)

    def _save(self, nets: StageNets, optimizers: Optimizers, step: int, total: int,
              done: bool) -> Path | None:
        if not self.rt.is_main:
            return None
        state = {
            "stage": self.stage, "step": step, "total_steps": total, "done": done,
            "steps_per_epoch": self.steps_per_epoch, "world": self.rt.world,
            "batch_size": self.opts.runtime.batch_size, "prepared": self.prepared.fingerprint,
            "options": self.opts.to_dict(), "size": list(self.size),
            # what the step implies, spelled out for readers of the checkpoint
            "data_order": {"seed": self.opts.runtime.seed,
                           "epoch": step // self.steps_per_epoch,
                           "position": (step % self.steps_per_epoch) * self.opts.runtime.batch_size},
            "lr_schedule": {"kind": "constant-then-linear-to-zero", "lr": self.opts.optim.lr,
                            "constant_fraction": self.opts.optim.constant_fraction,
                            "total_steps": total},
            "nets": {name: net.state_dict() for name, net in nets.named().items()},
            "optim": {"G": optimizers.generator.state_dict(),
                      "D": optimizers.discriminator.state_dict()},
            "scaler": optimizers.scaler.state_dict() if optimizers.scaler.is_enabled() else None,
            "rng": ckpt.capture_rng(),
        }
        path = ckpt.save_checkpoint(self.run.checkpoints(self.stage), step, state,
                                    keep=self.opts.runtime.keep_checkpoints)
        self.last_checkpoint = path
        return path

    # -- the loop ------------------------------------------------------------------------------

    def train(self, steps: int | None = None, epochs: float | None = None,
              stop_at: int | None = None) -> dict:
        """Train the stage from its latest checkpoint (or its start) to its end, or until
        stopped (a signal, or ``stop_at`` steps reached: a checkpoint, then ``JobCancelled``).
        Returns a summary with the networks."""
        opts, rt = self.opts, self.rt
        latest = stage_checkpoint(self.run.root, self.stage)
        nets, optimizers, step, saved = self._build(latest)
        total = self.total_steps(steps, epochs)
        if saved and steps is None and epochs is None:
            total = int(saved["total_steps"])  # keep the schedule the stage started with
        if step >= total:
            self.last_checkpoint = latest
            return {"stage": self.stage, "step": step, "total_steps": total, "skipped": True,
                    "nets": nets}
        if saved:
            ckpt.restore_rng(saved["rng"])
        trainer = TrainStep(nets, self.stage, opts, rt, optimizers, self.vgg,
                            uses_local(opts, self.stage))
        fixed_trunk = round(opts.schedule.fix_global_epochs * self.steps_per_epoch) \
            if self.stage == "local" else 0
        loader = DataLoader(self.train_data, batch_size=opts.runtime.batch_size,
                            sampler=self.sampler, num_workers=opts.runtime.workers,
                            collate_fn=collate, pin_memory=rt.device.type == "cuda",
                            generator=torch.Generator())  # keeps the global RNG untouched
        bar = ProgressBar(self.stage, step, total, self.progress and rt.is_main)
        self.status.update(state="running", stage=self.stage, step=step, total_steps=total,
                           message=describe(opts))
        if self.window is not None and rt.is_main:
            print(f"{self.stage}: {self.window.describe(self.train_data.windows)}",
                  file=sys.stderr)
        losses: dict[str, float] = {}
        timer = _StepTimer()
        watch = DivergenceWatch(step + 1)
        try:
            while step < total:
                epoch, position = divmod(step, self.steps_per_epoch)
                self.sampler.set_epoch(epoch, position * opts.runtime.batch_size)
                for batch in loader:
                    lr = set_learning_rates(optimizers, opts, step, total, fixed_trunk)
                    data = self._batch(batch)
                    raw = trainer(data, step)
                    step += 1
                    timer.tick()
                    logging = step % opts.runtime.log_every == 0 or step == total
                    stopping = any_rank(self.stop.asked() or step == stop_at, rt)
                    saving = stopping or step % opts.runtime.checkpoint_every == 0 \
                        or step >= total
                    if logging or saving or step == watch.first_step:
                        losses = mean_over_ranks({k: float(v) for k, v in raw.items()}, rt)
                        self._check_losses(watch, losses, step)  # before a checkpoint keeps them
                    if logging:
                        self._log(step, total, epoch, losses, lr, timer)
                    if step % opts.runtime.image_every == 0 and rt.is_main:
                        self._log_batch_images(data, trainer, step)
                    bar.advance(losses)
                    if saving:
                        self._checkpoint(nets, optimizers, trainer, step, total)
                    if stopping:
                        self.status.update(state="cancelled", step=step, message=f"stopped at step {step}; "
                                           "train again with --resume to continue")
                        raise JobCancelled(f"training stopped at step {step} of stage "
                                        f"{self.stage}; checkpoint {self.last_checkpoint}")
                    if step >= total:
                        break
        finally:
            bar.close()
        return {"stage": self.stage, "step": step, "total_steps": total, "losses": losses,
                "seconds_per_step": timer.seconds_per_step, "checkpoint": self.last_checkpoint,
                "nets": nets}

    def _check_losses(self, watch: "DivergenceWatch", losses: dict[str, float],
                      step: int) -> None:
        """Stop the stage when its losses diverge (no checkpoint keeps those weights)."""
        problem = watch.problem(losses, step)
        if problem is None:
            return
        kept = (f"its last good checkpoint ({self.last_checkpoint.name}) is kept"
                if self.last_checkpoint is not None else "no checkpoint of it was kept")
        raise Diverged(self.run.root, f"stage {self.stage} diverged at step {step}: {problem}; "
                                      f"--lr {self.opts.optim.lr:g} is likely too large. "
                                      f"Training stopped and {kept}: train again with --resume "
                                      f"and a smaller --lr (the paper's is 0.0002)")

    def _checkpoint(self, nets: StageNets, optimizers: Optimizers, trainer: TrainStep,
                    step: int, total: int) -> None:
        path = self._save(nets, optimizers, step, total, done=step >= total)
        if not self.rt.is_main:
            barrier(self.rt)
            return
        error, rows = heldout_report(trainer.generation, self.eval_data, self.rt,
                                     self.opts.runtime.eval_frames)
        grid = image_grid(rows)
        save_png(self.run.samples / f"{self.stage}_step_{step:08d}.png", grid)
        self.board.image(f"{self.stage}/heldout", grid, step)
        self.board.scalars(f"{self.stage}/eval", {"L1": error}, step)
        self.board.flush()
        rel = path.relative_to(self.run.root) if path else None
        self.status.update(last_checkpoint=str(rel), eval_l1=error)
        barrier(self.rt)

    def _log(self, step: int, total: int, epoch: int, losses: dict[str, float], lr: float,
             timer: "_StepTimer") -> None:
        if not self.rt.is_main:
            return
        self.board.scalars(f"{self.stage}/loss", losses, step)
        self.board.scalars(f"{self.stage}/train", {"lr": lr}, step)
        sps = timer.seconds_per_step
        self.status.update(stage=self.stage, step=step, total_steps=total,
                           epoch=round(step / self.steps_per_epoch, 3),
                           losses={k: round(v, 5) for k, v in losses.items()},
                           seconds_per_step=sps, eta_s=None if sps is None else sps * (total - step))

    def _batch(self, batch: dict[str, torch.Tensor]) -> Batch:
        """The loader's tensors on the device, as one list entry per frame."""
        rt = self.rt
        frames = {key: [rt.to_device(x) for x in batch[key].unbind(1)]
                  for key in ("labels", "images", "masks") if key in batch}
        boxes = [[tuple(int(v) for v in b) for b in frame_boxes]
                 for frame_boxes in batch["face_boxes"].unbind(1)]
        plate = rt.to_device(batch["plate"]) if "plate" in batch else None
        windows = None if self.window is None else [
            Windows.of(regions.tolist(), self.window.size) for regions in batch["windows"].unbind(1)]
        return Batch(frames["labels"], frames["images"], boxes, frames.get("masks"), plate,
                     windows)

    def _log_batch_images(self, data: Batch, trainer: TrainStep, step: int) -> None:
        from backend.models.images import to_image

        with torch.no_grad(), self.rt.autocast():
            fakes, _ = trainer.generation([x[:1] for x in data.labels],
                                          [b[:1] for b in data.boxes], None,
                                          None if data.plate is None else data.plate[:1],
                                          None if data.windows is None
                                          else [Windows(w.regions[:1], w.size)
                                                for w in data.windows])
        rows = [[to_image(x[0]), to_image(y[0]), to_image(f[0])]
                for x, y, f in zip(data.labels, data.images, fakes)]
        self.board.image(f"{self.stage}/train", image_grid(rows), step)


class Diverged(InputError):
    """A stage's losses stopped being finite or grew a hundredfold: the options (usually
    the learning rate) make training fail; the last good checkpoint stays."""


class DivergenceWatch:
    """Whether a stage's losses diverge: one that is not finite, or G's total grown to
    ``GROWTH`` times the smallest measured in this call (from its first step on)."""

    GROWTH = 100.0

    def __init__(self, first_step: int) -> None:
        self.first_step = first_step
        self.least: tuple[float, int] | None = None  # (G's total, at step)

    def problem(self, losses: dict[str, float], step: int) -> str | None:
        """What diverged at ``step``, in words, or None."""
        broken = [name for name, value in losses.items() if not math.isfinite(value)]
        if broken:
            return f"{', '.join(broken)} {'is' if len(broken) == 1 else 'are'} not finite"
        total = losses.get("G_total")
        if total is None:
            return None
        if self.least is not None and total > self.GROWTH * max(self.least[0], 1e-6):
            least, at = self.least
            return (f"G's loss grew from {least:.4g} (step {at}) to {total:.4g}, more than "
                    f"{self.GROWTH:g} times")
        if self.least is None or total < self.least[0]:
            self.least = (total, step)
        return None


class _StepTimer:
    """Seconds per step, smoothed (the first steps are slower: allocation, cuDNN tuning)."""

    def __init__(self) -> None:
        self.last = time.perf_counter()
        self.seconds_per_step: float | None = None

    def tick(self) -> None:
        now = time.perf_counter()
        dt, self.last = now - self.last, now
        self.seconds_per_step = dt if self.seconds_per_step is None else \
            0.9 * self.seconds_per_step + 0.1 * dt


# --------------------------------------------------------------------------------------------
# The whole run
# --------------------------------------------------------------------------------------------


def _perceptual(opts: TrainOptions, runtime: Runtime) -> torch.nn.Module | None:
    """The VGG loss, or None with ``--perceptual none``; WeightsUnavailable stops training."""
    if opts.loss.perceptual == "none":
        return None
    from training.models.losses import VGGLoss
    from training.models.vgg import load_vgg19

    vgg = VGGLoss(load_vgg19(opts.loss.vgg_weights))
    return runtime.prepare_module(vgg)


def resolve_matte(opts: TrainOptions, prepared: PreparedRun, say: bool = True) -> TrainOptions:
    """``opts`` with ``model.matte`` "on" or "off": "auto" is on where the run has a plate
    of a static camera. "on" without one is an error that says why."""
    background = prepared.manifest.background
    mode = opts.model.matte
    if mode == "off":
        return opts
    if background is None:
        if mode == "auto":
            if say:
                print(f"note: {prepared.folder} was prepared without the person's masks; "
                      f"training the paper's full-frame generator (`prepare` again adds them)",
                      file=sys.stderr)
            return replace(opts, model=replace(opts.model, matte="off"))
        raise InputError(prepared.folder, "was prepared without the person's masks and the "
                                          "background plate; run `prepare` again (it adds "
                                          "them), or train with --matte off")
    if not background.get("static"):
        if mode == "on":
            raise InputError(prepared.plate_path, f"{background.get('verdict')}: a plate "
                                                  f"cannot stand behind it; train with "
                                                  f"--matte off (the paper's full frame)")
        if say:
            print(f"note: {background.get('verdict')}; training the paper's full-frame "
                  f"generator", file=sys.stderr)
        return replace(opts, model=replace(opts.model, matte="off"))
    return replace(opts, model=replace(opts.model, matte="on"))


def resolve_window(opts: TrainOptions, prepared: PreparedRun, say: bool = True) -> TrainOptions:
    """``opts`` (its matte resolved) with ``model.window`` "on" or "off": "auto" is on
    wherever the matte is; "on" without a matte is an error that says why."""
    mode, matte = opts.model.window, opts.model.matte == "on"
    if mode == "off" or (mode == "on" and matte):
        return opts
    if mode == "on":
        raise InputError(prepared.folder, "a person window needs the matte, and this run "
                                          "trains the whole frame (see the note above); "
                                          "train with --window off")
    if not matte and say:
        print("note: no person window without the matte: G paints the whole frame",
              file=sys.stderr)
    return replace(opts, model=replace(opts.model, window="on" if matte else "off"))


def _check_prepared(prepared: PreparedRun, opts: TrainOptions) -> None:
    cw, ch = prepared.canvas
    w, h = opts.size
    if w * ch != h * cw:
        raise InputError(prepared.folder, f"was prepared at {cw}x{ch}, which does not have the "
                                          f"aspect ratio of the training size {w}x{h}; prepare "
                                          f"again with --preset {opts.preset}")
    if w > cw:
        print(f"note: frames were prepared at {cw}x{ch}, smaller than the training size "
              f"{w}x{h}; they are enlarged on load", file=sys.stderr)


def _precision_to_run(opts: TrainOptions, run: RunFolder) -> str:
    """The precision to set up: the options' own, except for "auto" in a run of an earlier
    version, whose train_options.json says "auto" (the precision used was not recorded then):
    on the CPU it meant fp32 and stays so, so that a resume is exact (`backend.runtime` now
    picks bf16 on CPUs that compute it natively)."""
    precision = opts.runtime.precision
    if precision != "auto" or not run.options.is_file():
        return precision
    saved = load_run_options(run.root)
    if saved is not None and saved.runtime.precision == "auto" and \
            resolve_device(opts.runtime.device).type == "cpu":
        return "fp32"
    return precision


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
    runtime = setup(opts.runtime.device, _precision_to_run(opts, run),
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
        _check_prepared(prepared, opts)
        opts = resolve_matte(opts, prepared, runtime.is_main)
        opts = resolve_window(opts, prepared, runtime.is_main).with_reconstruction()
        _check_checkpoints(run, opts, stages, resume)  # a refused command writes nothing
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


def _check_checkpoints(run: RunFolder, opts: TrainOptions, stages: list[str],
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
        _check_network_options(TrainOptions.from_dict(ckpt.saved_options(latest)), opts,
                               latest)


def _check_network_options(old: TrainOptions, new: TrainOptions, path: Path) -> None:
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
