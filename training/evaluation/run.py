"""``evaluate``: the whole evaluation of a model on its run's held-out frames.

    REPORT_DIR/
      poses.npz            the held-out frames' poses (the input of every method)
      real/000001.png...   the real frames as the model draws frames (ground truth)
      methods/<name>/      each method's transfer job folder (frames/, result.mp4, ...)
      metrics.json         every figure, and where it came from
      report.md            the tables in the paper's format, and the strips
      strips/frame_N.png   label | real | each method, for a few frames

Steps: the held-out set -> each method's frames (transfer jobs: resumable, and skipped when
done) -> SSIM / LPIPS / flicker against the real frames -> poses detected again on every
method's frames and on the real ones -> the report.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from backend.errors import InputError
from backend.folders import FolderLock
from backend.labels import LabelStyle
from backend.models.bundle import read_manifest
from backend.pose.detector import HolisticConfig

from .heldout_set import HeldOutSet
from .lpips import LPIPS, LpipsWeights, load_lpips
from .methods import (Method, check_bundle, composite_frames, make_frames, matte_iou,
                      standard_methods, upscale_frames)
from .report import write_report, write_strips
from .scoring import Regions, image_scores, redetect
from training.models.weights import WeightsUnavailable

REPORT_FILES = ("poses.npz", "real", "methods", "metrics.json", "report.md", "strips")


@dataclass
class EvalOptions:
    bundle: Path
    run_dir: Path
    output: Path
    compare: list[tuple[str, Path]] = field(default_factory=list)  # (name, bundle)
    baseline: bool = True  # the nearest-neighbour baseline
    max_frames: int | None = None  # the first N held-out frames only
    strips: int = 5
    lpips: bool = True
    lpips_weights: LpipsWeights = LpipsWeights()
    device: str = "auto"
    cpu_backend: str = "auto"
    progress: bool = True


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def open_lpips(opts: EvalOptions) -> tuple[LPIPS | None, dict]:
    """The LPIPS network, or None and why not (the report then says "not available")."""
    if not opts.lpips:
        return None, {"available": False, "reason": "turned off (--no-lpips)"}
    try:
        net = load_lpips(opts.lpips_weights)
    except (WeightsUnavailable, InputError) as exc:
        log(f"LPIPS not available: {exc}")
        return None, {"available": False, "reason": str(exc)}
    weights = opts.lpips_weights
    return net, {"available": True, "backbone": str(weights.backbone or "standard file"),
                 "heads": str(weights.heads or "standard file")}


def detector_config(held_out: HeldOutSet) -> HolisticConfig:
    """The run's detector settings (the inputs' poses came from them), without a subject
    hint in the video's pixels, which mean nothing on an output frame."""
    settings = dict(held_out.run.manifest.detector.get("settings", {}))
    settings.pop("subject_hint", None)
    known = HolisticConfig.__dataclass_fields__
    return HolisticConfig(**{k: v for k, v in settings.items() if k in known})


def evaluate(opts: EvalOptions) -> dict:
    """Run the evaluation (see the module) and return the results written to metrics.json."""
    with FolderLock(opts.output, REPORT_FILES):  # one process writes a report at a time
        return _evaluate(opts)


def _evaluate(opts: EvalOptions) -> dict:
    manifest = read_manifest(opts.bundle)
    style = LabelStyle.from_dict(manifest.label_style)
    held_out = HeldOutSet.open(opts.run_dir, tuple(manifest.resolution), style, opts.max_frames)
    for _, path in [("ours", opts.bundle), *opts.compare]:
        check_bundle(path, tuple(manifest.resolution), held_out)
    methods = standard_methods(opts.bundle, opts.baseline, opts.compare)
    out = opts.output
    out.mkdir(parents=True, exist_ok=True)
    poses = out / "poses.npz"
    held_out.poses.save(poses)
    log(f"held-out frames {held_out.first}..{held_out.stop - 1} of {held_out.video}: "
        f"{len(held_out)} frames at {held_out.output_size[0]}x{held_out.output_size[1]}")
    real = held_out.write_real_frames(out / "real")
    frames, mattes = {}, {}
    for method in methods:
        log(f"{method.name}: drawing the held-out frames")
        folder = out / "methods" / method.slug
        drawn = make_frames(method, held_out, opts.bundle, poses, folder, opts.device,
                            opts.cpu_backend, opts.progress)
        shown = composite_frames(method, held_out, drawn, folder / "composite") \
            if method.matte else drawn
        size = held_out.output_size
        if method.upscaled:  # a smaller model's frames, blown up to the evaluated size
            shown = upscale_frames(shown, size, folder / "upscaled")
        frames[method.name] = shown
        if method.matte:  # its alpha, at the evaluated size too
            layers = upscale_frames(drawn, size, folder / "upscaled_layers", alpha=True) \
                if method.upscaled else drawn
            mattes[method.name] = matte_iou(layers, held_out)
    lpips, lpips_info = open_lpips(opts)
    face_multiple = (manifest.face_generator.size_multiple if manifest.face_generator else 8)
    regions = Regions(held_out.body_boxes(), held_out.face_boxes(face_multiple))
    config = detector_config(held_out)
    results: dict = {
        "bundle": str(opts.bundle), "run": str(opts.run_dir), "video": str(held_out.video),
        "frames": [held_out.first, held_out.stop], "output_size": list(held_out.output_size),
        "resolution": list(manifest.resolution), "lpips": lpips_info, "methods": {},
        "real": {"pose": redetect(real, held_out, config, opts.progress)},
    }
    for method in methods:
        scores = image_scores(frames[method.name], held_out, real, regions, lpips,
                              opts.progress, method.name)
        scores["pose"] = redetect(frames[method.name], held_out, config, opts.progress)
        scores["job"] = str(out / "methods" / method.slug)
        scores["matte_iou"] = mattes.get(method.name)
        results["methods"][method.name] = scores
    results["strips"] = write_strips(out, held_out, real, frames, opts.strips)
    write_report(out, results)
    log(f"wrote {out / 'report.md'} and {out / 'metrics.json'}")
    return results


__all__ = ["EvalOptions", "Method", "evaluate"]
