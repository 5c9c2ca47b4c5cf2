"""Transfer speed and memory on the CPU: PyTorch fp32, PyTorch under bf16 autocast and ONNX
Runtime fp32 (and, where there is a CUDA GPU, PyTorch on it at the transfer's default
precision), per stage and end to end, for the ``cpu-small``, ``cpu-medium``, ``cpu-large``
(1024x512) and ``paper-global`` networks; and time and peak memory for a
10 s and a 60 s source: the time should grow with the source's length (about 6x), the memory not.

    python benchmarks/bench_transfer.py [--quick] [--configs cpu-small cpu-medium cpu-large paper-global]
                                        [--threads 1] [--rounds 1] [--json out.json]

Needs no data: the model bundles have randomly initialised weights built from the training
presets (speed does not depend on the weights; ``training/options.py``) with the demo
target's statistics; a preset with a matte where the camera is static gets one, over the demo
room as its plate, and ``cpu-medium`` and ``cpu-large`` their person window from the demo target's poses (as
training places it); and the source is the demo performer dancing
(``backend.demo.make_demo_clip``, 640x360). Each bundle is exported to ONNX first (into its
folder, where the transfer finds it), so no run pays for an export.

Every run is a whole ``run_transfer`` job (``device="cpu"``: ``torch`` PyTorch fp32, ``bf16``
PyTorch under bf16 autocast, what precision auto runs on a CPU with native bf16, ``onnx`` ONNX
Runtime fp32, what auto runs on the others; or ``device="cuda"``, precision auto: bf16 where
supported, else fp16; face generator on) in
its own fresh process with its own empty cache, so it detects the source's poses itself and
its peak memory (VmHWM; on CUDA also the GPU's peak allocation) is its own. Printed per run:

    poses     frames per second of the pose pass (MediaPipe, gap filling, smoothing)
    labels    of drawing the label images          \\  each stage alone: the seconds inside
    generate  of G + face residual (the backend)    > its own calls, from the job's
    write     of PNG + H.264 encoding              /   status.json; they run in three threads
    load      seconds to load the networks (ONNX Runtime: read the file, optimize the graph)
    end       frames / seconds of the whole run_transfer call (loading the networks, the
              pose pass, generating, writing and finishing the video)

and two ratios: ``overlap``, the frames/s of labels + generate + write running together (the
job's ``frames_wall``) over the slowest of the three alone (1: the slowest sets the pace, the
others run beside it), and ``end_over_slowest``, the whole job over its slowest stage with the
pose pass included (which must end before the first frame is drawn; see backend/transfer/
pipeline.py: below 1 by the pose pass's share of the time unless its poses are cached).

paper-global runs at several seconds a frame on a laptop CPU, so it runs only a few frames
(8, or 3 with --quick): its per-frame figures are fine, its end-to-end figure carries the
fixed costs of a short job. The scaling check runs cpu-small as a transfer does by default
(ONNX Runtime on the CPU; CUDA where there is a GPU) on a 10 s and a 60 s source: 30 fps, or
4 fps with --quick (the same seconds, fewer frames); it prints the time ratio (60 s / 10 s:
about 6 when the cost is linear in the length, less by the fixed costs of a job) and the
memory ratio (about 1: frames are streamed).
The backends alternate over ``--rounds`` rounds so that both see the same load on a shared
machine; the figures are the median over the rounds.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bench_onnx import preset_networks  # noqa: E402
from benchmarks.common import (cuda_peak_mb, peak_rss_mb, run_child,  # noqa: E402
                               script_arguments, start, write_json)

CONFIGS = ("cpu-small", "cpu-medium", "cpu-large", "paper-global")
BACKENDS = ("torch", "bf16", "onnx")  # on the CPU; "cuda" joins them where there is a GPU
STAGES = ("poses", "labels", "generate", "write")
THREADED = ("labels", "generate", "write")  # the stages that run at once, in three threads
SOURCE_SIZE = (640, 360)
FRAMES = {"cpu-small": 60, "cpu-medium": 30, "cpu-large": 16, "paper-global": 8}
QUICK_FRAMES = {"cpu-small": 20, "cpu-medium": 10, "cpu-large": 4, "paper-global": 3}
MEMORY_SECONDS = (10, 60)
MEMORY_FPS, QUICK_MEMORY_FPS = 30.0, 4.0
GROWTH_TOLERANCE_MB = 32.0  # allocator noise, MediaPipe's and the encoders' buffers


# --------------------------------------------------------------------------------------------
# What the runs need
# --------------------------------------------------------------------------------------------


def make_bundle(name: str, folder: Path, export: bool = True) -> Path:
    """An untrained bundle of preset ``name`` (its last stage's G and its face G), with the
    demo target's normalization statistics, exported to ONNX (unless not ``export``: a GPU
    runs PyTorch); with a matte and the demo room as its plate where the preset has one
    ("auto": a static camera), and the person window of a preset with one."""
    from dataclasses import replace

    import torch

    from backend.demo import target_motion
    from backend.demo.performer import background
    from backend.labels import LabelStyle
    from backend.models import (BundleManifest, build_face_generator, build_generator,
                                save_bundle)
    from backend.models.bundle import TrainingRecord
    from backend.normalize import compute_stats
    from backend.onnx.export import export_bundle_onnx
    from backend.target.letterbox import Letterbox
    from backend.target.window import WindowSpec
    from training.options import preset

    torch.manual_seed(0)
    config, face, size = preset_networks(name)
    model = preset(name).model
    track = target_motion(300, fps=30, size=SOURCE_SIZE, seed=1)
    layout = Letterbox.fit_into(SOURCE_SIZE, size)
    plate = None
    if model.matte != "off":
        config = replace(model, matte="on").generator(config.n_local_enhancers > 0)
        plate = layout.apply(background(SOURCE_SIZE))
    window = None if model.window == "off" else WindowSpec.for_target(
        track, layout, config.size_multiple, model.window_margin)
    manifest = BundleManifest(name=f"bench-{name}", generator=config, face_generator=face,
                              resolution=size, label_style=LabelStyle().to_dict(),
                              normalization=compute_stats(track).to_dict(),
                              training=TrainingRecord(window=window))
    face_net = None if face is None else build_face_generator(face)
    bundle = save_bundle(folder / name, manifest, build_generator(config), face_net, plate)
    if export:
        export_bundle_onnx(bundle)
    return bundle


def make_source(path: Path, n_frames: int, fps: float) -> Path:
    from backend.demo import make_demo_clip

    make_demo_clip(path, "dance", n_frames=n_frames, fps=fps, size=SOURCE_SIZE, progress=False)
    return path


# --------------------------------------------------------------------------------------------
# One job in its own process
# --------------------------------------------------------------------------------------------


def child(args: list[str]) -> None:
    """Run one transfer job; print its figures as one JSON line. ``backend``: "torch",
    "bf16" (PyTorch under bf16 autocast) or "onnx" on the CPU, or "cuda" (PyTorch on the GPU,
    the transfer's default precision)."""
    import os

    bundle, source, backend, threads, out = Path(args[0]), Path(args[1]), args[2], \
        int(args[3]), Path(args[4])
    os.environ["EVERYBODY_DANCE_CACHE"] = str(out / "cache")  # detect the poses afresh
    import torch

    from backend.transfer import TransferJob, run_transfer

    torch.set_num_threads(threads)  # ONNX Runtime takes the same count
    baseline = peak_rss_mb()  # after the imports
    on_gpu = backend == "cuda"
    precision = {"bf16": "bf16", "cuda": "auto"}.get(backend, "fp32")
    job = TransferJob(source, bundle, out / "job", device="cuda" if on_gpu else "cpu",
                      precision=precision,
                      cpu_backend="auto" if on_gpu else "torch" if backend == "bf16" else backend)
    began = time.perf_counter()
    result = run_transfer(job)
    seconds = time.perf_counter() - began
    status = json.loads((out / "job" / "status.json").read_text())
    identity = json.loads((out / "job" / "job.json").read_text())
    ran = identity["backend"]
    expected = "torch" if backend in ("cuda", "bf16") else backend
    if ran != expected:
        raise RuntimeError(f"the job ran on {ran}, not {expected}")
    print(json.dumps({
        "frames": result.frame_count, "seconds": round(seconds, 3),
        "end_fps": round(result.frame_count / seconds, 3),
        "stages": {s: status["timings"][s]["fps"] for s in STAGES},
        "frames_fps": round(status["frames_wall"]["frames"] / status["frames_wall"]["seconds"], 3),
        "load_seconds": status["load_seconds"],
        "baseline_rss_mb": round(baseline, 1), "peak_rss_mb": round(peak_rss_mb(), 1),
        "cuda_peak_mb": cuda_peak_mb(),
    }))


def run_job(bundle: Path, source: Path, backend: str, threads: int, tmp: Path) -> dict[str, Any]:
    out = Path(tempfile.mkdtemp(dir=tmp, prefix=f"{backend}-"))
    return run_child(Path(__file__).resolve(), [str(bundle), str(source), backend,
                                                str(threads), str(out)])


def merge_rounds(rounds: list[dict[str, Any]]) -> dict[str, Any]:
    """Median over rounds of the rates; the largest peak memory."""
    merged: dict[str, Any] = {"rounds": rounds, "frames": rounds[0]["frames"]}
    merged["stages"] = {s: round(statistics.median(r["stages"][s] for r in rounds), 3)
                        for s in STAGES}
    merged["end_fps"] = round(statistics.median(r["end_fps"] for r in rounds), 3)
    merged["frames_fps"] = round(statistics.median(r["frames_fps"] for r in rounds), 3)
    slowest = min(merged["stages"][s] for s in THREADED)
    # How well labels, G and the encoders overlap: 1 when the slowest of them sets the pace.
    merged["overlap"] = round(merged["frames_fps"] / slowest, 3)
    # The whole job against its slowest stage, the pose pass included (which runs first).
    merged["end_over_slowest"] = round(merged["end_fps"] / min(slowest,
                                                               merged["stages"]["poses"]), 3)
    merged["load_seconds"] = round(statistics.median(r["load_seconds"] for r in rounds), 3)
    merged["peak_rss_mb"] = max(r["peak_rss_mb"] for r in rounds)
    gpu = [r["cuda_peak_mb"] for r in rounds if r.get("cuda_peak_mb") is not None]
    merged["cuda_peak_mb"] = max(gpu) if gpu else None
    return merged


def backends() -> tuple[str, ...]:
    """The runs to compare: PyTorch and ONNX Runtime on the CPU, and CUDA where present."""
    import torch

    return BACKENDS + (("cuda",) if torch.cuda.is_available() else ())


# --------------------------------------------------------------------------------------------
# The comparisons
# --------------------------------------------------------------------------------------------


def compare_backends(name: str, frames: int, rounds: int, threads: int,
                     tmp: Path) -> dict[str, Any]:
    bundle = make_bundle(name, tmp)
    source = make_source(tmp / f"dance-{frames}.mp4", frames, 30.0)
    order = backends()
    runs: dict[str, list[dict[str, Any]]] = {b: [] for b in order}
    for r in range(rounds):
        for backend in (order if r % 2 == 0 else order[::-1]):
            runs[backend].append(run_job(bundle, source, backend, threads, tmp))
    results = {b: merge_rounds(rs) for b, rs in runs.items()}
    size = "x".join(map(str, preset_networks(name)[2]))
    return {"size": size, "frames": frames, "backends": list(order), **results,
            "generate_speedup": round(results["onnx"]["stages"]["generate"]
                                      / results["torch"]["stages"]["generate"], 2),
            "end_speedup": round(results["onnx"]["end_fps"] / results["torch"]["end_fps"], 2),
            "bf16_generate_speedup": round(results["bf16"]["stages"]["generate"]
                                           / results["onnx"]["stages"]["generate"], 2),
            "bf16_end_speedup": round(results["bf16"]["end_fps"] / results["onnx"]["end_fps"],
                                      2)}


def memory_check(fps: float, threads: int, tmp: Path) -> dict[str, Any]:
    """Time and peak memory of cpu-small, run as a transfer runs by default (CUDA where there
    is a GPU; on the CPU bf16 PyTorch where it computes bf16 natively, else ONNX Runtime), for
    each source length, each in a fresh process."""
    bundle = tmp / "cpu-small"
    if not bundle.is_dir():
        bundle = make_bundle("cpu-small", tmp)
    from backend.runtime import cpu_has_native_bf16

    backend = "cuda" if "cuda" in backends() else "bf16" if cpu_has_native_bf16() else "onnx"
    results: dict[str, Any] = {"config": "cpu-small", "backend": backend, "fps": fps}
    for seconds in MEMORY_SECONDS:
        n = int(round(seconds * fps))
        source = make_source(tmp / f"dance-{seconds}s.mp4", n, fps)
        results[f"{seconds}s"] = run_job(bundle, source, backend, threads, tmp)
    short, long = (results[f"{s}s"] for s in MEMORY_SECONDS)
    results["growth_mb"] = round(long["peak_rss_mb"] - short["peak_rss_mb"], 1)
    results["flat"] = results["growth_mb"] <= GROWTH_TOLERANCE_MB
    results["length_ratio"] = round(MEMORY_SECONDS[1] / MEMORY_SECONDS[0], 2)
    results["time_ratio"] = round(long["seconds"] / short["seconds"], 2)
    results["memory_ratio"] = round(long["peak_rss_mb"] / short["peak_rss_mb"], 3)
    return results


# --------------------------------------------------------------------------------------------
# Printing
# --------------------------------------------------------------------------------------------


def print_header() -> None:
    print(f"{'config':>12} {'size':>8} {'backend':>7} {'frames':>6} "
          + " ".join(f"{s:>9}" for s in STAGES) + f" {'load s':>7} {'end fps':>8} {'peak MiB':>9}"
          + f" {'GPU MiB':>8}")


def _gpu(b: dict[str, Any]) -> str:
    return f"{b['cuda_peak_mb']:8.0f}" if b.get("cuda_peak_mb") is not None else "       -"


def print_row(name: str, r: dict[str, Any]) -> None:
    for backend in r.get("backends", BACKENDS):
        b = r[backend]
        print(f"{name:>12} {r['size']:>8} {backend:>7} {r['frames']:>6} "
              + " ".join(f"{b['stages'][s]:9.2f}" for s in STAGES)
              + f" {b['load_seconds']:7.2f} {b['end_fps']:8.2f} {b['peak_rss_mb']:9.1f} "
              + _gpu(b))
    print(f"{'':>12} ONNX Runtime / PyTorch fp32: generate {r['generate_speedup']}x, "
          f"end to end {r['end_speedup']}x; PyTorch bf16 / ONNX Runtime: generate "
          f"{r['bf16_generate_speedup']}x, end to end {r['bf16_end_speedup']}x", flush=True)
    for backend in r.get("backends", BACKENDS):
        b = r[backend]
        print(f"{'':>12} {backend}: labels+generate+write at {b['frames_fps']:.2f} fps = "
              f"{b['overlap']:.2f} x their slowest stage; the whole job at "
              f"{b['end_over_slowest']:.2f} x the slowest stage (poses included)")


def print_memory(m: dict[str, Any]) -> None:
    parts = [f"{s} s source ({m[f'{s}s']['frames']} frames): {m[f'{s}s']['seconds']:.1f} s, "
             f"peak {m[f'{s}s']['peak_rss_mb']:.0f} MiB (after imports "
             f"{m[f'{s}s']['baseline_rss_mb']:.0f})" for s in MEMORY_SECONDS]
    verdict = "flat" if m["flat"] else f"GROWS (more than {GROWTH_TOLERANCE_MB:.0f} MiB)"
    print(f"scaling, cpu-small on {m['backend']} at {m['fps']:g} fps: " + "; ".join(parts))
    print(f"  {MEMORY_SECONDS[1]} s / {MEMORY_SECONDS[0]} s source: time ratio "
          f"{m['time_ratio']:.2f} (the source is {m['length_ratio']:g}x as long; less means "
          f"fixed costs), memory ratio {m['memory_ratio']:.3f}, growth {m['growth_mb']:+.1f} "
          f"MiB: {verdict}")


def summary(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Rows (what, figure, detail) for benchmarks/run_all.py's table."""
    rows = []
    for name in CONFIGS:
        if name not in results:
            continue
        r = results[name]
        for backend in r.get("backends", BACKENDS):
            b = r[backend]
            rows.append((f"transfer {name} {backend}", f"{b['end_fps']:.2f} frames/s",
                         f"end to end, {r['frames']} frames; generate "
                         f"{b['stages']['generate']:.1f} fps; peak {b['peak_rss_mb']:.0f} MiB"))
    if "memory" in results:
        m = results["memory"]
        rows.append((f"transfer {MEMORY_SECONDS[1]} s / {MEMORY_SECONDS[0]} s source",
                     f"time {m['time_ratio']:.2f}x",
                     f"memory {m['memory_ratio']:.3f}x ({m['growth_mb']:+.0f} MiB), "
                     f"{m['backend']}"))
    return rows


def main() -> None:
    parser = script_arguments(__doc__, child)
    if parser is None:
        return
    parser.add_argument("--configs", nargs="+", choices=CONFIGS, default=list(CONFIGS))
    parser.add_argument("--quick", action="store_true",
                        help="fewer frames (" + ", ".join(f"{k} {v}" for k, v in
                                                          QUICK_FRAMES.items())
                             + f") and {QUICK_MEMORY_FPS:g} fps memory sources")
    parser.add_argument("--threads", type=int, default=1,
                        help="threads of both backends (default 1: steadiest on a shared CPU)")
    parser.add_argument("--rounds", type=int, default=1, help="alternating rounds per backend")
    parser.add_argument("--no-memory", action="store_true", help="skip the memory check")
    args = parser.parse_args()
    frames = QUICK_FRAMES if args.quick else FRAMES
    results: dict[str, Any] = start({})
    results.update({"threads": args.threads, "rounds": args.rounds, "quick": args.quick,
                    "source_size": list(SOURCE_SIZE)})
    print(f"frames per second per stage (each stage alone) and end to end; {args.threads} "
          f"thread(s); demo source {SOURCE_SIZE[0]}x{SOURCE_SIZE[1]} at 30 fps")
    if "paper-global" in args.configs:
        print(f"(paper-global: only {frames['paper-global']} frames, at seconds a frame on a "
              f"CPU; its end-to-end figure includes a short job's fixed costs)")
    print_header()
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.configs:
            results[name] = compare_backends(name, frames[name], args.rounds, args.threads,
                                             Path(tmp))
            print_row(name, results[name])
        if not args.no_memory:
            fps = QUICK_MEMORY_FPS if args.quick else MEMORY_FPS
            results["memory"] = memory_check(fps, args.threads, Path(tmp))
            print_memory(results["memory"])
    write_json(args.json, results)


if __name__ == "__main__":
    main()
