"""The Model panel's buttons: train a model on the active strip, cancel, resume or forget a run,
use a model (``sequencer.dance_train_from_strip``, ``dance_cancel_training``,
``dance_resume_training``, ``dance_forget_training``, ``dance_use_model``).

Training runs as a detached process (``core/train_pipeline.py`` with the backend's Python)
that outlives Blender; the Model panel follows its status files and can cancel and resume it.
"""

import re
from pathlib import Path

from bpy.props import StringProperty

from .. import compat, preferences, session
from ..core import locations, training_runs
from ..strips import JobSetupError, strip_mapping
from .base import DanceOperator, RunRowOperator
from .retarget import source_strip_poll


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


class SEQUENCER_OT_dance_train_from_strip(DanceOperator):
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
            return self.refuse("training needs a movie strip of the target person")
        try:
            mapping = strip_mapping(scene, strip)
            request = training_runs.TrainingRequest(
                run_dir=new_run_dir(settings.train_name), name=settings.train_name,
                video=Path(compat.abspath(strip.filepath, strip.id_data)),
                preset=settings.train_preset, start=mapping.source_start, stop=mapping.source_stop,
                train_args=training_runs.training_options(
                    settings.train_perceptual, preferences.get(context).vgg_weights))
            start_training(context, request)
        except (JobSetupError, ValueError, RuntimeError, OSError) as exc:
            return self.refuse(exc)
        entry = settings.training_runs.add()
        entry.name, entry.video = request.name, str(request.video)
        entry.run_dir = str(request.run_dir)
        settings.active_training = len(settings.training_runs) - 1
        self.report({'INFO'}, f"Training {request.name} in {request.run_dir}")
        return {'FINISHED'}


class SEQUENCER_OT_dance_cancel_training(RunRowOperator):
    bl_idname = "sequencer.dance_cancel_training"
    bl_label = "Cancel Training"
    bl_description = "Stop this training run after saving a checkpoint (Resume continues it)"

    def execute_on(self, context, run_dir):
        if not training_runs.cancel(run_dir):
            self.report({'WARNING'}, "this run is not running")
        session.get().forget_training_cache()
        return {'FINISHED'}


class SEQUENCER_OT_dance_resume_training(RunRowOperator):
    """Continue a stopped, cancelled or failed training run."""

    bl_idname = "sequencer.dance_resume_training"
    bl_label = "Resume Training"
    bl_description = "Continue this training run from its last checkpoint"

    def execute_on(self, context, run_dir):
        if training_runs.read_status(run_dir).state == "running":
            return self.refuse("this run is still running", 'WARNING')
        try:
            start_training(context, training_runs.request_from_record(run_dir), resume=True)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            return self.refuse(exc)
        return {'FINISHED'}


class SEQUENCER_OT_dance_forget_training(RunRowOperator):
    """Take a training run off the list (its folder stays)."""

    bl_idname = "sequencer.dance_forget_training"
    bl_label = "Remove from List"
    bl_description = "Remove this run from the list; its folder and model stay on disk"
    bl_options = {'REGISTER', 'UNDO', 'INTERNAL'}

    def execute(self, context):
        settings = compat.sequencer_scene(context).dance
        if 0 <= self.index < len(settings.training_runs):
            settings.training_runs.remove(self.index)
            settings.active_training = max(0, min(settings.active_training,
                                                  len(settings.training_runs) - 1))
        return {'FINISHED'}


class SEQUENCER_OT_dance_use_model(DanceOperator):
    """Pick the demo performer or a trained run's model."""

    bl_idname = "sequencer.dance_use_model"
    bl_label = "Use Model"
    bl_description = "Retarget with this model (empty: the built-in demo performer)"
    bl_options = {'REGISTER', 'UNDO', 'INTERNAL'}

    folder: StringProperty(options={'HIDDEN'})

    def execute(self, context):
        compat.sequencer_scene(context).dance.model_path = self.folder
        return {'FINISHED'}


CLASSES = (SEQUENCER_OT_dance_train_from_strip, SEQUENCER_OT_dance_cancel_training,
           SEQUENCER_OT_dance_resume_training, SEQUENCER_OT_dance_forget_training,
           SEQUENCER_OT_dance_use_model)
