"""``sequencer.dance_train_from_strip``: train a new model on the person in the active strip.

Training runs as a detached process (``core/train_pipeline.py`` with the backend's Python)
that outlives Blender; the Model panel follows its status files and can cancel and resume it.
"""

import re
from pathlib import Path

import bpy

from .. import compat, preferences, session
from ..core import locations, training_runs
from ..core.frame_map import StripMappingError, map_strip
from ..strips import JobSetupError, strip_timing
from .retarget_dance import source_strip_poll


def new_run_dir(name):
    """A new folder for the run under the add-on's user folder."""
    base = compat.user_dir() / "training"
    slug = re.sub(r"[^A-Za-z0-9_-]+", "-", name).strip("-") or "model"
    folder, n = base / slug, 2
    while folder.exists():
        folder, n = base / f"{slug}-{n}", n + 1
    return folder


def start_training(context, request, resume=False):
    """Launch the pipeline; raises RuntimeError with a message for the user."""
    python, origin = session.backend_python()
    root = locations.backend_root()
    if python is None or not python.is_file():
        raise RuntimeError("no backend Python: press Set Up Backend first")
    if root is None:
        raise RuntimeError("the bundled backend is missing from the add-on")
    process = training_runs.launch(python, root, request, resume=resume)
    state = session.get()
    state.training_processes[str(request.run_dir)] = process
    state.forget_training_cache()
    session.start_timer()
    return process


class SEQUENCER_OT_dance_train_from_strip(bpy.types.Operator):
    bl_idname = "sequencer.dance_train_from_strip"
    bl_label = "Train from Active Strip"
    bl_description = ("Train a new model of the person in the active strip (a few minutes of "
                      "them moving freely). Runs in the background and survives closing Blender")
    bl_options = {'REGISTER'}

    @classmethod
    def poll(cls, context):
        return source_strip_poll(cls, context)

    def execute(self, context):
        scene = compat.sequencer_scene(context)
        strip = compat.active_strip(context)
        settings = scene.dance
        if strip.type != 'MOVIE':
            self.report({'ERROR'}, "training needs a movie strip of the target person")
            return {'CANCELLED'}
        try:
            mapping = map_strip(strip_timing(scene, strip))
            request = training_runs.TrainingRequest(
                run_dir=new_run_dir(settings.train_name), name=settings.train_name,
                video=Path(compat.abspath(strip.filepath, strip.id_data)),
                preset=settings.train_preset, start=mapping.source_start, stop=mapping.source_stop,
                train_args=training_runs.training_options(
                    settings.train_perceptual, preferences.get(context).vgg_weights))
            start_training(context, request)
        except (JobSetupError, StripMappingError, ValueError, RuntimeError, OSError) as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        entry = settings.training_runs.add()
        entry.name, entry.video = request.name, str(request.video)
        entry.run_dir = str(request.run_dir)
        settings.active_training = len(settings.training_runs) - 1
        self.report({'INFO'}, f"Training {request.name} in {request.run_dir}")
        return {'FINISHED'}


CLASSES = (SEQUENCER_OT_dance_train_from_strip,)
