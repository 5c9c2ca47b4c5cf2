"""``sequencer.dance_cancel_setup``: stop a running "Set Up Backend"."""

import bpy

from .. import session


class SEQUENCER_OT_dance_cancel_setup(bpy.types.Operator):
    bl_idname = "sequencer.dance_cancel_setup"
    bl_label = "Cancel Set-Up"
    bl_description = "Stop installing the backend (what is installed so far stays)"
    bl_options = {'REGISTER', 'INTERNAL'}

    def execute(self, context):
        setup = session.get().setup
        if setup is not None and setup.state == "running":
            setup.cancel()
        return {'FINISHED'}


CLASSES = (SEQUENCER_OT_dance_cancel_setup,)
