"""``sequencer.dance_use_model``: pick the demo performer or a trained run's model."""

import bpy
from bpy.props import StringProperty

from .. import compat


class SEQUENCER_OT_dance_use_model(bpy.types.Operator):
    bl_idname = "sequencer.dance_use_model"
    bl_label = "Use Model"
    bl_description = "Retarget with this model (empty: the built-in demo performer)"
    bl_options = {'REGISTER', 'UNDO', 'INTERNAL'}

    folder: StringProperty(options={'HIDDEN'})

    def execute(self, context):
        compat.sequencer_scene(context).dance.model_path = self.folder
        return {'FINISHED'}


CLASSES = (SEQUENCER_OT_dance_use_model,)
