"""``sequencer.dance_resume_training``: continue a stopped, cancelled or failed training run."""

import bpy
from bpy.props import IntProperty

from ..core import training_runs
from .listed_runs import listed_run
from .train_from_strip import start_training


class SEQUENCER_OT_dance_resume_training(bpy.types.Operator):
    bl_idname = "sequencer.dance_resume_training"
    bl_label = "Resume Training"
    bl_description = "Continue this training run from its last checkpoint"
    bl_options = {'REGISTER', 'INTERNAL'}

    index: IntProperty(options={'HIDDEN'})

    def execute(self, context):
        run_dir = listed_run(context, self.index)
        if run_dir is None:
            return {'CANCELLED'}
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
