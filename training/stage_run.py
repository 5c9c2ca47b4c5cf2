"""One stage's training: its data, its networks and optimizers (fresh, from the previous stage,
or from its checkpoint), the loop, its checkpoints, logs and held-out samples.

Exact resume: a checkpoint stores the networks, both optimizers, the GradScaler, the step
(from which the epoch, the position in the epoch and the learning rate follow), the data
order's seed, and every random generator's state; the sampler's order depends only on
(seed, epoch), and no step draws from a global random generator. On the CPU, N steps, a stop
and a resume, then N more steps give the same weights as 2N steps in one go. (On CUDA,
cudnn.benchmark may pick different kernels after a restart: equal up to float rounding.)
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from torch.utils.data import DataLoader

from backend.errors import InputError, JobCancelled
from backend.runtime import Runtime
from backend.target.prepared import PreparedRun
from backend.target.window import Windows

from . import checkpoint as ckpt
from .data.dataset import EpochSampler, FrameSequenceDataset, collate
from .distributed import any_rank, barrier, mean_over_ranks
from .divergence import Diverged, DivergenceWatch
from .heldout import heldout_report
from .learning_rate import set_learning_rates
from .logging import Board, ProgressBar, StatusFile, image_grid, save_png
from .options import TrainOptions, describe
from .run_folder import RunFolder, check_network_options, stage_checkpoint
from .stages import (StageNets, face_multiple, fresh_nets, freeze, generator_param_groups,
                     nets_from_previous, previous_stage, stage_window, trainable_parameters,
                     uses_local)
from .step import Batch, Optimizers, TrainStep
from .stopping import StopRequest


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
        check_network_options(TrainOptions.from_dict(saved["options"]), self.opts, path)
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
                    checked = logging or step == watch.first_step
                    if checked:
                        losses = mean_over_ranks({k: float(v) for k, v in raw.items()}, rt)
                        self._check_losses(watch, losses, step)
                    if logging:  # before should_stop is asked: it may read this step's status
                        self._log(step, total, epoch, losses, lr, timer)
                    if step % opts.runtime.image_every == 0 and rt.is_main:
                        self._log_batch_images(data, trainer, step)
                    bar.advance(losses)
                    stopping = any_rank(self.stop.asked() or step == stop_at, rt)
                    saving = stopping or step % opts.runtime.checkpoint_every == 0 \
                        or step >= total
                    if saving and not checked:  # a checkpoint keeps only losses checked
                        losses = mean_over_ranks({k: float(v) for k, v in raw.items()}, rt)
                        self._check_losses(watch, losses, step)
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
