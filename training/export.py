"""``python -m training export RUN_DIR -o BUNDLE_DIR``: the model bundle transfer loads.

The bundle (backend/models/bundle.py) gets G from the most advanced trained stage (face,
else local, else global), the face generator when the face stage was trained, the training
resolution, the label style and the target's normalization statistics from the prepared
data, the background plate for a generator with a matte, a picture of the target
(``target_frame.png``: the first training frame, for previews), and in ``training`` what
transfer needs to draw labels the way training did (the letterbox of the target video into
the training canvas) plus where the weights came from.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from backend.errors import InputError
from backend.models.bundle import BundleManifest, TrainingRecord, save_bundle
from backend.models.networks import FaceGenerator, build_face_generator, build_generator
from backend.pose_preview import write_target_frame
from backend.target.letterbox import resize
from backend.target.prepared import PreparedRun

from . import checkpoint as ckpt
from .options import STAGES, TrainOptions
from .stages import stage_window, uses_local
from .run_folder import RunFolder, load_run_options, stage_checkpoint


def pick_stage(run_dir: Path, stages: tuple[str, ...]) -> str:
    """The most advanced stage of the run that has a checkpoint."""
    for stage in reversed(stages):
        if stage_checkpoint(run_dir, stage) is not None:
            return stage
    raise InputError(run_dir, "has no training checkpoints to export; run `python -m training "
                              "train` first")


def export_bundle(run_dir: str | Path, out: str | Path, stage: str | None = None,
                  name: str | None = None) -> Path:
    """Write the bundle of ``run_dir``'s ``stage`` (default: the most advanced) to ``out``."""
    run_dir = Path(run_dir)
    saved_opts = RunFolder(run_dir).options
    if not saved_opts.is_file():
        raise InputError(run_dir, "has not been trained (no train_options.json)")
    opts = load_run_options(run_dir)
    assert opts is not None
    stage = stage or pick_stage(run_dir, opts.schedule.stages)
    if stage not in STAGES or stage not in opts.schedule.stages:
        raise ValueError(f"stage {stage} is not part of this run ({opts.schedule.stages})")
    path = stage_checkpoint(run_dir, stage)
    if path is None:
        raise InputError(RunFolder(run_dir).checkpoints(stage), "no checkpoint of this stage")
    state = ckpt.load_checkpoint(path)
    if not state.get("done"):
        print(f"note: stage {stage} is not finished (step {state['step']} of "
              f"{state['total_steps']}); exporting its latest checkpoint", file=sys.stderr)
    opts = TrainOptions.from_dict(state["options"])
    prepared = PreparedRun.open(run_dir)

    config = opts.model.generator(uses_local(opts, stage))
    generator = build_generator(config)
    generator.load_state_dict(state["nets"]["G"])
    face: FaceGenerator | None = None
    if stage == "face":
        face = build_face_generator(opts.model.face_generator())
        face.load_state_dict(state["nets"]["face_G"])
    manifest = BundleManifest(
        name=name or run_dir.resolve().name,
        generator=config,
        resolution=(int(state["size"][0]), int(state["size"][1])),
        label_style=prepared.manifest.label_style,
        normalization=prepared.normalization(),
        face_generator=face.config if face is not None else None,
        training=_training_info(opts, stage, state, prepared),
    )
    plate = (resize(prepared.plate(), manifest.resolution) if config.has_matte else None)
    folder = save_bundle(out, manifest, generator, face, plate)
    # A picture of the target for previews (already letterboxed into the training canvas).
    write_target_frame(folder, prepared.frame(prepared.train_range[0]), manifest.resolution)
    return folder


def _training_info(opts: TrainOptions, stage: str, state: dict[str, Any],
                   prepared: PreparedRun) -> TrainingRecord:
    size = (int(state["size"][0]), int(state["size"][1]))
    return TrainingRecord(
        preset=opts.preset, stage=stage, step=int(state["step"]),
        total_steps=int(state["total_steps"]), finished=bool(state.get("done")),
        temporal=opts.temporal.temporal, perceptual=opts.loss.perceptual,
        face_box_multiple=opts.model.face_generator().size_multiple,
        # How target frames were fitted into the training canvas (transfer draws labels in
        # the same canvas and cuts generated frames back to the target's shape).
        letterbox=prepared.letterbox_at(size),
        target_size=prepared.manifest.source_size, target_fps=prepared.fps,
        window=stage_window(opts, stage, prepared))
