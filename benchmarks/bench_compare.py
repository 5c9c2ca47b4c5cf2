"""Our generator against a plain eager fp32 forward of the same network, in the same process.

    python benchmarks/bench_compare.py [--presets tiny cpu-small paper-global] [--rounds 3]
                                       [--runs N] [--device auto] [--precision auto]
                                       [--cpu-backend auto] [--threads 0] [--quick] [--json out.json]

"Ours" is G as a transfer runs it (backend/transfer/inference.py and generate.py): the
networks that ``load_networks`` hands to ``FrameGenerator`` for the ``Runtime`` of
``--device`` / ``--precision`` (default auto), called under ``inference_mode`` and the
runtime's autocast. On the CPU at fp32 that is ONNX Runtime where it is installed (the
transfer's default backend; ``--cpu-backend torch`` for PyTorch); on CUDA it is PyTorch under
bf16 autocast (fp16 where the GPU has no bf16) with channels_last weights and inputs.

"Plain" is the same ``nn.Module`` made by ``backend.models.build_generator`` with the same
weights, fp32, contiguous (NCHW) tensors, called as ``with torch.no_grad(): G(x)``.

Per preset (the generator of its last stage, randomly initialised, at its training size,
batch 1) one fresh process builds both, warms each up with two frames, then times them in
``--rounds`` alternating rounds of ``--runs`` frames each (so both see the same load on a
shared machine; on CUDA each frame is timed between ``torch.cuda.synchronize()`` calls).
Printed: the median milliseconds per frame of each, frames per second, the ratio
plain / ours (the speed-up of the way transfer runs G; above 1 means ours is faster), the
largest difference between their outputs, the process's peak memory and, on CUDA, the GPU
memory each needed beyond the weights.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (cuda_sync, peak_rss_mb, run_child, script_arguments,  # noqa: E402
                               start, write_json)

PRESETS = ("tiny", "cpu-small", "paper-global", "paper-local")
DEFAULT_PRESETS = ("tiny", "cpu-small")
RUNS_CPU = {"tiny": 20, "cpu-small": 5, "paper-global": 2, "paper-local": 1}
RUNS_CUDA = {"tiny": 100, "cpu-small": 50, "paper-global": 20, "paper-local": 10}
QUICK_RUNS_CPU = {"tiny": 10, "cpu-small": 3, "paper-global": 1, "paper-local": 1}


# --------------------------------------------------------------------------------------------
# Both forwards in one process
# --------------------------------------------------------------------------------------------


def describe_ours(backend: str, runtime: Any, networks: Any) -> str:
    """What "ours" runs on, in words."""
    import torch

    from backend.transfer.inference import describe_backend

    if backend == "onnx":  # "ONNX Runtime 1.31.1 (2 threads)"
        return f"{describe_backend('onnx', networks)}, CPUExecutionProvider, fp32"
    where = runtime.describe()  # "cuda (NVIDIA H100 ...), bf16" / "cpu, fp32"
    autocast = "" if runtime.precision == "fp32" else " autocast"
    layout = ", channels_last" if runtime.channels_last else ""
    return f"PyTorch {torch.__version__} {where}{autocast}{layout}{_threads(runtime)}, inference_mode"


def _threads(runtime: Any) -> str:
    import torch

    n = torch.get_num_threads()
    return f", {n} thread{'s' if n != 1 else ''}" if runtime.device.type == "cpu" else ""


def build_both(bundle: Path, backend: str, runtime: Any) -> tuple[Any, Any, Any, str]:
    """(ours, plain, manifest, what ours is): ours as ``FrameGenerator`` holds it, plain an
    fp32 module with the same weights."""
    from backend.models import build_generator, load_bundle
    from backend.target.letterbox import Letterbox
    from backend.transfer.generate import FrameGenerator
    from backend.transfer.inference import LoadEachTime, load_networks

    networks = load_networks(LoadEachTime(), bundle, runtime, backend)
    manifest = networks.manifest
    layout = Letterbox.fit_into(manifest.resolution, manifest.resolution)
    ours = FrameGenerator(networks, runtime, layout, face=False).generator
    plain = build_generator(manifest.generator)
    plain.load_state_dict(load_bundle(bundle, "cpu").generator.state_dict())
    plain = plain.to(runtime.device).eval()
    return ours, plain, manifest, describe_ours(backend, runtime, networks)


def _timed_calls(fn: Any, runs: int) -> list[float]:
    times = []
    for _ in range(runs):
        cuda_sync()
        t0 = time.perf_counter()
        fn()
        cuda_sync()
        times.append(time.perf_counter() - t0)
    return times


def child(args: list[str]) -> None:
    """Time ours and plain in alternating rounds; print the figures as one JSON line."""
    bundle, backend, device, precision = Path(args[0]), args[1], args[2], args[3]
    rounds, runs, threads = int(args[4]), int(args[5]), int(args[6])
    import torch

    from backend.runtime import Runtime

    if threads > 0:
        torch.set_num_threads(threads)  # ONNX Runtime takes torch's count, as in transfer
    runtime = Runtime.resolve(device, precision)
    ours_net, plain_net, manifest, ours_what = build_both(bundle, backend, runtime)
    width, height = manifest.resolution
    gen = torch.Generator().manual_seed(0)
    x = (torch.rand(1, manifest.generator.input_nc, height, width, generator=gen) * 2 - 1)
    x = x.to(runtime.device)
    outputs: dict[str, Any] = {}

    def ours() -> None:
        with torch.inference_mode(), runtime.autocast():
            # as FrameGenerator: the input made channels_last per frame where the runtime is
            xin = x.contiguous(memory_format=torch.channels_last) if runtime.channels_last else x
            outputs["ours"] = ours_net(xin)

    def plain() -> None:
        with torch.no_grad():
            outputs["plain"] = plain_net(x)

    methods = {"ours": ours, "plain": plain}
    for fn in methods.values():  # warm-up: allocations, kernel choice, ORT's memory plan
        fn()
        fn()
    times: dict[str, list[float]] = {m: [] for m in methods}
    extra: dict[str, float] = {m: 0.0 for m in methods}
    cuda = runtime.device.type == "cuda"
    for r in range(rounds):
        for m in (("ours", "plain") if r % 2 == 0 else ("plain", "ours")):
            if cuda:
                torch.cuda.reset_peak_memory_stats()
                resident = torch.cuda.memory_allocated()
            times[m] += _timed_calls(methods[m], runs)
            if cuda:
                extra[m] = max(extra[m], (torch.cuda.max_memory_allocated() - resident) / 2**20)
    diff = (outputs["ours"].float().cpu() - outputs["plain"].float().cpu()).abs().max().item()
    result: dict[str, Any] = {"size": f"{width}x{height}", "device": str(runtime.device),
                              "precision": runtime.precision, "backend": backend,
                              "rounds": rounds, "runs": runs}
    for m, label in (("ours", ours_what),
                     ("plain", f"PyTorch {torch.__version__} eager fp32 on "
                               f"{runtime.device.type}, NCHW, no_grad{_threads(runtime)}")):
        median = statistics.median(times[m])
        result[m] = {"what": label, "median_ms": round(1000 * median, 3),
                     "min_ms": round(1000 * min(times[m]), 3), "fps": round(1 / median, 2)}
        if cuda:
            result[m]["cuda_extra_mb"] = round(extra[m], 1)
    result["speedup"] = round(result["plain"]["median_ms"] / result["ours"]["median_ms"], 3)
    result["max_abs_diff"] = float(f"{diff:.3g}")
    result["peak_rss_mb"] = round(peak_rss_mb(), 1)
    if cuda:
        result["weights_mb"] = round(sum(p.numel() * p.element_size()
                                         for p in plain_net.parameters()) / 2**20, 1)
    print(json.dumps(result))


# --------------------------------------------------------------------------------------------
# The parent
# --------------------------------------------------------------------------------------------


def ours_backend(device: str, precision: str, cpu_backend: str) -> str:
    """"onnx" or "torch": what a transfer with these settings would run G on."""
    from backend.runtime import Runtime
    from backend.transfer.inference import choose_backend

    return choose_backend(cpu_backend, Runtime.resolve(device, precision))


def compare(name: str, folder: Path, backend: str, args: argparse.Namespace) -> dict[str, Any]:
    from benchmarks.bench_onnx import make_bundle

    bundle = make_bundle(name, folder)
    if backend == "onnx":  # exported here, so the child neither exports nor caches a file
        from backend.onnx.export import export_bundle_onnx

        export_bundle_onnx(bundle)
    import torch

    on_gpu = args.device != "cpu" and torch.cuda.is_available()
    runs = args.runs or (RUNS_CUDA if on_gpu else QUICK_RUNS_CPU if args.quick else RUNS_CPU)[name]
    return run_child(Path(__file__).resolve(), [str(bundle), backend, args.device,
                                                args.precision, str(args.rounds), str(runs),
                                                str(args.threads)])


def print_result(name: str, r: dict[str, Any]) -> None:
    print(f"{name:>12} {r['size']:>9}: ours {r['ours']['median_ms']:9.2f} ms/frame "
          f"({r['ours']['fps']:.1f} fps), plain {r['plain']['median_ms']:9.2f} ms/frame "
          f"({r['plain']['fps']:.1f} fps); plain / ours = {r['speedup']:.2f}x; "
          f"max |diff| {r['max_abs_diff']:.2g}; peak {r['peak_rss_mb']:.0f} MiB")
    print(f"{'':>12}  ours:  {r['ours']['what']}")
    print(f"{'':>12}  plain: {r['plain']['what']}")
    if "cuda_extra_mb" in r["ours"]:
        print(f"{'':>12}  GPU memory beyond the weights ({r['weights_mb']:.0f} MiB): ours "
              f"{r['ours']['cuda_extra_mb']:.0f} MiB, plain {r['plain']['cuda_extra_mb']:.0f} MiB")
    sys.stdout.flush()


def summary(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Rows (what, figure, detail) for benchmarks/run_all.py's table."""
    rows = []
    for name, r in results.get("presets", {}).items():
        rows.append((f"ours vs plain G {name}", f"{r['speedup']:.2f}x",
                     f"{r['size']}: ours {r['ours']['median_ms']:.2f} ms "
                     f"({r['backend']} {r['device']} {r['precision']}), "
                     f"plain fp32 {r['plain']['median_ms']:.2f} ms"))
    return rows


def main() -> None:
    parser = script_arguments(__doc__, child)
    if parser is None:
        return
    parser.add_argument("--presets", nargs="+", choices=PRESETS, default=list(DEFAULT_PRESETS))
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds per method")
    parser.add_argument("--runs", type=int, default=None,
                        help=f"timed frames per round (default CPU {RUNS_CPU}, "
                             f"CUDA {RUNS_CUDA})")
    parser.add_argument("--device", default="auto", help="as transfer's --device (auto, cpu, "
                                                         "cuda, cuda:N, mps)")
    parser.add_argument("--precision", default="auto", choices=("auto", "fp32", "bf16", "fp16"))
    parser.add_argument("--cpu-backend", default="auto", choices=("auto", "onnx", "torch"),
                        help="what ours runs on the CPU at fp32 (auto: as transfer)")
    parser.add_argument("--threads", type=int, default=0,
                        help="CPU threads of both (default 0: torch's default, as transfer)")
    parser.add_argument("--quick", action="store_true", help="2 rounds, fewer CPU frames")
    args = parser.parse_args()
    if args.quick:
        args.rounds = min(args.rounds, 2)
    results: dict[str, Any] = start({})
    backend = ours_backend(args.device, args.precision, args.cpu_backend)
    results.update({"rounds": args.rounds, "threads": args.threads, "presets": {}})
    print("ms per frame of G, batch 1, at each preset's training size: ours (as transfer "
          "runs it) against plain eager fp32")
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.presets:
            results["presets"][name] = compare(name, Path(tmp), backend, args)
            print_result(name, results["presets"][name])
    write_json(args.json, results)


if __name__ == "__main__":
    main()
