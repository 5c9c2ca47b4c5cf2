"""``python -m training``: prepare a target video, train, export the model bundle.

    python -m training prepare TARGET_VIDEO -o RUN_DIR [--preset paper-local]
    python -m training train RUN_DIR --preset paper-local [--stage local] [--resume]
                             [--steps N | --epochs N] [--perceptual none] [...every option]
    python -m training export RUN_DIR -o BUNDLE_DIR
    python -m training evaluate BUNDLE_DIR RUN_DIR -o REPORT_DIR [--compare NAME=BUNDLE ...]

Multi-GPU / multi-node: ``torchrun --nproc_per_node=GPUS -m training train RUN_DIR ...``.
Exit codes: 0 done, 2 a problem with the input (message on stderr), 130 stopped (resumable).
"""

from __future__ import annotations

import argparse
import sys
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path

from backend.checks import FRAME, FRAME_STOP, CheckedParser, Float, Int
from backend.command_line import run_command
from backend.errors import BackendError
from backend.folders import (MODEL_BUNDLE, TRAINING_RUN, TRAINING_RUN_FILES, FolderLock,
                             refuse_other_kind, require_kind)
from backend.commands.parsing import parse_size
from backend.output_paths import check_output_folder
from backend.commands.workers import add_workers_argument

from .options import (EPOCHS, PRESETS, STAGES, STEPS, TrainOptions, add_option_arguments,
                      apply_overrides, preset)

HOLDOUT = Float(0.0, 0.9)  # the held-out fraction: most of the video stays for training


class OptionError(BackendError):
    """Options that are each allowed but do not fit together (or the run's frames)."""

    code = "bad_input"


def _prepare_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("prepare", help="frames, poses, labels and statistics of a target video")
    p.add_argument("video", type=Path, help="the target person's video (or image folder)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="RUN_DIR")
    p.add_argument("--preset", choices=sorted(PRESETS), default="paper-local",
                   help="stores frames at the preset's largest resolution (default paper-local)")
    p.add_argument("--size", type=parse_size, default=None, metavar="WxH",
                   help="override the preset's size")
    p.add_argument("--holdout", type=HOLDOUT.parse, default=0.15,
                   help="fraction at the end of the video held out for evaluation (0.15)")
    p.add_argument("--start", type=FRAME.parse, default=0, help="first frame to use")
    p.add_argument("--stop", type=FRAME_STOP.parse, default=None,
                   help="frame after the last one to use")
    p.add_argument("--frame-format", choices=("jpg", "png"), default="jpg",
                   help="stored frames: JPEG quality 95 (default) or PNG")
    p.add_argument("--poses", type=Path, default=None, metavar="TRACK.npz",
                   help="use this pose track (covering the frame range) instead of detecting")
    p.add_argument("--smoothing", default=None,
                   help="pose smoothing method (median = the official code's, default)")
    add_workers_argument(p)
    p.add_argument("--force", action="store_true",
                   help="prepare again although the folder was prepared from other inputs")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=_run_prepare)


TRAIN_DESCRIPTION = """Trains the run's stages in order (global -> local -> face), each from
the checkpoints of the one before. The options start from the preset's values, or a resumed
run's own: only those given change. Each option's help ends with its default and the presets
that set another value."""


def _train_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("train", help="train the stages (global -> local -> face)",
                       description=TRAIN_DESCRIPTION)
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR",
                   help="the run folder that `prepare` made")
    p.add_argument("--preset", choices=sorted(PRESETS), default=None,
                   help="the named configuration to start from (default: the one the run was "
                        "prepared for; a resumed run keeps its own)")
    p.add_argument("--stage", choices=STAGES, default=None,
                   help="train only this one of the run's stages now (default: each of them in "
                        "order; --stages says which stages the run has)")
    p.add_argument("--resume", action="store_true",
                   help="continue from the latest checkpoints (finished stages are skipped)")
    length = p.add_mutually_exclusive_group()
    length.add_argument("--steps", type=STEPS.parse, default=None, metavar="N",
                        help="train each stage for N steps (default: its epochs)")
    length.add_argument("--epochs", type=EPOCHS.parse, default=None, metavar="X",
                        help="train each stage for X epochs, passes over the training frames "
                             "(default: the schedule's --epochs-global, --epochs-local and "
                             "--epochs-face)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar on stderr")
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


def _compare_arg(text: str) -> tuple[str, Path]:
    name, sep, path = text.partition("=")
    if not sep or not name.strip() or not path:
        raise argparse.ArgumentTypeError(f"expected NAME=BUNDLE_DIR, got {text!r}")
    return name.strip(), Path(path)


EVALUATE_DESCRIPTION = """Draws the run's held-out target frames (never seen in training) from
their own poses with the model, the nearest-neighbour baseline, the model without its face GAN
and any --compare bundles, then measures SSIM and LPIPS (full frame, body, face), flicker, and
the keypoints detected again on the outputs. Writes REPORT_DIR/report.md (the paper's tables),
metrics.json and strips/. Resumable: run it again to continue."""


def _evaluate_parser(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("evaluate", help="the paper's metrics on the run's held-out frames",
                       description=EVALUATE_DESCRIPTION)
    p.add_argument("bundle", type=Path, metavar="BUNDLE_DIR", help="the model to evaluate")
    p.add_argument("run_dir", type=Path, metavar="RUN_DIR",
                   help="the prepared run of the same target (its held-out split)")
    p.add_argument("-o", "--output", type=Path, required=True, metavar="REPORT_DIR")
    p.add_argument("--compare", type=_compare_arg, action="append", default=[],
                   metavar="NAME=BUNDLE_DIR",
                   help='another bundle of the same target and resolution, a row of its own '
                        '(e.g. "no temporal=runs/notemp_bundle"); repeatable')
    p.add_argument("--no-baseline", action="store_true",
                   help="skip the nearest-neighbour baseline")
    p.add_argument("--frames", type=Int(2).parse, default=None, metavar="N",
                   help="evaluate the first N held-out frames only (at least 2: flicker compares "
                        "consecutive frames)")
    p.add_argument("--strips", type=Int(0, 1000).parse, default=5, metavar="K",
                   help="image strips (label | real | each method) to write (5)")
    p.add_argument("--lpips-backbone", type=Path, default=None, metavar="PATH",
                   help="torchvision's AlexNet weights (alexnet-owt-7be5be79.pth) for LPIPS "
                        "(default: find or download them)")
    p.add_argument("--lpips-weights", type=Path, default=None, metavar="PATH",
                   help="the lpips package's weights/v0.1/alex.pth (default: find or download)")
    p.add_argument("--no-lpips", action="store_true", help="skip LPIPS")
    p.add_argument("--device", default="auto", help="where the networks run (auto)")
    p.add_argument("--cpu-backend", choices=("auto", "onnx", "torch"), default="auto",
                   help="what runs the networks on the CPU (auto: ONNX Runtime)")
    p.add_argument("--no-progress", action="store_true")
    p.set_defaults(run=_run_evaluate)


def build_parser() -> argparse.ArgumentParser:
    parser = CheckedParser(prog="python -m training", description=__doc__.split("\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    _prepare_parser(sub)
    _train_parser(sub)
    _export_parser(sub)
    _evaluate_parser(sub)
    return parser


_PREPARE_FIRST = "make one with `python -m training prepare TARGET_VIDEO -o RUN_DIR`"


def _run_prepare(args: argparse.Namespace) -> int:
    from backend.pose.track import PoseTrack, require_person

    from .data.prepare import PrepareOptions, prepare

    check_output_folder(args.output)
    refuse_other_kind(args.output, TRAINING_RUN)
    opts = preset(args.preset)
    if args.size:
        opts.size = args.size
    _validate(opts)  # a size the preset's networks cannot train at is refused now
    smoothing = None
    if args.smoothing:
        from backend.pose.smoothing import SmoothingConfig

        smoothing = SmoothingConfig(method=args.smoothing)
    options = PrepareOptions(size=opts.size, label_sizes=tuple(opts.sizes_needed()),
                             holdout=args.holdout, start=args.start, stop=args.stop,
                             frame_format=args.frame_format, preset=args.preset,
                             smoothing=smoothing, pose_workers=args.workers)
    track = PoseTrack.load(args.poses) if args.poses else None
    if track is not None:
        require_person(track, args.poses, "a target video must show the person to learn")
    prepared = prepare(args.video, args.output, options, track=track,
                       progress=not args.no_progress, force=args.force)
    train, held = prepared.train_range, prepared.eval_range
    print(f"prepared {prepared.n_frames} frames at {prepared.canvas[0]}x{prepared.canvas[1]} "
          f"in {prepared.folder} (train {train[0]}-{train[1] - 1}, held out "
          f"{held[1] - held[0]})", file=sys.stderr)
    return 0


def _run_train(args: argparse.Namespace) -> int:
    from .run_folder import RunFolder, load_run_options
    from .trainer import train

    require_kind(args.run_dir, TRAINING_RUN, _PREPARE_FIRST)
    saved = load_run_options(args.run_dir) if args.resume else None
    if saved is not None and args.preset not in (None, saved.preset):
        print(f"error: {args.run_dir} was trained with preset {saved.preset}, not "
              f"{args.preset}", file=sys.stderr)
        return 2
    opts = apply_overrides(saved or preset(args.preset or _prepared_preset(args.run_dir)), args)
    try:
        _check_options(opts, args.run_dir)
    except OptionError as exc:
        if saved is None:
            raise
        # A value no flag takes came from the run's own record (an edited file, or an earlier
        # version's): say where, and that the flag gives another (never a silent choice).
        raise OptionError(f"{exc} (in {RunFolder(args.run_dir).options}: give the flag to "
                          f"resume with another value, or put back the one the run was trained "
                          f"with)") from None
    if args.no_progress:
        opts.runtime.progress = False
    results = train(args.run_dir, opts, [args.stage] if args.stage else None, args.resume,
                    args.steps, args.epochs)
    for r in results:
        state = "already done" if r.get("skipped") else f"{r['step']}/{r['total_steps']} steps"
        print(f"stage {r['stage']}: {state}", file=sys.stderr)
    return 0


def _check_options(opts: TrainOptions, run_dir: Path) -> None:
    """The options together and against the run's frames, before anything is written."""
    from backend.target.prepared import PreparedRun

    _validate(opts)
    start, stop = PreparedRun.open(run_dir).train_range
    if opts.runtime.batch_size > stop - start:
        raise OptionError(f"--batch-size {opts.runtime.batch_size} is larger than the run's "
                          f"{stop - start} training frames; use at most {stop - start}")


def _validate(opts: TrainOptions) -> None:
    try:
        opts.validate()
    except ValueError as exc:
        raise OptionError(str(exc)) from None


def _prepared_preset(run_dir: Path) -> str:
    """The preset the run folder was prepared for (paper-local when unknown)."""
    from backend.target.prepared import PreparedRun

    name = PreparedRun.open(run_dir).manifest.preset
    return name if name in PRESETS else "paper-local"


def _run_export(args: argparse.Namespace) -> int:
    from .export import export_bundle

    require_kind(args.run_dir, TRAINING_RUN, _PREPARE_FIRST)
    check_output_folder(args.output)
    refuse_other_kind(args.output, MODEL_BUNDLE)
    with _run_lock_if_inside(args.run_dir, args.output):
        path = export_bundle(args.run_dir, args.output, args.stage, args.name)
    print(f"model bundle written to {path}", file=sys.stderr)
    return 0


def _run_evaluate(args: argparse.Namespace) -> int:
    from .evaluation import EvalOptions, LpipsWeights, evaluate

    require_kind(args.run_dir, TRAINING_RUN, _PREPARE_FIRST)
    check_output_folder(args.output)
    refuse_other_kind(args.output, "evaluation report")
    _check_compare_names(args.compare)
    with _run_lock_if_inside(args.run_dir, args.output):
        evaluate(EvalOptions(
            bundle=args.bundle, run_dir=args.run_dir, output=args.output, compare=args.compare,
            baseline=not args.no_baseline, max_frames=args.frames, strips=args.strips,
            lpips=not args.no_lpips,
            lpips_weights=LpipsWeights(args.lpips_backbone, args.lpips_weights),
            device=args.device, cpu_backend=args.cpu_backend, progress=not args.no_progress))
    return 0


def _check_compare_names(compare: list[tuple[str, Path]]) -> None:
    """Each --compare bundle needs a name, and a folder (methods/NAME), of its own."""
    from .evaluation.methods import Method

    taken = {Method(name, None).slug: name for name in ("nearest neighbour", "ours")}
    for name, _ in compare:
        slug = Method(name, None).slug
        if slug in taken:
            same = "is given twice" if taken[slug] == name else \
                f"and {taken[slug]!r} would share the folder methods/{slug}"
            raise OptionError(f"--compare {name!r} {same}; give each bundle a name of its "
                              f"own (letters or digits that differ)")
        taken[slug] = name


def _run_lock_if_inside(run_dir: Path, output: Path) -> AbstractContextManager:
    """The run's lock where ``output`` lies inside the run folder (the command then writes
    into the run, as the add-on's RUN/bundle), else nothing: reading a run needs no lock."""
    inside = output.resolve().is_relative_to(run_dir.resolve())
    return FolderLock(run_dir, TRAINING_RUN_FILES) if inside else nullcontext()


def main(argv: list[str] | None = None) -> int:
    try:
        return run_command(build_parser().parse_args(argv))
    finally:
        if "training.distributed" in sys.modules:  # only when training ran (no torch import)
            sys.modules["training.distributed"].teardown()
