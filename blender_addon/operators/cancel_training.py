"""``sequencer.dance_cancel_training``: stop a training run (it checkpoints first)."""

from pathlib import Path

import bpy
from bpy.props import IntProperty

from .. import compat, session
from ..core import training_runs


class SEQUENCER_OT_dance_cancel_training(bpy.types.Operator):
    bl_idname = "sequencer.dance_cancel_training"
    bl_label = "Cancel Training"
    bl_description = "Stop this training run after saving a checkpoint (Resume continues it)"
    bl_options = {'REGISTER', 'INTERNAL'}

    index: IntProperty(options={'HIDDEN'})

    def execute(self, context):
        runs = compat.sequencer_scene(context).dance.training_runs
        if not 0 <= self.index < len(runs):
            return {'CANCELLED'}
        if not training_runs.cancel(Path(runs[self.index].run_dir)):
            self.report({'WARNING'}, "this run is not running")
        session.get().forget_training_cache()
        return {'FINISHED'}


CLASSES = (SEQUENCER_OT_dance_cancel_training,)
