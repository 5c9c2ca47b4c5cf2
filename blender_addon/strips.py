"""Blender glue from a source strip to a job: its frames, keyed adjustments and placement.

Everything here runs on Blender's main thread. The source strip is only read, never changed.
A finished job becomes a strip in `results`.
"""

import os
import re
from dataclasses import replace
from pathlib import Path

import bpy

from . import compat, session
from .backend_client import Preview, Run
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


def strip_mapping(scene, strip) -> FrameMapping:
    """The source frame ``strip`` shows on each visible timeline frame (JobSetupError if the
    strip's timing cannot be mapped)."""
    try:
        return map_strip(strip_timing(scene, strip))
    except StripMappingError as exc:
        raise JobSetupError(f"{strip.name}: {exc}") from None


def _check_source(strip) -> None:
    if strip is None or strip.type not in SOURCE_TYPES:
        raise JobSetupError("select a movie or image strip (the source dancer)")
    if strip.dance.is_result or strip.dance.is_preview:
        raise JobSetupError(f"{strip.name} was made by this add-on; select the source "
                            f"dancer's strip")


def _source_request(request_type, scene, strip, **fields):
    """A ``request_type`` (`Run` or `Preview`) for the frames ``strip`` shows, made straight from
    the strip: its media, frame range, rate and keyed adjustments sampled now.

    Returns the request and the strip's frame mapping (where its result strip is placed). The
    request is the one form the job has until it is sent as JSON; `backend_client` checks it.
    """
    mapping = strip_mapping(scene, strip)
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
    request = request_type(source=path, fps=fps, frame_start=mapping.source_start,
                           frame_stop=mapping.source_stop, adjustments=adjustments,
                           model=_model(scene), source_stats=_stats_override(strip), **fields)
    return request, mapping


def build_job(scene, strip, runner):
    """A retarget job for ``strip`` with everything decided now: frames, adjustments, placement.

    Its result replaces the media of the strip an earlier retarget of ``strip`` made, where
    there is one (see `results`), else it goes on the first free channel above the source.
    """
    _check_source(strip)
    settings = scene.dance
    job_id = new_job_id(strip.name)
    background = "transparent" if settings.background == 'TRANSPARENT' else "target"
    run, mapping = _source_request(
        Run, scene, strip, job_id=job_id, output_dir=str(output_root(scene) / job_id),
        face=settings.use_face, side_by_side=settings.side_by_side, background=background,
        reuse=_earlier_job(scene, strip))
    placement = replace(_placement(scene, strip, mapping, runner, RESULT),
                        transparent=run.background == "transparent")
    return Job(id=job_id, label=strip.name, run=run, placement=placement)


def build_preview_job(scene, strip, runner):
    """A pose-preview job for ``strip``: the stick figure with its current keyed adjustments,
    shown in the strip of its earlier preview (or a new one on a free channel above it)."""
    _check_source(strip)
    job_id = new_job_id(f"{strip.name}-preview")
    preview, mapping = _source_request(
        Preview, scene, strip, job_id=job_id,
        output_dir=str(output_root(scene) / PREVIEWS_FOLDER / job_id),
        frame_format=PREVIEW_FORMAT)
    placement = replace(_placement(scene, strip, mapping, runner, PREVIEW),
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


def _placement(scene, strip, mapping, runner, role):
    """Where the job's strip goes: the earlier one of this role and source, else a free channel."""
    start, end = strip.frame_final_start, strip.frame_final_end
    earlier = made_strip(scene, strip.name, role)
    channel = earlier.channel if earlier is not None else first_free_channel(
        _occupied(scene) + _reserved(runner, scene.name), strip.channel, start, end)
    return Placement(scene=scene.name, channel=channel, frame_start=start,
                     job_frames=mapping.job_frames, name=strip_name(strip.name, role),
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
