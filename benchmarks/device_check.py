"""A device check for any GPU: run it as it is, within 8 minutes, and read one table.

    python -m benchmarks.device_check [--json PATH] [--budget-s 480] [--dry-run]
                                      [--vgg-weights VGG19.pth] [--keep DIR]

What it measures, each part in a process of its own (see ``device_parts.py``):

  (a) generator   G of each preset (tiny, cpu-small, paper-global, paper-local; random
                  weights, batch 1, its training size) in fp32 and under bf16 autocast (fp16
                  where the GPU has no bf16), channels_last: ms/frame and the largest |difference|
  (b) train       seconds per training step and peak GPU memory at paper-global (its global
                  stage, 512x256) and paper-local (its local stage, 1024x512), with the trainer
                  itself (``training.trainer.train``) on a run prepared on the fly from the
                  demo performer (exact poses: no footage, no detector), AMP and channels_last
                  as the trainer picks them; the median over the steps after a warm-up
  (c) train 50    50 AMP training steps at paper-global: every loss finite, and the
                  reconstruction error (L1 of generated against real frames) of the last 10
                  steps below that of the first 10
  (d) transfer    a 300-frame ``run_transfer`` job at paper-global (random weights, face GAN
                  on) with the source's poses given, so that frames/s per stage (the job's
                  status.json ``timings``) and end to end are the GPU's; pose detection
                  (MediaPipe on the CPU) measured apart with 1 and N worker processes
  (e) ddp         the training of (b) at paper-global under torchrun on every GPU present
                  (skipped with one GPU)

Each part records an error instead of stopping the check (an out-of-memory GPU, no bf16, a
missing library), and a time budget (``--budget-s``, default 480) skips what is left, with a
note, rather than overrunning. The end: a summary table, the goals of issue 12 (transfer at
100 frames/s or more, training at 10 steps/s or more at 512x256) met or not, and with
``--json`` every figure.

``--dry-run`` runs the same code at the ``tiny`` preset on the CPU in fp32 (bf16 autocast on
the CPU for (a); DDP as 2 gloo processes under torchrun), with fewer frames and steps, the
parts in this process (one interpreter start, not seven) and one torch thread: under a
minute on two busy CPU cores, for CI. Its figures say nothing about a GPU.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import print_table, run_child, start, write_json  # noqa: E402
from benchmarks.device_parts import CHILDREN, run_child_part  # noqa: E402

SCRIPT = Path(__file__).resolve()
MIN_PART_S = 15.0  # a part is skipped when less than this is left of the budget
GOAL_TRANSFER_FPS = 100.0  # issue 12: paper-global transfer end to end, one H100/H200-class GPU
GOAL_TRAIN_STEPS = 10.0  # issue 12: training steps/s at 512x256


@dataclass(frozen=True)
class Plan:
    """What each part runs: on a GPU the paper's sizes, in a dry run the tiny preset."""

    device: str
    low: str  # the low precision G is compared in: bf16, or fp16 where the GPU has no bf16
    presets: tuple[str, ...]  # (a)
    g_runs: int
    train: tuple[tuple[str, str], ...]  # (b): (preset, stage)
    warmup: int
    steps: int
    long_steps: int  # (c)
    transfer_preset: str  # (d)
    frames: int
    detect_workers: tuple[int, ...]
    canvas: tuple[int, int]  # the prepared run's frames
    label_sizes: tuple[tuple[int, int], ...]
    ddp: int  # processes for (e); 0: skipped
    ddp_reason: str = ""


def make_plan(dry_run: bool) -> Plan:
    import torch

    from backend.pose.chunks import available_cores

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if dry_run:
        return Plan("cpu", "bf16", ("tiny",), 5, (("tiny", "global"), ("tiny", "local")), 1, 2,
                    50, "tiny", 48, (2,), (64, 32), ((32, 16), (64, 32)), 2)
    if gpus == 0:
        raise SystemExit("no CUDA GPU found: run with --dry-run to check the script on the CPU")
    low = "bf16" if torch.cuda.is_bf16_supported() else "fp16"
    return Plan("cuda", low, ("tiny", "cpu-small", "paper-global", "paper-local"), 30,
                (("paper-global", "global"), ("paper-local", "local")), 3, 10, 50,
                "paper-global", 300, (1, min(available_cores(), 8)), (1024, 512),
                ((512, 256), (1024, 512)), gpus if gpus > 1 else 0,
                "" if gpus > 1 else "skipped: 1 GPU")


@dataclass
class Check:
    """The running check: its plan, work folder, inputs and the time left."""

    plan: Plan
    work: Path
    budget_s: float
    vgg_weights: str | None = None
    # Run the parts here rather than each in a new interpreter (a dry run: seven interpreter
    # starts, importing torch and the project, would take most of its minute on 2 busy cores).
    in_process: bool = False
    began: float = field(default_factory=time.perf_counter)
    inputs: dict[str, str] = field(default_factory=dict)
    runs: int = 0

    def left(self) -> float:
        return self.budget_s - (time.perf_counter() - self.began)

    def child(self, name: str, params: dict[str, Any], launcher: list[str] | None = None) -> Any:
        """The figures of part ``name``: in a process of its own (several under ``launcher``),
        stopped when the budget runs out; or here, as JSON round-trips them."""
        if self.in_process and launcher is None:
            return json.loads(json.dumps(CHILDREN[name](params)))
        return run_child(SCRIPT, [name, json.dumps(params)], timeout=self.left(), launcher=launcher)

    def run_copy(self, name: str) -> str:
        """A fresh run folder holding the prepared data (each training part writes its own)."""
        self.runs += 1
        run = self.work / "runs" / f"{self.runs}-{name}"
        shutil.copytree(Path(self.inputs["prepared"]) / "prepared", run / "prepared")
        return str(run)


# --------------------------------------------------------------------------------------------
# Inputs made once: a prepared demo run, a model bundle, a source clip with its poses
# --------------------------------------------------------------------------------------------


def make_inputs(check: Check) -> dict[str, str]:
    from backend.demo import make_demo_clip
    from benchmarks.bench_transfer import SOURCE_SIZE, make_bundle
    from training.data.prepare import PrepareOptions, prepare

    plan, work = check.plan, check.work
    track = make_demo_clip(work / "target.mp4", "target", n_frames=40, fps=30, size=plan.canvas,
                           progress=False)
    prepare(work / "target.mp4", work / "prepared", PrepareOptions(
        size=plan.canvas, label_sizes=plan.label_sizes, holdout=0.1), track=track, progress=False)
    bundle = make_bundle(plan.transfer_preset, work / "bundles", export=False)
    dance = make_demo_clip(work / "dance.mp4", "dance", n_frames=plan.frames, fps=30,
                           size=SOURCE_SIZE, progress=False)
    dance.save(work / "dance_poses.npz")
    return {"prepared": str(work / "prepared"), "bundle": str(bundle),
            "source": str(work / "dance.mp4"), "poses": str(work / "dance_poses.npz")}


# --------------------------------------------------------------------------------------------
# The parts
# --------------------------------------------------------------------------------------------


def part_generator(check: Check) -> dict[str, Any]:
    plan = check.plan
    return check.child("generator", {"device": plan.device, "low": plan.low,
                                     "presets": list(plan.presets), "runs": plan.g_runs,
                                     "warmup": 3})


def train_params(check: Check, preset: str, stage: str, steps: int, warmup: int) -> dict:
    return {"preset": preset, "stage": stage, "device": check.plan.device, "steps": steps,
            "warmup": warmup, "run": check.run_copy(f"{preset}-{stage}-{steps}"),
            "vgg_weights": check.vgg_weights}


def part_train(check: Check) -> dict[str, Any]:
    plan, results = check.plan, {}
    for preset, stage in plan.train:
        try:
            results[f"{preset}/{stage}"] = check.child(
                "train", train_params(check, preset, stage, plan.steps, plan.warmup))
        except Exception as exc:  # noqa: BLE001 - the other preset still runs
            results[f"{preset}/{stage}"] = {"error": str(exc)[-2000:]}
    return results


def part_train_50(check: Check) -> dict[str, Any]:
    preset, stage = check.plan.train[0]
    r = check.child("train", train_params(check, preset, stage, check.plan.long_steps, 0))
    first, last = r["l1_per_step"][:10], r["l1_per_step"][-10:]
    r["l1_first_10"] = round(sum(first) / len(first), 5)
    r["l1_last_10"] = round(sum(last) / len(last), 5)
    r["falling"] = r["l1_last_10"] < r["l1_first_10"]
    return r


def part_transfer(check: Check) -> dict[str, Any]:
    plan, inputs = check.plan, check.inputs
    job = check.child("transfer", {"device": plan.device, "bundle": inputs["bundle"],
                                   "source": inputs["source"], "poses": inputs["poses"],
                                   "out": str(check.work / "job"),
                                   "cache": str(check.work / "cache")})
    detect = check.child("detect", {"source": inputs["source"], "frames": plan.frames,
                                    "workers": list(plan.detect_workers)})
    fastest = max(w["fps"] for w in detect["workers"].values())
    # Detection is a pass of its own before the frames are drawn, so its time adds.
    with_detection = job["frames"] / (job["seconds"] + job["frames"] / fastest)
    return {"preset": plan.transfer_preset, "job": job, "detection": detect,
            "end_fps_with_detection": round(with_detection, 2)}


def part_ddp(check: Check) -> dict[str, Any]:
    plan = check.plan
    if not plan.ddp:
        return {"skipped": plan.ddp_reason}
    preset, stage = plan.train[0]
    launcher = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                f"--nproc_per_node={plan.ddp}"]
    r = check.child("train", train_params(check, preset, stage, plan.steps, plan.warmup), launcher)
    return {**r, "processes": plan.ddp}


PARTS: dict[str, Callable[[Check], dict[str, Any]]] = {
    "generator": part_generator, "train": part_train, "train_50": part_train_50,
    "transfer": part_transfer, "ddp": part_ddp,
}


def run_parts(check: Check, results: dict[str, Any]) -> None:
    """Every part in order; an error is recorded, a part without time left is skipped."""
    for name, part in PARTS.items():
        if check.left() < MIN_PART_S:
            results[name] = {"skipped": f"time budget: {max(check.left(), 0):.0f} s left of "
                                        f"{check.budget_s:.0f}"}
        else:
            began = time.perf_counter()
            try:
                results[name] = part(check)
            except Exception as exc:  # noqa: BLE001 - recorded; the other parts still run
                results[name] = {"error": str(exc)[-2000:]}
            results[name]["wall_s"] = round(time.perf_counter() - began, 1)
        print(f"{name}: {one_line(results[name])}", flush=True)


def one_line(result: dict[str, Any]) -> str:
    for key in ("error", "skipped"):
        if key in result:
            return f"{key}: {str(result[key]).strip().splitlines()[-1]}"
    return f"done in {result.get('wall_s', 0)} s"


# --------------------------------------------------------------------------------------------
# The table
# --------------------------------------------------------------------------------------------


Rows = list[tuple[str, str, str]]  # (what, figure, detail), as common.print_table shows them


def summary(results: dict[str, Any]) -> Rows:
    """Rows (what, figure, detail) of every part's main figures, then the goals."""
    parts = results["parts"]
    rows: Rows = []
    if "inputs" in parts:
        rows.append(("inputs", "ERROR", one_line(parts["inputs"])))
    for name in PARTS:
        r = parts.get(name, {"skipped": "not run"})
        if "error" in r or "skipped" in r:
            rows.append((name, "ERROR" if "error" in r else "skipped", one_line(r)))
        else:
            rows += ROWS[name](r, parts)
    return rows + goal_rows(results)


def generator_rows(r: dict[str, Any], parts: dict[str, Any]) -> Rows:
    rows, low = [], r["low"]
    for name, p in r["presets"].items():
        if "error" in p:
            rows.append((f"G {name}", "ERROR", p["error"]))
            continue
        rows.append((f"G {name} {p['size']}",
                     f"{p['fp32']['median_ms']:.2f} / {p[low]['median_ms']:.2f} ms",
                     f"fp32 / {low}: {p['speedup']}x, max |diff| {p['max_abs_diff']}"
                     + gpu_mb(p)))
    return rows


def train_row(key: str, r: dict[str, Any]) -> tuple[str, str, str]:
    return (f"train {key} {r['size']}", f"{r['median_s']:.4f} s/step",
            f"{r['steps_per_s']:.2f} steps/s, {r['amp']}{', channels_last' if r['channels_last'] else ''}, "
            f"batch {r['batch']} x {r['world']}" + gpu_mb(r))


def train_rows(r: dict[str, Any], parts: dict[str, Any]) -> Rows:
    return [(f"train {key}", "ERROR", v["error"].strip().splitlines()[-1]) if "error" in v
            else train_row(key, v) for key, v in r.items() if isinstance(v, dict)]


def train_50_rows(r: dict[str, Any], parts: dict[str, Any]) -> Rows:
    return [(f"{r['steps']} steps {r['preset']}", f"L1 {r['l1_first_10']:.4f} -> {r['l1_last_10']:.4f}",
             f"losses finite: {'yes' if r['losses_finite'] else 'NO'}; reconstruction error "
             f"falling: {'yes' if r['falling'] else 'NO'} (mean of the first vs last 10 steps)")]


def transfer_rows(r: dict[str, Any], parts: dict[str, Any]) -> Rows:
    job, det = r["job"], r["detection"]["workers"]
    stages = ", ".join(f"{k} {v:.1f}" for k, v in job["stages"].items() if k != "poses")
    detection = ", ".join(f"{w} process{'es' if w != '1' else ''} {d['fps']:.1f}"
                          for w, d in det.items())
    return [(f"transfer {r['preset']} {job['frames']} frames", f"{job['end_fps']:.1f} frames/s",
             f"poses given; {stages} frames/s; limited by {job['limited_by']}; {job['device']}"
             + gpu_mb(job)),
            ("pose detection (CPU)", f"{max(d['fps'] for d in det.values()):.1f} frames/s",
             f"{detection}; a job that detects: {r['end_fps_with_detection']:.1f} frames/s")]


def ddp_rows(r: dict[str, Any], parts: dict[str, Any]) -> Rows:
    """The DDP step, and its samples/s against one process's (from the train part)."""
    key = f"{r['preset']}/{r['stage']}"
    rows = [train_row(f"ddp {key}", r)]
    single = parts.get("train", {}).get(key, {})
    if "median_s" in single:
        scaling = r["world"] * single["median_s"] / r["median_s"]
        rows.append((f"ddp scaling x{r['world']}", f"{scaling:.2f}x",
                     f"samples/s of {r['world']} processes over 1 ({r['world']:.0f}x is perfect)"))
    return rows


ROWS: dict[str, Callable[[dict[str, Any], dict[str, Any]], Rows]] = {
    "generator": generator_rows, "train": train_rows, "train_50": train_50_rows,
    "transfer": transfer_rows, "ddp": ddp_rows,
}


def gpu_mb(r: dict[str, Any]) -> str:
    return f", GPU peak {r['cuda_peak_mb']:.0f} MiB" if r.get("cuda_peak_mb") else ""


def goal_rows(results: dict[str, Any]) -> Rows:
    """Issue 12's goals for one H100/H200-class GPU, met or not (not judged in a dry run)."""
    if results["dry_run"]:
        return [("goals", "n/a", "a CPU dry run says nothing about a GPU")]
    parts, rows = results["parts"], []
    job = parts.get("transfer", {}).get("job")
    if job:
        met = job["end_fps"] >= GOAL_TRANSFER_FPS
        rows.append((f"goal: transfer >= {GOAL_TRANSFER_FPS:.0f} frames/s",
                     "met" if met else "NOT met",
                     f"{job['end_fps']:.1f} frames/s end to end, poses given; limited by "
                     f"{job['limited_by']}"))
    step = parts.get("train", {}).get("paper-global/global", {})
    if "steps_per_s" in step:
        met = step["steps_per_s"] >= GOAL_TRAIN_STEPS
        rows.append((f"goal: training >= {GOAL_TRAIN_STEPS:.0f} steps/s at 512x256",
                     "met" if met else "NOT met", f"{step['steps_per_s']:.2f} steps/s"))
    return rows


# --------------------------------------------------------------------------------------------


def gpu_lines() -> list[dict[str, Any]]:
    import torch

    if not torch.cuda.is_available():
        return []
    return [{"name": torch.cuda.get_device_name(i),
             "memory_gib": round(torch.cuda.get_device_properties(i).total_memory / 2**30, 1),
             "capability": ".".join(map(str, torch.cuda.get_device_capability(i)))}
            for i in range(torch.cuda.device_count())]


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        run_child_part(sys.argv[2], sys.argv[3])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", type=Path, default=None, help="also write every figure here")
    parser.add_argument("--budget-s", type=float, default=480.0,
                        help="seconds for the whole check; parts beyond are skipped (480)")
    parser.add_argument("--dry-run", action="store_true",
                        help="the same code at the tiny preset on the CPU (for CI)")
    parser.add_argument("--vgg-weights", type=Path, default=None,
                        help="VGG19 weights: train with the perceptual loss (default: L1 instead)")
    parser.add_argument("--keep", type=Path, default=None,
                        help="work in this folder and keep it (default: a temporary one)")
    args = parser.parse_args()
    results: dict[str, Any] = start({})
    began = time.perf_counter()
    if args.dry_run:
        import torch

        torch.set_num_threads(1)  # tiny networks on shared cores: more threads only wait
    plan = make_plan(args.dry_run)
    results.update({"dry_run": args.dry_run, "budget_s": args.budget_s, "gpus": gpu_lines(),
                    "plan": {k: v for k, v in plan.__dict__.items()}, "parts": {}})
    for gpu in results["gpus"]:
        print(f"GPU: {gpu['name']}, {gpu['memory_gib']} GiB, compute capability {gpu['capability']}")
    print("CPU dry run: tiny preset, fp32 (figures say nothing about a GPU)" if args.dry_run
          else f"G compared in fp32 and {plan.low}")
    with tempfile.TemporaryDirectory() as tmp:
        work = args.keep or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        check = Check(plan, work, args.budget_s,
                      str(args.vgg_weights) if args.vgg_weights else None, args.dry_run)
        try:
            check.inputs = make_inputs(check)
            run_parts(check, results["parts"])
        except Exception as exc:  # noqa: BLE001 - the inputs: nothing can run without them
            results["parts"]["inputs"] = {"error": str(exc)[-2000:]}
    results["wall_s"] = round(time.perf_counter() - began, 1)
    print_table(summary(results), f"device check ({results['wall_s']} s)")
    write_json(args.json, results)


if __name__ == "__main__":
    main()
