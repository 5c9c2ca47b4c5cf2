"""Helpers shared by the benchmark scripts: run a measurement in a fresh process, print figures.

Each measurement runs in its own Python process so that its peak memory is its own and not
the largest of everything measured before it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
# Real footage: ../shared/data next to the checkout, or where $EVERYBODY_DANCE_FOOTAGE says
# (a checkout elsewhere, e.g. a git worktree).
SHARED_DATA = Path(os.environ.get("EVERYBODY_DANCE_FOOTAGE") or REPO.parent / "shared" / "data")


def script_arguments(doc: str, child: Callable[[list[str]], None] | None = None
                     ) -> argparse.ArgumentParser | None:
    """How every benchmark script starts: ``--child ARGS`` runs its measurement part
    (``child``) and gives None; else its argument parser, described by the first paragraph
    of ``doc``, with ``--json PATH``."""
    if child is not None and len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return None
    parser = argparse.ArgumentParser(description=doc.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    return parser


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB.

    Read from /proc/self/status (VmHWM) where there is one: ``ru_maxrss`` is not this
    process's own on Linux, which carries a parent's peak into a child started with fork +
    exec, so a child of a parent that has just built a large model would report the parent's.
    Elsewhere ``ru_maxrss`` (KiB on Linux, bytes on macOS).
    """
    try:
        with open("/proc/self/status", encoding="ascii") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024.0  # "VmHWM:  123456 kB"
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak / 2**20 if sys.platform == "darwin" else peak / 1024.0


def timed(fn: Callable[[], int]) -> dict[str, float]:
    """Run ``fn`` (which returns how many items it processed); items/s and peak memory."""
    t0 = time.perf_counter()
    n = fn()
    seconds = time.perf_counter() - t0
    return {"items": n, "seconds": round(seconds, 3), "per_second": round(n / seconds, 2),
            "peak_rss_mb": round(peak_rss_mb(), 1)}


def run_child(script: Path, args: list[str], timeout: float | None = None,
              launcher: list[str] | None = None) -> dict[str, Any]:
    """Run ``script --child ARGS`` in a new interpreter; it prints one JSON line last.

    ``launcher`` replaces the plain interpreter (e.g. ``torchrun`` for several processes).
    After ``timeout`` seconds the child and everything it started are killed (they run in a
    session of their own, so that torchrun's workers go too) and RuntimeError says so."""
    command = [*(launcher or [sys.executable]), str(script), "--child", *args]
    child = subprocess.Popen(command, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, start_new_session=True)
    try:
        stdout, stderr = child.communicate(timeout=timeout)
    except BaseException as exc:  # the timeout, or Ctrl-C (which its own session does not get)
        os.killpg(child.pid, signal.SIGKILL)
        child.communicate()
        if isinstance(exc, subprocess.TimeoutExpired):
            raise RuntimeError(f"benchmark child {args[:1]} timed out after {timeout:.0f} s") from None
        raise
    if child.returncode != 0:
        raise RuntimeError(f"benchmark child {args} failed:\n{stderr[-3000:]}")
    return json.loads(stdout.strip().splitlines()[-1])


def machine() -> dict[str, Any]:
    """What the figures were measured on: CPU, cores, load, library versions, the GPU (None
    when there is none)."""
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    info: dict[str, Any] = {
        "python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
        "cores": os.cpu_count(), "torch": torch.__version__, "gpu": gpu,
        # a shared machine inflates wall time: the load when the run started says how busy
        "load_average": round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None,
    }
    try:
        import onnxruntime

        info["onnxruntime"] = onnxruntime.__version__
    except ImportError:
        info["onnxruntime"] = None
    return info


def describe_machine(info: dict[str, Any]) -> str:
    """One line for the top of every benchmark's output."""
    gpu = f"GPU {info['gpu']}" if info.get("gpu") else "no GPU"
    ort = f", onnxruntime {info['onnxruntime']}" if info.get("onnxruntime") else ""
    load = info.get("load_average")
    busy = f", load {load}" if load is not None else ""
    return (f"machine: {info['cpu']}, {info['cores']} cores{busy}; {gpu}; "
            f"Python {info['python']}, torch {info['torch']}{ort}")


def start(results: dict[str, Any]) -> dict[str, Any]:
    """Record the machine in ``results`` and print its line; returns ``results``."""
    results["machine"] = machine()
    print(describe_machine(results["machine"]), flush=True)
    return results


def cuda_sync() -> None:
    """Wait for queued GPU work before reading the clock (no-op without CUDA)."""
    import torch

    if torch.cuda.is_available():
        torch.cuda.synchronize()


def cuda_peak_mb() -> float | None:
    """Peak GPU memory allocated by PyTorch in this process, MiB (None without CUDA)."""
    import torch

    if not torch.cuda.is_available() or not torch.cuda.is_initialized():
        return None
    return round(torch.cuda.max_memory_allocated() / 2**20, 1)


def write_json(path: Path | None, results: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {path}")


def print_table(rows: list[tuple[str, str, str]], title: str = "summary") -> None:
    """Rows (what, figure, detail) as aligned columns under ``=== title``."""
    print(f"\n=== {title}")
    if not rows:
        return
    width = max(len(r[0]) for r in rows)
    value = max(len(r[1]) for r in rows)
    for what, figure, detail in rows:
        print(f"{what:<{width}}  {figure:>{value}}  {detail}")
