"""Helpers shared by the benchmark scripts: run a measurement in a fresh process, print figures.

Each measurement runs in its own Python process so that its peak memory is its own and not
the largest of everything measured before it.
"""

from __future__ import annotations

import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"


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


def run_child(script: Path, args: list[str]) -> dict[str, Any]:
    """Run ``script --child ARGS`` in a new interpreter; it prints one JSON line last."""
    out = subprocess.run([sys.executable, str(script), "--child", *args], cwd=REPO,
                         capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"benchmark child {args} failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def machine() -> dict[str, Any]:
    import torch

    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {"python": platform.python_version(), "cpu": platform.processor() or platform.machine(),
            "cores": __import__("os").cpu_count(), "torch": torch.__version__, "gpu": gpu}


def write_json(path: Path | None, results: dict[str, Any]) -> None:
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(results, indent=2) + "\n")
        print(f"wrote {path}")
