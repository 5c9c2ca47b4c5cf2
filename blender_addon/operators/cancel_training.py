"""``sequencer.dance_cancel_training``: stop a training run (it checkpoints first)."""

import bpy
from bpy.props import IntProperty

from .. import session
from ..core import training_runs
from .listed_runs import listed_run


class SEQUENCER_OT_dance_cancel_training(bpy.types.Operator):
    bl_idname = "sequencer.dance_cancel_training"
    bl_label = "Cancel Training"
    bl_description = "Stop this training run after saving a checkpoint (Resume continues it)"
    bl_options = {'REGISTER', 'INTERNAL'}

    index: IntProperty(options={'HIDDEN'})

    def execute(self, context):
        run_dir = listed_run(context, self.index)
        if run_dir is None:
            return {'CANCELLED'}
        if not training_runs.cancel(run_dir):
            self.report({'WARNING'}, "this run is not running")
        session.get().forget_training_cache()
        return {'FINISHED'}


CLASSES = (SEQUENCER_OT_dance_cancel_training,)
