"""``sequencer.dance_resume_training``: continue a stopped, cancelled or failed training run."""

from pathlib import Path

import bpy
from bpy.props import IntProperty

from .. import compat
from ..core import training_runs
from .train_from_strip import start_training


class SEQUENCER_OT_dance_resume_training(bpy.types.Operator):
    bl_idname = "sequencer.dance_resume_training"
    bl_label = "Resume Training"
    bl_description = "Continue this training run from its last checkpoint"
    bl_options = {'REGISTER', 'INTERNAL'}

    index: IntProperty(options={'HIDDEN'})

    def execute(self, context):
        runs = compat.sequencer_scene(context).dance.training_runs
        if not 0 <= self.index < len(runs):
            return {'CANCELLED'}
        run_dir = Path(runs[self.index].run_dir)
        if training_runs.read_status(run_dir).state == "running":
            self.report({'WARNING'}, "this run is still running")
            return {'CANCELLED'}
        try:
            start_training(context, training_runs.request_from_record(run_dir), resume=True)
        except (OSError, ValueError, KeyError, RuntimeError) as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        return {'FINISHED'}


CLASSES = (SEQUENCER_OT_dance_resume_training,)
