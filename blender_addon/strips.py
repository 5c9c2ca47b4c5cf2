"""Blender glue from a source strip to a job: its frames, keyed adjustments and placement.

Everything here runs on Blender's main thread. The source strip is only read, never changed.
A finished job becomes a strip in `results`.
"""

import os
import re
from dataclasses import dataclass, replace
from pathlib import Path

import bpy

from . import compat, session
from .backend_client import Adjustments, Preview, Run
from .core import locations
from .core.frame_map import (FrameMapping, StripMappingError, StripTiming, first_free_channel,
                             infer_rate, map_strip)
from .core.job_queue import PREVIEW, RESULT, Job, Placement, new_job_id
from .core.keyframes import ADJUSTMENTS, sample_adjustments
from .core.pose_previews import PREVIEWS_FOLDER
from .results import made_strip, strip_name

SOURCE_TYPES = {'MOVIE', 'IMAGE'}
PREVIEW_FORMAT = "jpg"  # preview frames: a tenth of a PNG's encoding time in the worker
IMAGE_EXTENSIONS = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"}  # the backend's


class JobSetupError(ValueError):
    """The strip or the settings cannot make a job (the message is for the user)."""


# --- reading a strip --------------------------------------------------------------------------


def _natural_key(name):
    """The order the backend gives an image folder's frames (backend/video/images.py)."""
    return [int(p) if p.isdigit() else p for p in re.split(r"(\d+)", name.lower())]


def _image_frames(strip):
    """The folder of an image strip, and each element's index among its images."""
    folder = compat.abspath(strip.directory, strip.id_data)
    try:
        names = sorted((n for n in os.listdir(folder) if not n.startswith(".")
                        and os.path.splitext(n)[1].lower() in IMAGE_EXTENSIONS), key=_natural_key)
    except OSError as exc:
        raise JobSetupError(f"cannot read the image folder {folder}: {exc.strerror}") from None
    order = {name: i for i, name in enumerate(names)}
    missing = [e.filename for e in strip.elements if e.filename not in order]
    if missing:
        raise JobSetupError(f"{strip.name}: {missing[0]} is not in {folder}")
    return folder, [order[e.filename] for e in strip.elements]



def strip_timing(scene, strip):
    """The strip's timing, for `core.frame_map` (Blender's ``len`` and playback rate)."""
    hard_start, hard_end = compat.hard_trims(strip)
    if strip.type == 'MOVIE':
        total = compat.movie_frame_count(compat.abspath(strip.filepath, strip.id_data))
        length = total - hard_start - hard_end
        rate = infer_rate(float(strip.fps), compat.scene_fps(scene), length, strip.frame_duration)
    else:
        length = len(strip.elements) - hard_start - hard_end
        rate = 1.0
    # Retiming (4.x) or a speed change makes the content span another length than the
    # playback rate explains: the frame mapping would be wrong, so refuse it.
    retimed = getattr(strip, "retiming_keys", None) is not None and len(strip.retiming_keys) > 2
    if retimed or abs(length / rate - strip.frame_duration) > 1:
        raise JobSetupError(f"{strip.name} plays at a changed speed (retimed); that is not "
                            f"supported: render the strip to a movie first")
    return StripTiming(frame_start=compat.content_start(strip),
                       final_start=strip.frame_final_start, final_end=strip.frame_final_end,
                       content_length=length,
                       hard_trim_start=hard_start, rate=rate,
                       reverse=bool(getattr(strip, "use_reverse_frames", False)),
                       strobe=float(getattr(strip, "strobe", 1.0)))


def _adjustments(strip, mapping):
    """Each adjustment sampled once per job frame (F-curves evaluated at their timeline frame)."""
    props = {name: f"dance_{name}" for name in ADJUSTMENTS}  # see props.ADJUSTMENT_PROPS
    evaluators = {name: compat.property_evaluator(strip, prop) for name, prop in props.items()}
    constants = {name: getattr(strip, prop) for name, prop in props.items()}
    return sample_adjustments(evaluators, constants, mapping)


# --- where things go ------------------------------------------------------------------------


def model_folder(scene):
    """The model bundle the scene's settings name (the demo performer when empty)."""
    path = scene.dance.model_path.strip()
    if path:
        return compat.abspath(path)
    demo = locations.demo_bundle()
    if demo is None:
        raise JobSetupError("choose a model bundle folder (no demo model ships with this backend)")
    return str(demo)


def output_root(scene):
    """Where job folders go: the scene's output folder, or the user folder while unsaved."""
    path = scene.dance.output_dir.strip() or "//dance_output/"
    if path.startswith("//") and not bpy.data.filepath:
        return compat.user_dir() / "jobs"
    return Path(compat.abspath(path))


def _occupied(scene):
    ed = compat.editor(scene)
    return [(s.channel, s.frame_final_start, s.frame_final_end) for s in compat.all_strips(ed)]


def _reserved(runner, scene_name):
    """Ranges promised to queued jobs whose strips do not exist yet."""
    out = []
    for job in runner.queue.jobs:
        p = job.placement
        if p.scene == scene_name and not job.placed and not job.state.finished:
            out.append((p.channel, p.frame_start, p.frame_start + len(p.job_frames)))
    return out


# --- strip -> job -----------------------------------------------------------------------------


@dataclass(frozen=True)
class SourceFrames:
    """What a job reads from its source strip: the media, the frames shown, the adjustments."""

    path: str  # movie file or image folder
    fps: float
    timing: StripTiming
    mapping: FrameMapping  # of the media's frames (an image strip's: indices in its folder)
    adjustments: Adjustments  # the keyed adjustments sampled once per job frame

    @property
    def start(self) -> int:
        return self.mapping.source_start

    @property
    def stop(self) -> int:
        return self.mapping.source_stop


def read_source(scene, strip):
    """The frames ``strip`` shows and its adjustments, sampled now (JobSetupError if unusable)."""
    if strip is None or strip.type not in SOURCE_TYPES:
        raise JobSetupError("select a movie or image strip (the source dancer)")
    if strip.dance.is_result or strip.dance.is_preview:
        raise JobSetupError(f"{strip.name} was made by this add-on; select the source "
                            f"dancer's strip")
    try:
        timing = strip_timing(scene, strip)
        mapping = map_strip(timing)
    except StripMappingError as exc:
        raise JobSetupError(f"{strip.name}: {exc}") from None
    if strip.type == 'MOVIE':
        path, fps = compat.abspath(strip.filepath, strip.id_data), float(strip.fps)
    else:  # elements -> their places in the folder, the way the backend numbers frames
        path, indices = _image_frames(strip)
        fps = compat.scene_fps(scene)
        mapping = FrameMapping(timeline_start=mapping.timeline_start,
                               source_frames=tuple(indices[i] for i in mapping.source_frames))
    try:
        adjustments = _adjustments(strip, mapping)
    except ValueError as exc:
        raise JobSetupError(f"{strip.name}: {exc}") from None
    return SourceFrames(path, fps, timing, mapping, adjustments)


def build_job(scene, strip, runner):
    """A retarget job for ``strip`` with everything decided now: frames, adjustments, placement.

    Its result replaces the media of the strip an earlier retarget of ``strip`` made, where
    there is one (see `results`), else it goes on the first free channel above the source.
    """
    frames = read_source(scene, strip)
    model = _model(scene)
    settings = scene.dance
    job_id = new_job_id(strip.name)
    run = Run(job_id=job_id, source=frames.path, model=model,
              output_dir=str(output_root(scene) / job_id), frame_start=frames.start,
              frame_stop=frames.stop, fps=frames.fps, adjustments=frames.adjustments,
              face=settings.use_face, side_by_side=settings.side_by_side,
              source_stats=_stats_override(strip), reuse=_earlier_job(scene, strip),
              background="transparent" if settings.background == 'TRANSPARENT' else "target")
    placement = replace(_placement(scene, strip, frames, runner, RESULT),
                        transparent=run.background == "transparent")
    return Job(id=job_id, label=strip.name, run=run, placement=placement)


def build_preview_job(scene, strip, runner):
    """A pose-preview job for ``strip``: the stick figure with its current keyed adjustments,
    shown in the strip of its earlier preview (or a new one on a free channel above it)."""
    frames = read_source(scene, strip)
    model = _model(scene)
    job_id = new_job_id(f"{strip.name}-preview")
    preview = Preview(job_id=job_id, source=frames.path, model=model,
                      output_dir=str(output_root(scene) / PREVIEWS_FOLDER / job_id),
                      frame_start=frames.start, frame_stop=frames.stop, fps=frames.fps,
                      adjustments=frames.adjustments, source_stats=_stats_override(strip),
                      frame_format=PREVIEW_FORMAT)
    placement = replace(_placement(scene, strip, frames, runner, PREVIEW),
                        image_ext=PREVIEW_FORMAT)
    return Job(id=job_id, label=f"{strip.name} (preview)", run=preview, placement=placement)


def _earlier_job(scene, strip):
    """The job folder of the result an earlier retarget of ``strip`` shows, if any: the new
    job starts from it and keeps the frames before the first changed one (the backend
    decides which; the earlier folder stays for undo)."""
    result = made_strip(scene, strip.name, RESULT)
    if result is None:
        return None
    frames = compat.abspath(result.directory, result.id_data).rstrip("/\\")
    job = os.path.dirname(frames)
    return job if os.path.isfile(os.path.join(job, "job.json")) else None


def _model(scene):
    model = model_folder(scene)
    if not os.path.isfile(os.path.join(model, "manifest.json")):
        raise JobSetupError(f"{model} is not a model bundle (no manifest.json)")
    return model


def _placement(scene, strip, frames, runner, role):
    """Where the job's strip goes: the earlier one of this role and source, else a free channel."""
    timing = frames.timing
    earlier = made_strip(scene, strip.name, role)
    channel = earlier.channel if earlier is not None else first_free_channel(
        _occupied(scene) + _reserved(runner, scene.name), strip.channel, timing.final_start,
        timing.final_end)
    return Placement(scene=scene.name, channel=channel, frame_start=timing.final_start,
                     job_frames=frames.mapping.job_frames, name=strip_name(strip.name, role),
                     file_generation=session.get().file_generation, source=strip.name,
                     role=role)


def _stats_override(strip) -> str | None:
    """The strip's saved source statistics (JSON from `python -m backend stats`), if overridden."""
    settings = strip.dance
    if not settings.override_stats:
        return None
    path = compat.abspath(settings.stats_path) if settings.stats_path else ""
    if not os.path.isfile(path):
        raise JobSetupError(f"{strip.name}: the statistics file {path or '(none)'} does not exist")
    return path
