"""Processes and devices: one process per GPU under ``torchrun``, or a single process.

``torchrun --nproc_per_node=G -m training train RUN_DIR`` sets RANK, WORLD_SIZE and
LOCAL_RANK; ``setup`` then joins the process group (NCCL on GPUs, gloo on CPUs) and picks
the process's device. Only rank 0 logs, writes checkpoints and the status file; every rank
reads the same prepared data through its share of the ``EpochSampler``.

Precision: on CUDA, bf16 autocast where the GPU supports it (no loss scaling needed), else
fp16 with a GradScaler; channels_last memory and cudnn.benchmark. The CPU runs in fp32.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


@dataclass(frozen=True)
class Runtime:
    """Where and how this process computes."""

    rank: int
    world: int
    local_rank: int
    device: torch.device
    amp_dtype: torch.dtype | None  # None: full fp32
    channels_last: bool

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    @property
    def needs_scaler(self) -> bool:
        return self.amp_dtype == torch.float16

    def autocast(self) -> contextlib.AbstractContextManager:
        """Mixed precision for forward passes (a no-op in fp32)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def to_device(self, tensor: torch.Tensor) -> torch.Tensor:
        tensor = tensor.to(self.device, non_blocking=True)
        if self.channels_last and tensor.dim() == 4:
            tensor = tensor.contiguous(memory_format=torch.channels_last)
        return tensor

    def prepare_module(self, module: torch.nn.Module) -> torch.nn.Module:
        module = module.to(self.device)
        if self.channels_last:
            module = module.to(memory_format=torch.channels_last)
        return module


def _pick_device(choice: str, local_rank: int) -> torch.device:
    if choice == "auto":
        return torch.device("cuda", local_rank) if torch.cuda.is_available() else torch.device("cpu")
    device = torch.device(choice)
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise RuntimeError("device cuda was asked for, but PyTorch sees no CUDA GPU")
        if device.index is None:
            device = torch.device("cuda", local_rank)
    return device


def _pick_amp(mode: str, device: torch.device) -> torch.dtype | None:
    if device.type != "cuda" or mode == "off":
        return None  # the CPU trains in fp32: CPU autocast is slower, not faster, for convs
    if mode == "bf16":
        return torch.bfloat16
    if mode == "fp16":
        return torch.float16
    return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16


def setup(device: str = "auto", amp: str = "auto", channels_last: bool = True,
          threads: int = 0) -> Runtime:
    """Join the process group when launched by torchrun, and choose device and precision.
    ``threads`` > 0 sets torch's CPU thread count."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    rank = int(os.environ.get("RANK", "0"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    dev = _pick_device(device, local_rank)
    if threads > 0:
        torch.set_num_threads(threads)
    if dev.type == "cuda":
        torch.cuda.set_device(dev)
        torch.backends.cudnn.benchmark = True  # fixed input sizes: let cuDNN pick the fastest
    if world > 1 and not dist.is_initialized():
        dist.init_process_group(backend="nccl" if dev.type == "cuda" else "gloo")
    return Runtime(rank, world, local_rank, dev, _pick_amp(amp, dev),
                   channels_last and dev.type == "cuda")


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
