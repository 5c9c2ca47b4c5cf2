"""Blender glue between strips and jobs: a strip -> a job, a finished job -> a new strip.

Everything here runs on Blender's main thread. The source strip is only read, never changed.
"""

import os
import re
from pathlib import Path

import bpy

from . import compat, session
from .backend_client import Adjust, Run
from .core import locations
from .core.frame_map import (FrameMapping, StripMappingError, StripTiming, first_free_channel,
                             infer_rate, map_strip)
from .core.jobs import Job, Placement, new_job_id
from .core.keyframes import ADJUSTMENTS, sample_adjustments

SOURCE_TYPES = {'MOVIE', 'IMAGE'}
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
    samples = sample_adjustments(evaluators, constants, mapping)
    return Adjust(scale=samples.scale, offset_x=samples.offset_x, offset_y=samples.offset_y)


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


def build_job(scene, strip, runner):
    """A job for ``strip`` with everything decided now: frames, adjustments, placement."""
    if strip is None or strip.type not in SOURCE_TYPES:
        raise JobSetupError("select a movie or image strip (the source dancer)")
    settings = scene.dance
    model = model_folder(scene)
    if not os.path.isfile(os.path.join(model, "manifest.json")):
        raise JobSetupError(f"{model} is not a model bundle (no manifest.json)")
    try:
        timing = strip_timing(scene, strip)
        mapping = map_strip(timing)
    except StripMappingError as exc:
        raise JobSetupError(f"{strip.name}: {exc}") from None
    if strip.type == 'MOVIE':
        source, fps = compat.abspath(strip.filepath, strip.id_data), float(strip.fps)
    else:  # elements -> their places in the folder, the way the backend numbers frames
        source, indices = _image_frames(strip)
        fps = compat.scene_fps(scene)
        mapping = FrameMapping(timeline_start=mapping.timeline_start,
                               source_frames=tuple(indices[i] for i in mapping.source_frames))
    try:
        adjust = _adjustments(strip, mapping)
    except ValueError as exc:
        raise JobSetupError(f"{strip.name}: {exc}") from None
    start, stop = mapping.source_start, mapping.source_stop
    channel = first_free_channel(_occupied(scene) + _reserved(runner, scene.name), strip.channel,
                                 timing.final_start, timing.final_end)
    job_id = new_job_id(strip.name)
    run = Run(job_id=job_id, source=source, model=model,
              output_dir=str(output_root(scene) / job_id), frame_start=start, frame_stop=stop,
              fps=fps, adjust=adjust, face=settings.use_face, side_by_side=settings.side_by_side,
              source_stats=_stats_override(strip))
    placement = Placement(scene=scene.name, channel=channel, frame_start=timing.final_start,
                          job_frames=mapping.job_frames, name=f"{strip.name} (dance)",
                          file_generation=session.get().file_generation)
    return Job(id=job_id, label=strip.name, run=run, placement=placement)


def _stats_override(strip) -> str | None:
    """The strip's saved source statistics (JSON from `python -m backend stats`), if overridden."""
    settings = strip.dance
    if not settings.override_stats:
        return None
    path = compat.abspath(settings.stats_path) if settings.stats_path else ""
    if not os.path.isfile(path):
        raise JobSetupError(f"{strip.name}: the statistics file {path or '(none)'} does not exist")
    return path


# --- job -> strip -----------------------------------------------------------------------------


def place_result(job):
    """Add the finished job's frames as an image strip where it was decided; returns it."""
    p = job.placement
    if p.file_generation != session.get().file_generation:
        job.message = f"another file was opened; the frames are in {job.result.frames_dir}"
        return None
    scene = bpy.data.scenes.get(p.scene)
    if scene is None:
        job.message = f"scene {p.scene} no longer exists; frames are in {job.result.frames_dir}"
        return None
    frames_dir = job.result.frames_dir
    files = [f"{k + 1:06d}.png" for k in p.job_frames]
    missing = [f for f in files if not os.path.isfile(os.path.join(frames_dir, f))]
    if missing:
        job.message = f"{len(missing)} frames missing in {frames_dir} (first {missing[0]})"
        return None
    ed = compat.editor(scene, create=True)
    strip = compat.new_image_strip(ed, p.name, frames_dir, files, p.channel, p.frame_start)
    strip.dance.is_result = True
    job.placed = True
    return strip
