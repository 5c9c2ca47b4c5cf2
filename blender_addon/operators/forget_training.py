"""``sequencer.dance_forget_training``: take a training run off the list (its folder stays)."""

import bpy
from bpy.props import IntProperty

from .. import compat


class SEQUENCER_OT_dance_forget_training(bpy.types.Operator):
    bl_idname = "sequencer.dance_forget_training"
    bl_label = "Remove from List"
    bl_description = "Remove this run from the list; its folder and model stay on disk"
    bl_options = {'REGISTER', 'UNDO', 'INTERNAL'}

    index: IntProperty(options={'HIDDEN'})

    def execute(self, context):
        settings = compat.sequencer_scene(context).dance
        if 0 <= self.index < len(settings.training_runs):
            settings.training_runs.remove(self.index)
            settings.active_training = max(0, min(settings.active_training,
                                                  len(settings.training_runs) - 1))
        return {'FINISHED'}


CLASSES = (SEQUENCER_OT_dance_forget_training,)
