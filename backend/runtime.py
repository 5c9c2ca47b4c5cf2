"""Where and at what precision networks run: one description for training and transfer.

Device ``auto`` picks CUDA, then Apple's MPS, then the CPU. Precision ``auto`` is the
device's fastest arithmetic: bfloat16 on a CUDA GPU that supports it (fp16 otherwise), fp16 on
MPS; on the CPU bfloat16 where the CPU computes it natively (``cpu_has_native_bf16``: x86's
AVX512_BF16 or AMX-BF16, Arm's BF16), fp32 elsewhere. Without those instructions oneDNN
emulates bf16 and it is slower than fp32; with them a training step of cpu-medium took 0.57x
the time of fp32 and G's inference 0.47-0.62x, with evaluation figures within 0.01 SSIM
(benchmarks/RESULTS.md, "fp32 against bf16 on the CPU"; training/README.md). Half precision
runs through ``torch.autocast``, which keeps the weights (and so the optimizer's state) in fp32
and runs numerically touchy operations (the losses, normalisation statistics, reductions) in
fp32: a loaded model is not changed, so a worker can run the next job at another precision
with the same networks. Training at fp16 needs loss scaling
(``needs_scaler``); bf16 does not.

On CUDA, convolutions run in channels_last memory (faster with tensor cores; on the CPU it
measured slower with oneDNN) and cuDNN picks its fastest kernels once per input size.
A process of a distributed training run (``torchrun``) also knows its rank.

On the CPU, how many threads each network operation uses (``cpu_threads``): PyTorch's default
is one per core, and its OpenMP threads wait for each other at every operation; when another
process (a browser, or our own label and video threads) holds a core, every operation waits
for it, while ONNX Runtime's pool (spinning off, backend/onnx/session.py) does not. Small
frames gain nothing in a transfer job from a second thread (its other stages use that core).
Hence the rule: one thread for small frames; for larger ones with ONNX Runtime at least 2
threads (half the cores beyond 4), with PyTorch one on 2 cores and half the cores beyond.
The measurements behind it: benchmarks/RESULTS.md, "Threads per network operation".
"""

from __future__ import annotations

import contextlib
import functools
import os
import platform
import subprocess
from dataclasses import dataclass

import torch

from .choices import DEVICES, LEGACY_PRECISIONS, PRECISIONS
from .errors import BackendError
_DTYPES = {"bf16": torch.bfloat16, "fp16": torch.float16}
SMALL_FRAME = 256 * 128  # canvas pixels (cpu-small's): up to this, one thread per operation
FEW_CORES = 2  # on this many cores or fewer, one thread per operation
MAX_THREADS = 8
# "1" or "0" forces the answer of `cpu_has_native_bf16` (tests of the fp32 path; a CPU whose
# flags this module cannot read).
CPU_BF16_ENV = "EVERYBODY_DANCE_CPU_BF16"
_X86_BF16_FLAGS = {"avx512_bf16", "amx_bf16"}  # /proc/cpuinfo's names


def cpu_threads(requested: int, pixels: int, cores: int | None = None,
                backend: str = "torch") -> int:
    """Intra-op threads for networks on ``pixels``-sized frames on the CPU, run by ``backend``
    ("torch" or "onnx"): ``requested`` when above 0, else the rule above (at most 8)."""
    if requested > 0:
        return requested
    cores = cores or os.cpu_count() or 1
    if pixels <= SMALL_FRAME:
        return 1
    if backend == "onnx":
        return max(1, min(cores, max(2, cores // 2), MAX_THREADS))
    if cores <= FEW_CORES:
        return 1
    return max(1, min(cores // 2, MAX_THREADS))


def use_cpu_threads(requested: int, pixels: int, backend: str = "torch") -> int:
    """Set torch's (and so the ONNX Runtime sessions made after this) thread count by
    `cpu_threads`; returns it."""
    threads = cpu_threads(requested, pixels, backend=backend)
    torch.set_num_threads(threads)
    return threads


def cpu_has_native_bf16() -> bool:
    """Whether this CPU computes bfloat16 in hardware, from the CPU's own flags (PyTorch's
    ``_is_mkldnn_bf16_supported`` also says yes for plain AVX512, where bf16 is emulated and
    slower than fp32): x86 AVX512_BF16 or AMX-BF16, Arm's BF16 (Linux, macOS). Unknown (another
    system, unreadable flags): False, so fp32. ``$EVERYBODY_DANCE_CPU_BF16`` (1/0) overrides."""
    forced = os.environ.get(CPU_BF16_ENV, "").strip()
    if forced in ("0", "1"):
        return forced == "1"
    return _cpu_flags_say_bf16()


@functools.lru_cache(maxsize=1)
def _cpu_flags_say_bf16() -> bool:
    if platform.system() == "Darwin":  # Apple M2 and later
        try:
            out = subprocess.run(["sysctl", "-n", "hw.optional.arm.FEAT_BF16"], check=False,
                                 capture_output=True, text=True, timeout=5).stdout
        except (OSError, subprocess.SubprocessError):
            return False
        return out.strip() == "1"
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return cpuinfo_says_bf16(f.read())
    except OSError:
        return False


def cpuinfo_says_bf16(text: str) -> bool:
    """Whether Linux's /proc/cpuinfo ``text`` lists native bf16 (its first "flags" line on
    x86, "Features" on Arm)."""
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            words = set(value.split())
            return bool(words & _X86_BF16_FLAGS) or "bf16" in words
    return False


def mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def resolve_device(requested: str = "auto", index: int | None = None) -> torch.device:
    """The device for ``requested`` ("auto", "cpu", "cuda", "cuda:1", "mps"); a clear error
    when it is absent. ``index`` picks the GPU where ``requested`` names none (a process of
    a distributed run takes its local rank)."""
    kind = requested.split(":")[0]
    if kind not in DEVICES:
        raise BackendError(f"unknown device {requested!r}; choose one of {', '.join(DEVICES)}")
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda", index)
        return torch.device("mps") if mps_available() else torch.device("cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        build = "without CUDA support" if torch.version.cuda is None else f"for CUDA {torch.version.cuda}"
        raise BackendError(f"device {requested!r} asked for, but PyTorch {torch.__version__} (built "
                           f"{build}) sees no CUDA GPU; use --device auto or cpu")
    if kind == "mps" and not mps_available():
        raise BackendError(f"device {requested!r} asked for, but Apple's Metal (MPS) backend is "
                           f"not available here; use --device auto or cpu")
    device = torch.device(requested)
    if device.type == "cuda" and device.index is None and index is not None:
        device = torch.device("cuda", index)
    return device


def resolve_precision(requested: str, device: torch.device) -> str:
    """"fp32", "bf16" or "fp16" for ``requested`` on ``device`` (see the module docstring)."""
    requested = LEGACY_PRECISIONS.get(requested, requested)
    if requested not in PRECISIONS:
        raise BackendError(f"unknown precision {requested!r}; choose one of {', '.join(PRECISIONS)}")
    if requested != "auto":
        return requested
    if device.type == "cuda":
        return "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    if device.type == "mps":
        return "fp16"
    return "bf16" if cpu_has_native_bf16() else "fp32"


@dataclass(frozen=True)
class Runtime:
    """A resolved device and precision, how to run networks with them, and (in a
    distributed training run) which process this is."""

    device: torch.device
    precision: str  # "fp32", "bf16" or "fp16"
    channels_last: bool = False
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @staticmethod
    def resolve(device: str = "auto", precision: str = "auto", channels_last: bool = True,
                local_rank: int | None = None) -> "Runtime":
        """The runtime for the requested words; ``channels_last`` applies on CUDA only."""
        dev = resolve_device(device, local_rank)
        if dev.type == "cuda":
            # Every frame of a job (every batch of a stage) has the same size: let cuDNN
            # pick its fastest kernels once.
            torch.backends.cudnn.benchmark = True
        return Runtime(dev, resolve_precision(precision, dev),
                       channels_last=channels_last and dev.type == "cuda",
                       local_rank=local_rank or 0)

    # -- precision -------------------------------------------------------------------------

    @property
    def amp_dtype(self) -> torch.dtype | None:
        """The autocast dtype, or None for plain fp32."""
        return _DTYPES.get(self.precision)

    @property
    def needs_scaler(self) -> bool:
        """Whether training needs loss scaling (fp16 gradients underflow; bf16 ones do not)."""
        return self.precision == "fp16"

    def autocast(self) -> contextlib.AbstractContextManager:
        """The context to run networks in: autocast for half precision, nothing for fp32."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    # -- tensors and modules ---------------------------------------------------------------

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

    # -- processes -------------------------------------------------------------------------

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world > 1

    def describe(self) -> str:
        name = self.device.type
        if self.device.type == "cuda":
            name = f"cuda ({torch.cuda.get_device_name(self.device)})"
        return f"{name}, {self.precision}"
