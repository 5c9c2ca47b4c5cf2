"""Seconds per training step, per preset and stage, with the training code itself.

    python benchmarks/bench_train.py [--presets tiny cpu-small] [--stages global face]
                                     [--steps N] [--warmup 1] [--vgg-weights PATH]
                                     [--device auto] [--precision auto] [--quick] [--json out.json]

Each (preset, stage) runs in a fresh process (so its peak memory is its own). There the
stage's networks are built as ``training/stage_run.py`` builds them for a new stage
(``fresh_nets`` with random weights: speed does not depend on them; the face stage's G and
D frozen), with Adam and the GradScaler of the trainer, on the device and precision that
``training.distributed.setup`` picks from the preset's options (CUDA: bf16 autocast where the
GPU supports it, else fp16 with loss scaling, channels_last; the CPU: fp32, the preset's
thread count; a preset's "auto" matte and window on, as for a static camera). Then ``TrainStep`` (training/step.py: G on two consecutive frames, the
discriminator update, the generator update) runs on random labels and frames of the stage's
size (with a person window: a window as tall as the frame, `step_size`), batch = the preset's, after ``--warmup`` steps; on CUDA each step is timed between
``torch.cuda.synchronize()`` calls.

Printed per (preset, stage): the median and fastest seconds per step, steps per second (from
the median), the peak resident memory of the process (VmHWM) and, on CUDA, the peak GPU memory
PyTorch allocated. Not included: loading data (the trainer's DataLoader workers prepare the
next batch while a step runs), checkpoints and held-out previews.

The VGG19 perceptual loss is off by default (``--perceptual none``: its weights cannot be
downloaded everywhere); ``--vgg-weights PATH`` (a torchvision ``vgg19`` .pth or .safetensors)
includes it, as the paper trains. paper-global / paper-local steps take a minute or more on a
laptop CPU: ask for them with ``--presets`` and few ``--steps``.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (cuda_peak_mb, cuda_sync, peak_rss_mb, run_child,  # noqa: E402
                               script_arguments, start, write_json)
from backend.choices import PRECISIONS  # noqa: E402
from training.options import PRESETS, preset  # noqa: E402

DEFAULT_PRESETS = ("tiny", "cpu-small")
STEPS = {"tiny": 10, "cpu-small": 5, "cpu-medium": 5, "cpu-large": 3, "paper-global": 2,
         "paper-local": 1}
QUICK_STEPS = {"tiny": 3, "cpu-small": 2, "cpu-medium": 2, "cpu-large": 1, "paper-global": 1,
               "paper-local": 1}


# --------------------------------------------------------------------------------------------
# One (preset, stage) in its own process
# --------------------------------------------------------------------------------------------


def options(name: str, device: str, precision: str, threads: int, vgg_weights: str | None):
    """The preset's TrainOptions with the benchmark's device, precision, threads and loss."""
    opts = preset(name)
    opts.runtime.device, opts.runtime.precision = device, precision
    if threads > 0:
        opts.runtime.threads = threads
    opts.loss.perceptual = "vgg" if vgg_weights else "none"
    opts.loss.vgg_weights = vgg_weights
    # "auto" as a run of a static camera resolves it (training/resolve.py resolve_matte,
    # resolve_window): the matte and, where the preset has one, the person window
    if opts.model.matte == "auto":
        opts.model.matte = "on"
    if opts.model.window == "auto":
        opts.model.window = "on"
    opts.validate()
    return opts.with_reconstruction()


def step_size(opts, stage: str) -> tuple[int, int]:
    """The frames a step of ``stage`` runs G and D on: the stage's size, or with a person
    window a square window as tall as the frame (a standing person's window at the default
    margin is 264x256 at 512x256 on the clips of ../shared/data), rounded to G's multiple."""
    width, height = opts.stage_size(stage)
    if opts.model.window != "on":
        return width, height
    multiple = opts.model.generator(stage != "global" and "local" in opts.schedule.stages
                                    ).size_multiple
    return min(width, -(-height // multiple) * multiple), height


def build_step(opts, stage: str, runtime):
    """A ``TrainStep`` with the networks and optimizers of a new stage (as the trainer's
    ``StageRun._build`` makes them, with fresh weights)."""
    import torch

    from training.stages import (fresh_nets, freeze, generator_param_groups,
                                 trainable_parameters, uses_local)
    from training.step import Optimizers, TrainStep

    torch.manual_seed(opts.runtime.seed)
    nets = fresh_nets(opts, stage)
    for net in nets.named().values():
        runtime.prepare_module(net)
    if stage == "face":
        freeze(nets.generator)
        freeze(nets.discriminator)
    _, d_params = trainable_parameters(nets, stage)
    betas = (opts.optim.beta1, opts.optim.beta2)
    optimizers = Optimizers(
        torch.optim.Adam(generator_param_groups(nets, stage), lr=opts.optim.lr, betas=betas),
        torch.optim.Adam(d_params, lr=opts.optim.lr, betas=betas),
        torch.amp.GradScaler(runtime.device.type, enabled=runtime.needs_scaler))
    vgg = None
    if opts.loss.perceptual == "vgg":
        from training.models.losses import VGGLoss
        from training.models.vgg import load_vgg19

        vgg = runtime.prepare_module(VGGLoss(load_vgg19(opts.loss.vgg_weights)))
    return TrainStep(nets, stage, opts, runtime, optimizers, vgg, uses_local(opts, stage))


def random_batch(opts, stage: str, runtime):
    """Labels and frames in [-1, 1] of the stage's size (a sample of consecutive frames, the
    preset's batch), a face box around where a head would be, and for a generator with a
    matte masks and a plate."""
    import torch

    from backend.target.face import face_box
    from training.stages import face_multiple
    from training.step import Batch

    width, height = step_size(opts, stage)
    batch, length = opts.runtime.batch_size, opts.sequence_length()
    gen = torch.Generator().manual_seed(0)

    def frames() -> list:
        return [runtime.to_device(torch.rand(batch, 3, height, width, generator=gen) * 2 - 1)
                for _ in range(length)]

    box = face_box((width / 2, height / 4), (width, height), multiple=face_multiple(opts))
    matte = opts.model.matte == "on"
    masks = [(m + 1) / 2 for m in frames()] if matte else None
    return Batch(frames(), frames(), [[box] * batch for _ in range(length)],
                 [m[:, :1] for m in masks] if masks else None, frames()[0] if matte else None)


def child(args: list[str]) -> None:
    """Time ``steps`` training steps of one stage; print the figures as one JSON line."""
    name, stage, steps, warmup, threads = args[0], args[1], int(args[2]), int(args[3]), int(args[4])
    device, precision, vgg_weights = args[5], args[6], (args[7] if args[7] != "-" else None)
    import torch

    from training.distributed import setup

    opts = options(name, device, precision, threads, vgg_weights)
    rt = setup(opts.runtime.device, opts.runtime.precision, opts.runtime.channels_last,
               opts.runtime.threads)
    baseline = peak_rss_mb()  # after importing torch
    train_step = build_step(opts, stage, rt)
    data = random_batch(opts, stage, rt)
    for i in range(warmup):  # first steps: allocations, oneDNN / cuDNN kernel choice
        train_step(data, i)
    times = []
    for i in range(steps):
        cuda_sync()
        t0 = time.perf_counter()
        losses = train_step(data, warmup + i)
        cuda_sync()
        times.append(time.perf_counter() - t0)
    median = statistics.median(times)
    width, height = step_size(opts, stage)
    print(json.dumps({
        "preset": name, "stage": stage, "size": f"{width}x{height}",
        "batch": opts.runtime.batch_size, "frames_per_sample": opts.sequence_length(),
        "steps": steps, "warmup": warmup,
        "median_s": round(median, 4), "min_s": round(min(times), 4),
        "steps_per_s": round(1 / median, 3), "times_s": [round(t, 4) for t in times],
        "device": str(rt.device) if rt.device.type == "cpu" else
        f"{rt.device} ({torch.cuda.get_device_name(rt.device)})",
        "precision": rt.precision,
        "channels_last": rt.channels_last, "threads": torch.get_num_threads(),
        "perceptual": opts.loss.perceptual,
        "losses": {k: float(v) for k, v in losses.items()},
        "baseline_rss_mb": round(baseline, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
        "cuda_peak_mb": cuda_peak_mb(),
    }))


# --------------------------------------------------------------------------------------------
# The parent
# --------------------------------------------------------------------------------------------


def measure(name: str, stage: str, args: argparse.Namespace) -> dict[str, Any]:
    steps = args.steps or (QUICK_STEPS if args.quick else STEPS)[name]
    result = run_child(Path(__file__).resolve(), [
        name, stage, str(steps), str(args.warmup), str(args.threads), args.device, args.precision,
        str(args.vgg_weights) if args.vgg_weights else "-"])
    if not all(math.isfinite(v) for v in result["losses"].values()):
        print(f"warning: {name} {stage}: a loss is not finite: {result['losses']}",
              file=sys.stderr)
    return result


def print_header() -> None:
    print(f"{'preset':>12} {'stage':>6} {'size':>9} {'device':>10} {'prec':>5} {'steps':>5} "
          f"{'median s':>9} {'min s':>8} {'steps/s':>8} {'peak MiB':>9} {'GPU MiB':>8}")


def print_row(r: dict[str, Any]) -> None:
    gpu = f"{r['cuda_peak_mb']:8.0f}" if r.get("cuda_peak_mb") is not None else "       -"
    device = r["device"].split(" ")[0]
    print(f"{r['preset']:>12} {r['stage']:>6} {r['size']:>9} {device:>10} {r['precision']:>5} "
          f"{r['steps']:>5} {r['median_s']:9.3f} {r['min_s']:8.3f} {r['steps_per_s']:8.2f} "
          f"{r['peak_rss_mb']:9.0f} {gpu}", flush=True)


def summary(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Rows (what, figure, detail) for benchmarks/run_all.py's table."""
    rows = []
    for key, r in results.get("steps", {}).items():
        gpu = f", GPU {r['cuda_peak_mb']:.0f} MiB" if r.get("cuda_peak_mb") is not None else ""
        rows.append((f"train step {key}", f"{r['median_s']:.3f} s/step",
                     f"{r['size']} {r['device'].split(' ')[0]} {r['precision']}, "
                     f"peak {r['peak_rss_mb']:.0f} MiB{gpu}"))
    return rows


def add_preset_arguments(parser: argparse.ArgumentParser, default: tuple[str, ...]) -> None:
    """--presets and --stages: what a training-step benchmark times."""
    parser.add_argument("--presets", nargs="+", choices=list(PRESETS), default=list(default))
    parser.add_argument("--stages", nargs="+", choices=("global", "local", "face"), default=None,
                        help="stages to time (default: every stage of each preset)")


def main() -> None:
    parser = script_arguments(__doc__, child)
    if parser is None:
        return
    add_preset_arguments(parser, DEFAULT_PRESETS)
    parser.add_argument("--steps", type=int, default=None,
                        help=f"timed steps per stage (default {STEPS}; --quick {QUICK_STEPS})")
    parser.add_argument("--warmup", type=int, default=1, help="untimed steps first")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads (default 0: the preset's, as the trainer)")
    parser.add_argument("--device", default="auto", help="auto | cpu | cuda | cuda:N")
    parser.add_argument("--precision", default="auto", choices=PRECISIONS,
                        help="auto: bf16 where the GPU supports it, else fp16; the CPU fp32")
    parser.add_argument("--vgg-weights", type=Path, default=None,
                        help="VGG19 weights: include the perceptual loss (default: none)")
    parser.add_argument("--quick", action="store_true", help=f"fewer steps ({QUICK_STEPS})")
    args = parser.parse_args()
    results: dict[str, Any] = start({})
    results.update({"perceptual": "vgg" if args.vgg_weights else "none", "steps": {}})
    print(f"seconds per training step (TrainStep on random batches; data loading not "
          f"included); perceptual loss: {results['perceptual']}")
    print_header()
    for name in args.presets:
        for stage in preset(name).schedule.stages:
            if args.stages is None or stage in args.stages:
                r = measure(name, stage, args)
                results["steps"][f"{name}/{stage}"] = r
                print_row(r)
    write_json(args.json, results)


if __name__ == "__main__":
    main()
