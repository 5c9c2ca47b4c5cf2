"""CPU inference speed and memory: PyTorch against ONNX Runtime, for the generators of the
``tiny``, ``cpu-small`` and ``paper-global`` training presets at their training resolutions.

    python benchmarks/bench_onnx.py [--configs tiny cpu-small paper-global] [--rounds 2]
                                    [--threads 2] [--quick] [--json out.json]

For each preset a bundle with randomly initialised weights (speed does not depend on the
weights) is written to a temporary folder and exported with ``export_bundle_onnx`` (which
checks ONNX Runtime against PyTorch). Then each backend runs in a fresh process, batch 1,
after two warm-up frames: PyTorch fp32 under ``inference_mode`` with ``--threads`` threads,
ONNX Runtime's CPUExecutionProvider with all graph optimizations and as many intra-op
threads (``OnnxGenerator``, as transfer uses it). Printed per backend: the median and the
fastest wall-clock frame time of G, the median CPU time of a frame (all threads: on a busy
machine, wall time far above CPU time means threads waiting for a core), frames per second
from the median, the face generator's median on its face box, and the process's peak memory
(VmHWM). The two backends alternate over ``--rounds`` rounds so that both see the same load
on a shared machine; the figures are the median over the rounds. ``--quick``: tiny and
cpu-small only, one round of fewer frames.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (peak_rss_mb, run_child, script_arguments, start,  # noqa: E402
                               write_json)


CONFIGS = ("tiny", "cpu-small", "paper-global")
RUNS = {"tiny": 40, "cpu-small": 15, "paper-global": 4}  # timed frames per child
QUICK_RUNS = {"tiny": 10, "cpu-small": 5, "paper-global": 2}
QUICK_CONFIGS = ("tiny", "cpu-small")


def preset_networks(name: str) -> tuple[Any, Any, tuple[int, int]]:
    """(GeneratorConfig, FaceGeneratorConfig, (width, height)) of a training preset: the
    generator of its last stage (a local enhancer when the preset trains one)."""
    from training.options import preset
    from training.stages import uses_local

    opts = preset(name)
    local = uses_local(opts, opts.schedule.stages[-1])
    face = opts.model.face_generator() if "face" in opts.schedule.stages else None
    return opts.model.generator(local), face, tuple(opts.size)


def make_bundle(name: str, folder: Path) -> Path:
    import torch

    from backend.models import (BundleManifest, build_face_generator, build_generator,
                                save_bundle)

    torch.manual_seed(0)
    config, face, size = preset_networks(name)
    manifest = BundleManifest(name=f"bench-{name}", generator=config, face_generator=face,
                              resolution=size, label_style={}, normalization={})
    face_net = None if face is None else build_face_generator(face)
    return save_bundle(folder / name, manifest, build_generator(config), face_net)


# --------------------------------------------------------------------------------------------
# One backend in its own process
# --------------------------------------------------------------------------------------------


def _time(fn: Any, runs: int) -> tuple[list[float], list[float]]:
    """Wall-clock and CPU seconds (all threads of the process) of each of ``runs`` calls."""
    fn()
    fn()  # warm-up: first-call allocations, ORT's memory planning, oneDNN's kernel choice
    wall, cpu = [], []
    for _ in range(runs):
        t0, c0 = time.perf_counter(), time.process_time()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
    return wall, cpu


def child(args: list[str]) -> None:
    import json

    import torch

    from backend.models import read_manifest
    from backend.target.face import face_box_size
    from backend.onnx.runtime import load_cpu_networks

    backend, bundle, runs, threads = args[0], Path(args[1]), int(args[2]), int(args[3])
    torch.set_num_threads(threads)
    baseline = peak_rss_mb()  # after importing torch
    manifest = read_manifest(bundle)
    nets = load_cpu_networks(bundle, backend=backend, threads=threads)
    width, height = manifest.resolution
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(1, manifest.generator.input_nc, height, width, generator=gen) * 2 - 1

    def run_g() -> None:
        with torch.inference_mode():
            nets.generator(x)

    g_wall, g_cpu = _time(run_g, runs)
    result: dict[str, Any] = {
        "median_ms": round(1000 * statistics.median(g_wall), 2),
        "min_ms": round(1000 * min(g_wall), 2),
        "cpu_ms": round(1000 * statistics.median(g_cpu), 2),
    }
    if nets.face_generator is not None and manifest.face_generator is not None:
        side = face_box_size(height, manifest.face_generator.size_multiple)
        crop = torch.rand(1, 3, side, side, generator=gen) * 2 - 1

        def run_face() -> None:
            with torch.inference_mode():
                nets.face_generator(crop, crop)  # type: ignore[misc]

        result["face_box"] = side
        result["face_median_ms"] = round(1000 * statistics.median(_time(run_face, runs)[0]), 2)
    result["baseline_rss_mb"] = round(baseline, 1)
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    print(json.dumps(result))


# --------------------------------------------------------------------------------------------
# The comparison
# --------------------------------------------------------------------------------------------


def merge_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Median over rounds of the timings; the largest peak memory."""
    merged: dict[str, Any] = {"rounds": rounds}
    for key in ("median_ms", "min_ms", "cpu_ms", "face_median_ms"):
        values = [r[key] for r in rounds if key in r]
        if values:
            merged[key] = round(statistics.median(values) if key != "min_ms" else min(values), 2)
    merged["fps"] = round(1000 / merged["median_ms"], 2)
    merged["peak_rss_mb"] = max(r["peak_rss_mb"] for r in rounds)
    merged["baseline_rss_mb"] = min(r["baseline_rss_mb"] for r in rounds)
    return merged


def compare(name: str, folder: Path, rounds: int, runs: int, threads: int) -> dict[str, Any]:
    from backend.onnx.export import export_bundle_onnx

    bundle = make_bundle(name, folder)
    t0 = time.perf_counter()
    exported = export_bundle_onnx(bundle)
    export_s = time.perf_counter() - t0
    export_peak = peak_rss_mb()  # the largest export so far (this process exports all)
    script = Path(__file__).resolve()
    per_backend: dict[str, list[dict[str, Any]]] = {"torch": [], "onnx": []}
    for r in range(rounds):
        order = ("torch", "onnx") if r % 2 == 0 else ("onnx", "torch")
        for backend in order:
            per_backend[backend].append(
                run_child(script, [backend, str(bundle), str(runs), str(threads)]))
    results = {b: merge_rounds(rs) for b, rs in per_backend.items()}
    manifest_size = "x".join(map(str, preset_networks(name)[2]))
    return {
        "size": manifest_size,
        "runs": runs,
        "export_seconds": round(export_s, 2),
        "export_peak_rss_mb": round(export_peak, 1),
        "max_abs_diff": {n.name: n.max_abs_diff for n in exported.networks},
        "onnx_mb": {n.name: round(n.size_bytes / 2**20, 2) for n in exported.networks},
        **results,
        "speedup": round(results["torch"]["median_ms"] / results["onnx"]["median_ms"], 2),
    }


def print_row(name: str, r: dict[str, Any]) -> None:
    for backend in ("torch", "onnx"):
        b = r[backend]
        face = f"{b['face_median_ms']:8.2f}" if "face_median_ms" in b else "       -"
        print(f"{name:>12} {r['size']:>8} {backend:>6} {b['median_ms']:10.2f} {b['min_ms']:9.2f} "
              f"{b['cpu_ms']:9.2f} {b['fps']:8.2f} {face} {b['peak_rss_mb']:9.1f}")
    diffs = ", ".join(f"{k} {v:.1g}" for k, v in r["max_abs_diff"].items())
    print(f"{'':>12} ONNX Runtime {r['speedup']}x PyTorch; export {r['export_seconds']} s "
          f"(peak {r['export_peak_rss_mb']:.0f} MiB); max |diff| {diffs}")


def main() -> None:
    parser = script_arguments(__doc__, child)
    if parser is None:
        return
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    parser.add_argument("--rounds", type=int, default=2, help="alternating rounds per backend")
    parser.add_argument("--runs", type=int, default=None,
                        help=f"timed frames per round (default {RUNS})")
    parser.add_argument("--threads", type=int, default=2, help="threads of both backends")
    parser.add_argument("--quick", action="store_true",
                        help=f"configs {' '.join(QUICK_CONFIGS)} (unless given), 1 round, "
                             f"frames {QUICK_RUNS}")
    args = parser.parse_args()
    if args.quick:
        args.rounds = 1
        if "--configs" not in sys.argv:
            args.configs = list(QUICK_CONFIGS)
    results: dict[str, Any] = start({})
    results.update({"threads": args.threads, "rounds": args.rounds})
    print(f"{'config':>12} {'size':>8} {'backend':>6} {'median ms':>10} {'min ms':>9} "
          f"{'CPU ms':>9} {'fps':>8} {'face ms':>8} {'peak MiB':>9}")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs:
            runs = args.runs or (QUICK_RUNS if args.quick else RUNS)[name]
            results[name] = compare(name, Path(tmp), args.rounds, runs, args.threads)
            print_row(name, results[name])
    write_json(args.json, results)


def summary(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Rows (what, figure, detail) for benchmarks/run_all.py's table."""
    rows = []
    for name in CONFIGS:
        if name not in results:
            continue
        r = results[name]
        for backend in ("torch", "onnx"):
            b = r[backend]
            rows.append((f"generator {name} {backend} CPU", f"{b['fps']:.1f} frames/s",
                         f"{r['size']}: {b['median_ms']:.1f} ms/frame, "
                         f"peak {b['peak_rss_mb']:.0f} MiB"))
    return rows


if __name__ == "__main__":
    main()
