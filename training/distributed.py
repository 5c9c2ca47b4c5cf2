"""Processes: one process per GPU under ``torchrun``, or a single process.

``torchrun --nproc_per_node=G -m training train RUN_DIR`` sets RANK, WORLD_SIZE and
LOCAL_RANK; ``setup`` then joins the process group (NCCL on GPUs, gloo on CPUs) and picks
the process's device. Only rank 0 logs, writes checkpoints and the status file; every rank
reads the same prepared data through its share of the ``EpochSampler``.

Device and precision follow the one rule of ``backend.runtime`` (transfer's too): on CUDA,
bf16 autocast where the GPU supports it (no loss scaling needed), else fp16 with a
GradScaler; channels_last memory and cudnn.benchmark. The CPU trains in fp32.
"""

from __future__ import annotations

import os
from dataclasses import replace

import torch
import torch.distributed as dist

from backend.runtime import Runtime, use_cpu_threads


def setup(device: str = "auto", precision: str = "auto", channels_last: bool = True,
          threads: int = 0, pixels: int = 0) -> Runtime:
    """Join the process group when launched by torchrun, and choose device and precision.
    On the CPU, torch's thread count is ``threads``, or with 0 chosen for the cores and the
    frames' ``pixels`` (``backend.runtime.cpu_threads``)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    runtime = replace(Runtime.resolve(device, precision, channels_last, local_rank),
                      rank=rank, world=world)
    if runtime.device.type == "cpu" or threads > 0:
        use_cpu_threads(threads, pixels)
    if runtime.device.type == "cuda":
        torch.cuda.set_device(runtime.device)
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if runtime.device.type == "cuda" else "gloo")
    return runtime


def teardown() -> None:
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def any_rank(flag: bool, runtime: Runtime) -> bool:
    """True when ``flag`` is true on any process (so all ranks stop at the same step)."""
    if not runtime.distributed:
        return flag
    value = torch.tensor([1.0 if flag else 0.0],
                         device=runtime.device if runtime.device.type == "cuda" else "cpu")
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def mean_over_ranks(values: dict[str, float], runtime: Runtime) -> dict[str, float]:
    """Average scalar losses over processes (for logging)."""
    if not runtime.distributed or not values:
        return values
    keys = sorted(values)
    tensor = torch.tensor([values[k] for k in keys], dtype=torch.float64,
                          device=runtime.device if runtime.device.type == "cuda" else "cpu")
    dist.all_reduce(tensor)
    tensor /= runtime.world
    return dict(zip(keys, tensor.tolist()))


def barrier(runtime: Runtime) -> None:
    if runtime.distributed:
        dist.barrier()
