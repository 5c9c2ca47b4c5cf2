"""Seconds per training step of the person window against the whole frame, on real footage.

    python benchmarks/bench_window.py [RUN_DIR] [--steps 20] [--rounds 2] [--threads 1]
                                      [--json out.json]

Trains the global stage of three configurations on one prepared run (``python -m training
prepare VIDEO -o RUN_DIR --size 512x256``; default: target_taiji.mp4 of ../shared/data,
prepared into a temporary folder): ``cpu-small`` (256x128), ``cpu-medium`` (512x256, G in the
person window) and ``cpu-medium --window off`` (the same networks on the whole 512x256
frame), ``--perceptual none``, one thread, in fresh processes and alternating rounds so that
all see the same load on a shared machine. A step's cost is the difference between a run of
``4 + steps`` steps and one of 4 (data loading included: the trainer's DataLoader; the setup,
the first steps and the checkpoint cancel out), the median over the rounds. Printed: seconds
per step, the ratio to cpu-small, the person window's size, and each configuration's default
schedule (cpu-small's and cpu-medium's epochs; the whole frame at cpu-medium's) in minutes at
that pace.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (SHARED_DATA, run_child, script_arguments,  # noqa: E402
                               write_json)

WARMUP = 4
CONFIGS = {"cpu-small": ("cpu-small", "off"), "cpu-medium": ("cpu-medium", "auto"),
           "whole 512x256": ("cpu-medium", "off")}


def child(args: list[str]) -> None:
    """Train ``steps`` global steps of one configuration in a fresh run; print the seconds."""
    prepared, name, steps, threads = Path(args[0]), args[1], int(args[2]), int(args[3])
    import torch

    from training.options import preset
    from training.trainer import train

    torch.set_num_threads(threads)
    preset_name, window = CONFIGS[name]
    opts = preset(preset_name)
    opts.model.window = window
    opts.loss.perceptual = "none"
    opts.runtime.threads, opts.runtime.progress, opts.runtime.tensorboard = threads, False, False
    opts.runtime.checkpoint_every = 10**6
    opts.schedule.stages = ("global",)
    with tempfile.TemporaryDirectory() as tmp:
        run = Path(tmp) / "run"
        run.mkdir()
        (run / "prepared").symlink_to(prepared)
        began = time.perf_counter()
        result = train(run, opts, steps=steps)
        seconds = time.perf_counter() - began
        window = window_of(run)
    print(json.dumps({"seconds": seconds, "steps": result[0]["step"], "window": window}))


def window_of(run: Path) -> str:
    """The global stage's person window as the run chose it ("WxH"), or "whole frame"."""
    from backend.target.prepared import PreparedRun
    from training.options import TrainOptions
    from training.stages import stage_window

    opts = TrainOptions.from_dict(json.loads((run / "train_options.json").read_text()))
    spec = stage_window(opts, "global", PreparedRun.open(run))
    return "whole frame" if spec is None else f"{spec.size[0]}x{spec.size[1]}"


def measure(prepared: Path, name: str, steps: int, threads: int) -> dict[str, Any]:
    short = run_child(Path(__file__), [str(prepared), name, str(WARMUP), str(threads)])
    long = run_child(Path(__file__), [str(prepared), name, str(WARMUP + steps), str(threads)])
    return {"per_step": (long["seconds"] - short["seconds"]) / steps, "window": long["window"]}


def schedule_minutes(name: str, per_step: float, prepared: Path) -> float:
    """The configuration's default schedule (global + face epochs) at ``per_step``."""
    from backend.target.prepared import PreparedRun
    from training.options import preset

    run = PreparedRun.open(prepared.parent)
    frames = run.train_range[1] - run.train_range[0] - 1  # pairs of consecutive frames
    schedule = preset(CONFIGS[name][0]).schedule
    if name == "whole 512x256":  # at cpu-medium's time: the same schedule, for comparison
        schedule = preset("cpu-medium").schedule
    return (schedule.epochs_global + schedule.epochs_face) * frames * per_step / 60


def prepare_default(folder: Path) -> Path:
    from training.data.prepare import PrepareOptions, prepare

    video = SHARED_DATA / "target_taiji.mp4"
    if not video.is_file():
        sys.exit(f"no prepared run given and {video} is absent: pass RUN_DIR")
    prepare(video, folder, PrepareOptions(size=(512, 256), label_sizes=((512, 256), (256, 128)),
                                          preset="cpu-medium"), progress=False)
    return folder / "prepared"


def main() -> None:
    parser = script_arguments(__doc__, child)
    if parser is None:
        return
    parser.add_argument("run_dir", type=Path, nargs="?", default=None,
                        help="a run prepared at 512x256 (default: target_taiji.mp4, prepared)")
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        prepared = (args.run_dir / "prepared" if args.run_dir is not None
                    else prepare_default(Path(tmp) / "run"))
        rounds: dict[str, list[float]] = {name: [] for name in CONFIGS}
        windows: dict[str, str] = {}
        for _ in range(args.rounds):
            for name in CONFIGS:
                figures = measure(prepared.resolve(), name, args.steps, args.threads)
                rounds[name].append(figures["per_step"])
                windows[name] = figures["window"]
        results = {}
        small = statistics.median(rounds["cpu-small"])
        for name, values in rounds.items():
            per_step = statistics.median(values)
            results[name] = {"seconds_per_step": round(per_step, 4), "rounds": values,
                             "ratio": round(per_step / small, 2), "window": windows[name],
                             "schedule_minutes": round(schedule_minutes(name, per_step,
                                                                        prepared), 1)}
            print(f"{name:>14}: {per_step:.3f} s/step ({per_step / small:.2f}x cpu-small), "
                  f"window {windows[name]}, default schedule "
                  f"{results[name]['schedule_minutes']:.1f} min")
    if not all(math.isfinite(r["seconds_per_step"]) for r in results.values()):
        sys.exit("a measurement failed")
    write_json(args.json, results)


if __name__ == "__main__":
    main()
