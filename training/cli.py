"""``python -m training``: prepare a target video, train, export the model bundle.

    python -m training prepare TARGET_VIDEO -o RUN_DIR [--preset paper-local]
    python -m training train RUN_DIR --preset paper-local [--stage local] [--resume]
                             [--steps N | --epochs N] [--perceptual none] [...every option]
    python -m training export RUN_DIR -o BUNDLE_DIR

Multi-GPU / multi-node: ``torchrun --nproc_per_node=GPUS -m training train RUN_DIR ...``.
Exit codes: 0 done, 2 a problem with the input (message on stderr), 130 stopped (resumable).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from backend.errors import BackendError, Cancelled

from .options import PRESETS, STAGES, add_option_arguments, apply_overrides, parse_size, preset


def _prepare_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="frames, poses, labels and statistics of a target video")
    p.add_argument("video", type=Path, help="the target person's video (or image folder)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="RUN_DIR")
    p.add_argument("--preset", choices=sorted(PRESETS), default="paper-local",
                   help="stores frames at the preset's largest resolution (default paper-local)")
    p.add_argument("--size", default=None, metavar="WxH", help="override the preset's size")
    p.add_argument("--holdout", type=float, default=0.15,
                   help="fraction at the end of the video held out for evaluation (0.15)")
    p.add_argument("--start", type=int, default=0, help="first frame to use")
    p.add_argument("--stop", type=int, default=None, help="frame after the last one to use")
    p.add_argument("--frame-format", choices=("jpg", "png"), default="jpg",
                   help="stored frames: JPEG quality 95 (default) or PNG")
    p.add_argument("--poses", type=Path, default=None, metavar="TRACK.npz",
                   help="use this pose track (covering the frame range) instead of detecting")
    p.add_argument("--smoothing", default=None,
                   help="pose smoothing method (median = the official code's, default)")
    p.add_argument("--force", action="store_true",
                   help="prepare again although the folder was prepared from other inputs")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=_run_prepare)


def _train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the stages (global -> local -> face)")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help="paper-local, paper-global, cpu-small or tiny (default: the one the "
                        "run was prepared for; a resumed run keeps its own)")
    p.add_argument("--stage", choices=STAGES, default=None,
                   help="train only this stage (default: every stage of the run in order)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the latest checkpoints (finished stages are skipped)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=int, default=None, help="steps per stage")
    length.add_argument("--epochs", type=float, default=None,
                        help="epochs per stage (default: the preset's schedule)")
    p.add_argument("--no-progress", action="store_true")
    add_option_arguments(p)
    p.set_defaults(run=_run_train)


def _export_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("export", help="write the model bundle that transfer loads")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="BUNDLE_DIR")
    p.add_argument("--stage", choices=STAGES, default=None,
                   help="which stage's generator (default: the most advanced trained)")
    p.add_argument("--name", default=None, help="the bundle's name (default: the run folder's)")
    p.set_defaults(run=_run_export)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m training", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _prepare_parser(sub)
    _train_parser(sub)
    _export_parser(sub)
    return parser


def _run_prepare(args: argparse.Namespace) -> int:
    from backend.pose.track import PoseTrack

    from .data.prepare import PrepareOptions, prepare

    opts = preset(args.preset)
    if args.size:
        opts.size = parse_size(args.size)
    smoothing = None
    if args.smoothing:
        from backend.pose.smoothing import SmoothingConfig

        smoothing = SmoothingConfig(method=args.smoothing)
    options = PrepareOptions(size=opts.size, label_sizes=tuple(opts.sizes_needed()),
                             holdout=args.holdout, start=args.start, stop=args.stop,
                             frame_format=args.frame_format, preset=args.preset)
    track = PoseTrack.load(args.poses) if args.poses else None
    prepared = prepare(args.video, args.output, options, track=track, smoothing=smoothing,
                       progress=not args.no_progress, force=args.force)
    train, held = prepared.train_range, prepared.eval_range
    print(f"prepared {prepared.n_frames} frames at {prepared.canvas[0]}x{prepared.canvas[1]} "
          f"in {prepared.folder} (train {train[0]}-{train[1] - 1}, held out "
          f"{held[1] - held[0]})", file=sys.stderr)
    return 0


def _run_train(args: argparse.Namespace) -> int:
    from .trainer import load_run_options, train

    saved = load_run_options(args.run_dir) if args.resume else None
    if saved is not None and args.preset not in (None, saved.preset):
        print(f"error: {args.run_dir} was trained with preset {saved.preset}, not "
              f"{args.preset}", file=sys.stderr)
        return 2
    opts = apply_overrides(saved or preset(args.preset or _prepared_preset(args.run_dir)), args)
    if args.no_progress:
        opts.runtime.progress = False
    results = train(args.run_dir, opts, [args.stage] if args.stage else None, args.resume,
                    args.steps, args.epochs, progress=opts.runtime.progress)
    for r in results:
        state = "already done" if r.get("skipped") else f"{r['step']}/{r['total_steps']} steps"
        print(f"stage {r['stage']}: {state}", file=sys.stderr)
    return 0


def _prepared_preset(run_dir: Path) -> str:
    """The preset the run folder was prepared for (paper-local when unknown)."""
    from .data.prepare import Prepared

    name = Prepared.open(run_dir).manifest.get("preset")
    return name if name in PRESETS else "paper-local"


def _run_export(args: argparse.Namespace) -> int:
    from .export import export_bundle

    path = export_bundle(args.run_dir, args.output, args.stage, args.name)
    print(f"model bundle written to {path}", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args.run(args) or 0)
    except Cancelled as exc:
        print(f"stopped: {exc}", file=sys.stderr)
        return 130
    except BackendError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    finally:
        if "training.distributed" in sys.modules:  # only when training ran (no torch import)
            sys.modules["training.distributed"].teardown()
