"""``python -m backend retarget --model BUNDLE --source VIDEO -o OUT_DIR``: the whole transfer."""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from pathlib import Path

from ..checks import THREADS
from ..errors import JobCancelled
from ..transfer import TransferJob, run_transfer
from ..choices import DEVICES, PRECISIONS, parse_device
from ..transfer.inference import CPU_BACKEND_CHOICES
from ..transfer.request import LocalInputs, RunsOn, transfer_job
from ..user_warnings import warn
from ..worker.protocol import BACKGROUND_WORDS, Run
from .common import (absolute, add_job_arguments, add_pose_arguments,
                     add_progress_argument, add_range_arguments, adjustments_from_args,
                     pose_options_from_args)


DESCRIPTION = """Source video -> poses -> normalized onto the target -> labels -> generator
(each frame conditioned on the previous one) -> face residual. Writes
OUT_DIR/frames/000001.png..., OUT_DIR/result.mp4 (with the source's audio) and, on request,
OUT_DIR/side_by_side.mp4 (source | label | result). Frames have the target video's shape at the
model's training resolution (the letterbox bars of the training canvas cut away). The output
folder is a resumable job: run the same command again after an interruption (or Ctrl-C) to
continue where it stopped."""


def add_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("retarget", help="make the model's target perform the source's dance",
                       description=DESCRIPTION)
    p.add_argument("--model", type=Path, default=None,
                   help="model bundle folder (from `python -m training export`)")
    add_job_arguments(p, "job folder to write", "the frames of this job")
    p.add_argument("--poses", type=Path, default=None, metavar="TRACK.npz",
                   help="the source's poses (a track from `poses`, of the whole video or of the "
                        "range) instead of detecting them")
    p.add_argument("--no-face", action="store_true", help="skip the face GAN's residual")
    p.add_argument("--background", default="target", metavar="target|transparent|IMAGE_OR_VIDEO",
                   help="behind the person, for a model with a matte: target (default: the "
                        "target's own background plate), transparent (RGBA PNG frames, the "
                        "person alone, to composite), or an image or video (letterboxed to the "
                        "frame; a shorter video loops). result.mp4 shows the person over the "
                        "plate when transparent")
    p.add_argument("--side-by-side", action="store_true",
                   help="also write side_by_side.mp4: source | label | result")
    p.add_argument("--method", choices=("generator", "nearest"), default="generator",
                   help="generator (default), or the paper's nearest-neighbour baseline, which "
                        "shows the target's training frame with the closest pose (needs "
                        "--nearest-run)")
    p.add_argument("--nearest-run", "--run", dest="nearest_run", type=Path, default=None,
                   metavar="RUN_DIR",
                   help="prepared training run folder (`python -m training prepare`): the "
                        "target's frames and poses for --method nearest")
    p.add_argument("--device", type=parse_device, default="auto",
                   help=f"one of {', '.join(DEVICES)} or cuda:N (default auto: CUDA, then "
                        f"Apple MPS, then CPU)")
    p.add_argument("--precision", choices=PRECISIONS, default="auto",
                   help="auto (default): what the device computes fastest (backend/runtime.py). "
                        "The job records the precision it resolves to; a resumed job keeps it "
                        "(auto continues with it, another one is refused: --overwrite)")
    p.add_argument("--cpu-backend", choices=CPU_BACKEND_CHOICES, default="auto",
                   help="what runs the networks on the CPU at fp32: auto (default: ONNX Runtime, "
                        "the faster, where installed; $EVERYBODY_DANCE_CPU_BACKEND overrides), "
                        "onnx or torch. A resumed job continues on the backend that made its "
                        "frames (their pixels differ slightly)")
    p.add_argument("--threads", type=THREADS.parse, default=0, metavar="N",
                   help="threads per network operation on the CPU (default 0: one for small "
                        "models; for larger ones at least 2 with ONNX Runtime, one on 2 cores "
                        "with PyTorch, whose threads wait for each other; half the cores beyond "
                        "4)")
    p.add_argument("--overwrite", action="store_true",
                   help="discard another job found in the output folder instead of refusing")
    p.add_argument("--reuse", type=Path, default=None, metavar="EARLIER_JOB_DIR",
                   help="start a new output folder from an earlier job of this source: its "
                        "frames before the first one whose pose changed are kept (the earlier "
                        "folder is left as it is). Running a job again in its own folder with "
                        "other --adjustments values does the same in place")
    p.add_argument("--cluster", default=None, metavar="ADDRESS",
                   help="run the job as a task of a Ray cluster: 'local' (the one started on "
                        "this machine, else one of this command's own, on loopback only) or a "
                        "head node's HOST:PORT ([ADDRESS]:PORT for IPv6). The job folder must "
                        "be on storage every node sees (see the README; needs "
                        "pip install -e '.[cluster]')")
    add_range_arguments(p)
    add_pose_arguments(p)
    add_progress_argument(p)
    p.set_defaults(run=run)


def request_from_args(args: argparse.Namespace) -> Run:
    """The request the flags describe: the same `Run` the worker receives."""
    background = (args.background if args.background in BACKGROUND_WORDS
                  else absolute(Path(args.background)))
    return Run(
        job_id="retarget", source=absolute(args.source),
        model=absolute(args.model), output_dir=absolute(args.output_dir),
        frame_start=args.start, frame_stop=args.stop, fps=args.fps,
        adjustments=adjustments_from_args(args), face=not args.no_face,
        side_by_side=args.side_by_side, method=args.method,
        source_stats=absolute(args.source_stats), nearest_run=absolute(args.nearest_run),
        background=background, reuse=absolute(args.reuse), pose_workers=args.workers,
        precision=args.precision)


def job_from_args(args: argparse.Namespace) -> TransferJob:
    """The job of the flags: their request, checked (`transfer_job`), and what only the
    command line gives (the device, a pose track, pose settings, --overwrite)."""
    runs_on = RunsOn(device=args.device, threads=args.threads, cpu_backend=args.cpu_backend)
    local = LocalInputs(poses=args.poses, pose_options=pose_options_from_args(args),
                        overwrite=args.overwrite)
    return transfer_job(request_from_args(args), runs_on, local)


def run(args: argparse.Namespace) -> int:
    if args.cluster is not None:
        from ..cluster import require_ray

        require_ray()  # first: without Ray, nothing else happens
    job = job_from_args(args)
    cancel = threading.Event()

    def on_interrupt(signum, frame) -> None:
        if cancel.is_set():
            raise KeyboardInterrupt  # a second Ctrl-C: stop now
        print("\ncancelling after the current frame (Ctrl-C again to stop at once)", file=sys.stderr)
        cancel.set()

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        if args.cluster is not None:
            from ..cluster import run_on_cluster

            result = run_on_cluster(job, args.cluster, cancel=cancel, progress=not args.quiet)
        else:
            result = run_transfer(job, cancel=cancel, progress=not args.quiet)
    except JobCancelled as exc:
        print(f"{exc}", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)
    for message in result.warnings:
        warn(message)
    extra = f", {result.side_by_side}" if result.side_by_side else ""
    print(f"{args.output_dir}: {result.frame_count} frames in {result.frames_dir}, {result.video}{extra}",
          file=sys.stderr)
    return 0
