"""``sequencer.dance_remove_job``: drop a job from the queue (or every finished one)."""

import bpy
from bpy.props import StringProperty

from .. import session


class SEQUENCER_OT_dance_remove_job(bpy.types.Operator):
    bl_idname = "sequencer.dance_remove_job"
    bl_label = "Remove"
    bl_description = ("Remove this job from the list (empty: every finished job). Its files and "
                      "strips stay")
    bl_options = {'REGISTER', 'INTERNAL'}

    job_id: StringProperty(options={'HIDDEN'})

    def execute(self, context):
        queue = session.get().runner.queue
        if not self.job_id:
            queue.clear_finished()
            return {'FINISHED'}
        try:
            queue.remove(self.job_id)
        except (KeyError, ValueError) as exc:
            self.report({'WARNING'}, str(exc))
            return {'CANCELLED'}
        return {'FINISHED'}


CLASSES = (SEQUENCER_OT_dance_remove_job,)
