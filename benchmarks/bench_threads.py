"""Threads per network operation on the CPU: PyTorch's default (one per core) against the
project's rule (``backend.runtime.cpu_threads``), with and without another busy process.

    python benchmarks/bench_threads.py [--rounds 3] [--quick] [--json out.json]

Measured, each in a fresh process (the other scripts' children): a training step of the
``cpu-small`` preset (benchmarks/bench_train.py), and one frame of G at ``cpu-small`` and
``paper-global`` on ONNX Runtime and PyTorch (benchmarks/bench_onnx.py). Each runs with the
default thread count and with the rule's, in alternating order over ``--rounds`` rounds, once
on the machine as it is and once beside a competing process that keeps one core busy (a
Python busy loop: a browser tab, a second job). Printed: the medians and default / rule, the
factor the rule saves (above 1: the rule is faster).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import run_child, script_arguments, start, write_json  # noqa: E402

HERE = Path(__file__).resolve().parent
TRAIN_STEPS, QUICK_TRAIN_STEPS = 12, 4
FRAMES = {"cpu-small": 12, "paper-global": 2}
QUICK_FRAMES = {"cpu-small": 4, "paper-global": 1}


@contextmanager
def competitor(busy: bool) -> Iterator[None]:
    """Another process keeping one core busy while the block runs (when ``busy``)."""
    if not busy:
        yield
        return
    proc = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        yield
    finally:
        proc.kill()
        proc.wait()


def measure(case: dict[str, Any], threads: int) -> float:
    """Seconds per step or frame of ``case`` with ``threads`` threads (one child process)."""
    if case["kind"] == "train":
        result = run_child(HERE / "bench_train.py", [
            "cpu-small", "global", str(case["steps"]), "1", str(threads), "cpu", "fp32", "-"])
        return float(result["median_s"])
    result = run_child(HERE / "bench_onnx.py", [case["backend"], str(case["bundle"]),
                                                str(case["frames"]), str(threads)])
    return float(result["median_ms"]) / 1000.0


def compare(case: dict[str, Any], rounds: int, busy: bool) -> dict[str, Any]:
    """Both thread counts in alternating order, beside a competitor when ``busy``."""
    counts = {"default": os.cpu_count() or 1, "rule": case["rule"]}
    times: dict[str, list[float]] = {"default": [], "rule": []}
    for r in range(rounds):
        for name in (("default", "rule") if r % 2 == 0 else ("rule", "default")):
            with competitor(busy):
                times[name].append(measure(case, counts[name]))
    medians = {k: statistics.median(v) for k, v in times.items()}
    return {"threads": counts, "seconds": medians, "all_seconds": times,
            "default_over_rule": round(medians["default"] / medians["rule"], 2)}


def cases(folder: Path, quick: bool) -> list[dict[str, Any]]:
    from backend.runtime import cpu_threads
    from benchmarks.bench_onnx import make_bundle, preset_networks

    frames = QUICK_FRAMES if quick else FRAMES
    out: list[dict[str, Any]] = [{
        "name": "train cpu-small (s/step)", "kind": "train",
        "steps": QUICK_TRAIN_STEPS if quick else TRAIN_STEPS, "rule": cpu_threads(0, 256 * 128)}]
    presets = ("cpu-small",) if quick else ("cpu-small", "paper-global")
    for preset in presets:
        bundle = make_bundle(preset, folder)
        width, height = preset_networks(preset)[2]
        for backend in ("onnx", "torch"):
            out.append({"name": f"G {preset} {backend} (s/frame)", "kind": "infer",
                        "backend": backend, "bundle": bundle, "frames": frames[preset],
                        "rule": cpu_threads(0, width * height, backend=backend)})
    return out


def summary(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """One row per measured case and load: default / rule (above 1: the rule is faster)."""
    rows = []
    for name, loads in results.items():
        if not isinstance(loads, dict) or "idle" not in loads:
            continue
        for load, r in loads.items():
            rows.append((f"threads: {name}, {'busy' if load == 'busy' else 'idle'}",
                         f"{r['default_over_rule']:.2f}x",
                         f"{r['threads']['default']} threads vs the rule's {r['threads']['rule']}"))
    return rows


def main() -> None:
    parser = script_arguments(__doc__)
    assert parser is not None
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per count")
    parser.add_argument("--quick", action="store_true", help="cpu-small only, fewer steps")
    args = parser.parse_args()
    results: dict[str, Any] = start({})
    print(f"{'what':>28} {'competitor':>10} {'threads':>8} {'default s':>10} {'rule s':>9} "
          f"{'default/rule':>12}")
    with tempfile.TemporaryDirectory() as tmp:
        for case in cases(Path(tmp), args.quick):
            for busy in (False, True):
                r = compare(case, 1 if args.quick else args.rounds, busy)
                results.setdefault(case["name"], {})["busy" if busy else "idle"] = r
                t, s = r["threads"], r["seconds"]
                print(f"{case['name']:>28} {'yes' if busy else 'no':>10} "
                      f"{t['default']:>3} / {t['rule']:<2} {s['default']:10.3f} "
                      f"{s['rule']:9.3f} {r['default_over_rule']:12.2f}", flush=True)
    write_json(args.json, results)


if __name__ == "__main__":
    main()
