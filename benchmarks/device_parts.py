"""The measurements of ``benchmarks/device_check.py``, each run in a process of its own.

Every ``*_child(params)`` gets the JSON parameters its parent passed and returns a JSON-able
dict. A part runs in its own process so that its peak memory is its own, and so that an
out-of-memory error or a broken CUDA context ends that part only.
"""

from __future__ import annotations

import contextlib
import json
import math
import os
import statistics
import time
from pathlib import Path
from typing import Any, Callable

from benchmarks.common import cuda_peak_mb, cuda_sync

# --------------------------------------------------------------------------------------------
# (a) the generator per preset, fp32 against bf16 (fp16 where the GPU has no bf16)
# --------------------------------------------------------------------------------------------


def generator_child(p: dict[str, Any]) -> dict[str, Any]:
    import torch

    device = torch.device(p["device"])
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True  # fixed sizes, as the transfer sets it
    results: dict[str, Any] = {}
    for name in p["presets"]:
        try:
            results[name] = time_generator(name, device, p["low"], p["runs"], p["warmup"])
        except Exception as exc:  # noqa: BLE001 - out of memory etc.: this preset only
            results[name] = {"error": error_text(exc)}
        if device.type == "cuda":
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats(device)
    return {"presets": results, "low": p["low"], "device": describe_device(device),
            "tf32": torch.backends.cudnn.allow_tf32 if device.type == "cuda" else None}


def time_generator(name: str, device: Any, low: str, runs: int, warmup: int) -> dict[str, Any]:
    """ms/frame of the preset's G (random weights, batch 1, its training size) in fp32 and in
    ``low`` autocast, alternating frame by frame; the largest difference of their outputs."""
    import torch

    from backend.models import build_generator
    from benchmarks.bench_onnx import preset_networks

    torch.manual_seed(0)
    config, _, (width, height) = preset_networks(name)
    layout = torch.channels_last if device.type == "cuda" else torch.contiguous_format
    net = build_generator(config).eval().to(device, memory_format=layout)
    x = torch.rand(1, config.input_nc, height, width, generator=torch.Generator().manual_seed(0))
    x = (x * 2 - 1).to(device).contiguous(memory_format=layout)
    dtypes = {"fp32": None, low: getattr(torch, {"bf16": "bfloat16", "fp16": "float16"}[low])}

    def forward(dtype: Any) -> Any:
        cast = (torch.autocast(device.type, dtype=dtype) if dtype is not None
                else contextlib.nullcontext())
        with torch.inference_mode(), cast:
            return net(x)

    outputs = {mode: forward(dtype).float() for mode, dtype in dtypes.items()}
    for _ in range(warmup):  # cuDNN's algorithm search, allocations
        for dtype in dtypes.values():
            forward(dtype)
    times = alternate({mode: (lambda d=dtype: forward(d)) for mode, dtype in dtypes.items()}, runs)
    figures = {mode: rate(ts) for mode, ts in times.items()}
    return {"size": f"{width}x{height}", "runs": runs, **figures,
            "speedup": round(figures["fp32"]["median_ms"] / figures[low]["median_ms"], 2),
            "max_abs_diff": round(float((outputs[low] - outputs["fp32"]).abs().max()), 5),
            "cuda_peak_mb": cuda_peak_mb()}


def alternate(calls: dict[str, Callable[[], Any]], runs: int) -> dict[str, list[float]]:
    """Seconds of each call, ``runs`` times, taking turns (so both see the same load)."""
    times: dict[str, list[float]] = {name: [] for name in calls}
    for _ in range(runs):
        for name, call in calls.items():
            cuda_sync()
            began = time.perf_counter()
            call()
            cuda_sync()
            times[name].append(time.perf_counter() - began)
    return times


def rate(seconds: list[float]) -> dict[str, float]:
    median = statistics.median(seconds)
    return {"median_ms": round(1000 * median, 3), "min_ms": round(1000 * min(seconds), 3),
            "fps": round(1 / median, 2)}


# --------------------------------------------------------------------------------------------
# (b), (c), (e) training steps with the trainer itself
# --------------------------------------------------------------------------------------------


class StepClock:
    """The trainer's ``should_stop``, which it calls once per step: notes the time (after the
    GPU's queued work) and, on rank 0, the step's losses, which the trainer has just written
    to ``status.json`` (every step with ``log_every`` 1). Never asks to stop."""

    def __init__(self, status: Path, main: bool) -> None:
        self.status, self.main = status, main
        self.times: list[float] = []
        self.losses: list[dict[str, float]] = []

    def __call__(self) -> bool:
        cuda_sync()
        self.times.append(time.perf_counter())
        if self.main:
            self.losses.append(json.loads(self.status.read_text()).get("losses", {}))
        return False


def train_options(p: dict[str, Any]) -> Any:
    """The preset's options as the check trains them: AMP and channels_last on CUDA (the
    trainer's defaults), the loss and every step's losses logged."""
    from training.options import preset

    opts = preset(p["preset"])
    opts.runtime.device, opts.runtime.precision, opts.runtime.channels_last = p["device"], "auto", True
    opts.runtime.tensorboard, opts.runtime.progress = False, False
    opts.runtime.log_every = 1  # the step's losses, read by StepClock (one sync per step)
    opts.runtime.checkpoint_every = 10**9  # one checkpoint, at the end
    opts.runtime.eval_frames = 2
    vgg = p.get("vgg_weights")
    opts.loss.perceptual, opts.loss.vgg_weights = ("vgg", vgg) if vgg else ("none", None)
    opts.loss.lambda_l1 = 0.0 if vgg else 10.0  # as the README advises without VGG19
    return opts


def train_child(p: dict[str, Any]) -> dict[str, Any] | None:
    """``warmup`` + ``steps`` steps of one stage of a copy of a prepared run (a stage after the
    first gets its predecessor trained for one step first); under torchrun every process runs
    this and rank 0 answers."""
    import torch
    import torch.distributed as dist

    from training.trainer import train

    opts, run, stage = train_options(p), Path(p["run"]), p["stage"]
    main = int(os.environ.get("RANK", "0")) == 0
    try:
        for before in opts.schedule.stages[:opts.schedule.stages.index(stage)]:
            if before != "face":
                train(run, opts, stages=[before], steps=1)
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        clock = StepClock(run / "status.json", main)
        train(run, opts, stages=[stage], steps=p["warmup"] + p["steps"], should_stop=clock)
    finally:
        if dist.is_available() and dist.is_initialized():
            dist.destroy_process_group()
    return train_figures(p, opts, clock) if main else None


def train_figures(p: dict[str, Any], opts: Any, clock: StepClock) -> dict[str, Any]:
    import torch

    step_times = [b - a for a, b in zip(clock.times, clock.times[1:])][max(p["warmup"] - 1, 0):]
    l1 = [losses.get("L1", math.nan) for losses in clock.losses]
    width, height = opts.stage_size(p["stage"])
    median = statistics.median(step_times) if step_times else math.nan
    on_gpu = p["device"].startswith("cuda")
    return {
        "preset": p["preset"], "stage": p["stage"], "size": f"{width}x{height}",
        "world": int(os.environ.get("WORLD_SIZE", "1")), "batch": opts.runtime.batch_size,
        "steps": len(clock.times), "timed_steps": len(step_times),
        "median_s": round(median, 4), "steps_per_s": round(1 / median, 3),
        "amp": amp_name(torch, on_gpu), "channels_last": on_gpu,
        "perceptual": opts.loss.perceptual, "l1_per_step": [round(v, 5) for v in l1],
        "final_losses": clock.losses[-1] if clock.losses else {},
        "losses_finite": all(math.isfinite(v) for ls in clock.losses for v in ls.values()),
        "cuda_peak_mb": cuda_peak_mb(),
    }


def amp_name(torch: Any, on_gpu: bool) -> str:
    """The precision the trainer picks ("auto"): bf16 where the GPU has it, else fp16."""
    if not on_gpu:
        return "fp32"
    return "bf16" if torch.cuda.is_bf16_supported() else "fp16"


# --------------------------------------------------------------------------------------------
# (d) a whole transfer job, and pose detection on its own
# --------------------------------------------------------------------------------------------


def transfer_child(p: dict[str, Any]) -> dict[str, Any]:
    """A ``run_transfer`` job with the source's given poses (detection is measured apart)."""
    os.environ["EVERYBODY_DANCE_CACHE"] = p["cache"]
    from backend.transfer import TransferJob, run_transfer

    out = Path(p["out"])
    job = TransferJob(Path(p["source"]), Path(p["bundle"]), out, device=p["device"],
                      cpu_backend="torch", poses=Path(p["poses"]))
    began = time.perf_counter()
    result = run_transfer(job)
    seconds = time.perf_counter() - began
    status = json.loads((out / "status.json").read_text())
    stages = {name: t["fps"] for name, t in status["timings"].items()}
    drawn = {name: fps for name, fps in stages.items() if name != "poses"}  # poses were given
    return {"frames": result.frame_count, "seconds": round(seconds, 3),
            "end_fps": round(result.frame_count / seconds, 2), "stages": stages,
            "limited_by": min(drawn, key=drawn.get), "device": status["device"],
            "backend": json.loads((out / "job.json").read_text())["backend"],
            "load_seconds": status["load_seconds"],
            "cuda_peak_mb": cuda_peak_mb()}


def detect_child(p: dict[str, Any]) -> dict[str, Any]:
    """Frames/s of pose detection (MediaPipe on the CPU) with each worker count."""
    from backend.pose.detector import HolisticConfig, detect_video

    results = {}
    for workers in p["workers"]:
        began = time.perf_counter()
        track = detect_video(Path(p["source"]), HolisticConfig(workers=workers), stop=p["frames"],
                             progress=False, use_cache=False)
        seconds = time.perf_counter() - began
        results[str(workers)] = {"frames": len(track), "seconds": round(seconds, 3),
                                 "fps": round(len(track) / seconds, 2),
                                 "chunks": len(track.detector.get("chunks", [None])),
                                 "detection_rate": round(track.detection_rate(), 3)}
    return {"workers": results}


# --------------------------------------------------------------------------------------------


CHILDREN: dict[str, Callable[[dict[str, Any]], dict[str, Any] | None]] = {
    "generator": generator_child, "train": train_child, "transfer": transfer_child,
    "detect": detect_child,
}


def run_child_part(name: str, params: str) -> None:
    """Run one part and print its figures as one JSON line (rank 0 only under torchrun)."""
    result = CHILDREN[name](json.loads(params))
    if result is not None:
        print(json.dumps(result), flush=True)


def describe_device(device: Any) -> str:
    import torch

    if device.type == "cuda":
        return f"{device} ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


def error_text(exc: BaseException) -> str:
    """The first line of an error, with its type (an out-of-memory message is long)."""
    first = (str(exc).strip().splitlines() or [""])[0]
    return f"{type(exc).__name__}: {first[:300]}"
