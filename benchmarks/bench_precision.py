"""fp32 against bf16: seconds per training step and G's inference, per preset, in alternating rounds.

    python benchmarks/bench_precision.py [--presets cpu-small cpu-medium cpu-large]
                                         [--rounds 3] [--steps N] [--threads 1]
                                         [--no-inference] [--quick] [--json out.json]

Training: each (preset, stage) is timed by ``bench_train``'s child (``TrainStep`` on random
batches, the preset's networks with its matte and person window on, as for a static camera;
see bench_train.py), once at ``--precision fp32`` and once at ``bf16`` per round, the order
flipped every round, so that both see the same load on a shared machine. Printed: the median
over rounds of each precision's median s/step, the ratio fp32 / bf16 (above 1: bf16 is faster)
and the losses of the last step of each (they should agree to a few percent).

Inference: G of each preset's last stage, at the size a transfer runs it (bench_train's
``step_size``: the person window), batch 1, in one process: PyTorch fp32, PyTorch under bf16
autocast and ONNX Runtime fp32 (what the transfer runs on the CPU at fp32), alternating over
``--rounds``; ms/frame and the mean difference of the bf16 output from fp32 (images in [-1, 1]).

What ``auto`` picks here is printed first (``backend.runtime.resolve_precision``), so a table
from a CPU without native bf16 says so. Use ``--threads 1`` on a shared machine (the default).
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import bench_train  # noqa: E402
from benchmarks.common import run_child, script_arguments, start, write_json  # noqa: E402
from training.options import preset  # noqa: E402

DEFAULT_PRESETS = ("cpu-small", "cpu-medium", "cpu-large")
PRECISIONS = ("fp32", "bf16")
INFER_RUNS = 3  # frames per round and method


def train_round(name: str, stage: str, precision: str, args: argparse.Namespace) -> dict:
    """One bench_train child: ``steps`` steps of ``stage`` at ``precision``."""
    steps = args.steps or bench_train.QUICK_STEPS.get(name, 2) + 1
    return run_child(Path(bench_train.__file__).resolve(), [
        name, stage, str(steps), "1", str(args.threads), "cpu", precision, "-"])


def time_training(name: str, stage: str, args: argparse.Namespace) -> dict[str, Any]:
    runs: dict[str, list[dict]] = {p: [] for p in PRECISIONS}
    for r in range(args.rounds):
        for precision in (PRECISIONS if r % 2 == 0 else PRECISIONS[::-1]):
            runs[precision].append(train_round(name, stage, precision, args))
    medians = {p: statistics.median(x["median_s"] for x in runs[p]) for p in PRECISIONS}
    return {"preset": name, "stage": stage, "size": runs["fp32"][0]["size"],
            "fp32_s": round(medians["fp32"], 4), "bf16_s": round(medians["bf16"], 4),
            "ratio": round(medians["fp32"] / medians["bf16"], 3),
            "losses": {p: runs[p][-1]["losses"] for p in PRECISIONS},
            "rounds": args.rounds}


def inference_child(argv: list[str]) -> None:
    """Time G of ``preset`` at fp32, bf16 autocast and ONNX Runtime fp32; print one JSON line."""
    import json
    import tempfile

    import torch

    from backend.models.networks import build_generator

    name, rounds, threads = argv[0], int(argv[1]), int(argv[2])
    torch.set_num_threads(threads)
    opts = bench_train.options(name, "cpu", "fp32", threads, None)
    stage = opts.schedule.stages[-2] if opts.schedule.stages[-1] == "face" else \
        opts.schedule.stages[-1]
    width, height = bench_train.step_size(opts, stage)
    local = stage != "global" and "local" in opts.schedule.stages
    torch.manual_seed(0)
    g = build_generator(opts.model.generator(local)).eval()
    x = torch.rand(1, opts.model.generator(local).input_nc, height, width) * 2 - 1

    def fp32() -> torch.Tensor:
        with torch.inference_mode():
            return g(x)

    def bf16() -> torch.Tensor:
        with torch.inference_mode(), torch.autocast("cpu", dtype=torch.bfloat16):
            return g(x).float()

    methods = {"torch_fp32": fp32, "torch_bf16": bf16}
    with tempfile.TemporaryDirectory() as tmp:
        onnx = onnx_method(g, x, Path(tmp) / "g.onnx", threads)
        if onnx is not None:
            methods["onnx_fp32"] = onnx
        times: dict[str, list[float]] = {k: [] for k in methods}
        for fn in methods.values():
            fn(), fn()  # warm up: allocations, kernel choice
        for r in range(rounds):
            for key in (list(methods) if r % 2 == 0 else list(methods)[::-1]):
                t0 = time.perf_counter()
                for _ in range(INFER_RUNS):
                    methods[key]()
                times[key].append((time.perf_counter() - t0) / INFER_RUNS * 1000)
    diff = float((bf16() - fp32()).abs().mean())
    print(json.dumps({"preset": name, "stage": stage, "size": f"{width}x{height}",
                      "ms": {k: round(statistics.median(v), 2) for k, v in times.items()},
                      "bf16_mean_abs_diff": round(diff, 5)}))


def onnx_method(g: Any, x: Any, path: Path, threads: int) -> Any:
    """ONNX Runtime fp32 on G exported to ``path``, as the transfer runs it; None without it."""
    try:
        import onnxruntime as ort
        import torch
    except ImportError:
        return None
    torch.onnx.export(g, (x,), str(path), dynamo=False, opset_version=17)
    options = ort.SessionOptions()
    options.intra_op_num_threads, options.inter_op_num_threads = threads, 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    feed = {session.get_inputs()[0].name: x.numpy()}
    return lambda: session.run(None, feed)[0]


def child(argv: list[str]) -> None:
    inference_child(argv)


def print_training(r: dict[str, Any]) -> None:
    print(f"{r['preset']:>11} {r['stage']:>6} {r['size']:>9}  fp32 {r['fp32_s']:7.3f} s  "
          f"bf16 {r['bf16_s']:7.3f} s  fp32/bf16 {r['ratio']:5.2f}x", flush=True)


def print_inference(r: dict[str, Any]) -> None:
    ms = r["ms"]
    onnx = f"  ONNX Runtime fp32 {ms['onnx_fp32']:7.1f}" if "onnx_fp32" in ms else ""
    print(f"{r['preset']:>11} {r['stage']:>6} {r['size']:>9}  torch fp32 {ms['torch_fp32']:7.1f}"
          f"  torch bf16 {ms['torch_bf16']:7.1f}{onnx} ms/frame;  fp32/bf16 "
          f"{ms['torch_fp32'] / ms['torch_bf16']:.2f}x"
          + (f", ONNX/bf16 {ms['onnx_fp32'] / ms['torch_bf16']:.2f}x" if onnx else "")
          + f";  |bf16 - fp32| {r['bf16_mean_abs_diff']:.4f}", flush=True)


def summary(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    """Rows (what, figure, detail) for benchmarks/run_all.py's table."""
    return [(f"bf16 train step {r['preset']}/{r['stage']}", f"{r['ratio']:.2f}x",
             f"{r['size']}: fp32 {r['fp32_s']:.3f} s, bf16 {r['bf16_s']:.3f} s")
            for r in results.get("training", [])]


def main() -> None:
    parser = script_arguments(__doc__, child)
    if parser is None:
        return
    bench_train.add_preset_arguments(parser, DEFAULT_PRESETS)
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds")
    parser.add_argument("--steps", type=int, default=None,
                        help="timed steps per round (default: bench_train's quick count + 1)")
    parser.add_argument("--threads", type=int, default=1,
                        help="CPU threads (default 1: steady on a shared machine)")
    parser.add_argument("--no-inference", action="store_true", help="training steps only")
    parser.add_argument("--quick", action="store_true",
                        help="cpu-small only (unless --presets), 2 rounds")
    args = parser.parse_args()
    if args.quick:
        args.rounds = min(args.rounds, 2)
        if args.presets == list(DEFAULT_PRESETS):
            args.presets = ["cpu-small"]
    import torch

    from backend.runtime import cpu_has_native_bf16, resolve_precision

    results: dict[str, Any] = start({})
    auto = resolve_precision("auto", torch.device("cpu"))
    results.update({"native_bf16": cpu_has_native_bf16(), "auto": auto, "training": [],
                    "inference": []})
    print(f"native bf16 on this CPU: {'yes' if results['native_bf16'] else 'no'}; "
          f"precision auto on the CPU: {auto}; {args.rounds} alternating rounds, "
          f"{args.threads} thread(s)")
    print("training: median s/step (TrainStep on random batches, no data loading)")
    for name in args.presets:
        for stage in preset(name).schedule.stages:
            if args.stages is None or stage in args.stages:
                results["training"].append(time_training(name, stage, args))
                print_training(results["training"][-1])
    if not args.no_inference:
        print("inference: G of the last body stage, batch 1")
        for name in args.presets:
            r = run_child(Path(__file__).resolve(), [name, str(args.rounds), str(args.threads)])
            results["inference"].append(r)
            print_inference(r)
    write_json(args.json, results)


if __name__ == "__main__":
    main()
