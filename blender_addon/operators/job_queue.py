"""``sequencer.dance_cancel_job``: cancel a queued or running retarget job."""

import bpy
from bpy.props import StringProperty

from .. import session


class SEQUENCER_OT_dance_cancel_job(bpy.types.Operator):
    bl_idname = "sequencer.dance_cancel_job"
    bl_label = "Cancel"
    bl_description = "Cancel this job (the running one when none is named)"
    bl_options = {'REGISTER', 'INTERNAL'}

    job_id: StringProperty(options={'HIDDEN'})

    def execute(self, context):
        runner = session.get().runner
        job = runner.queue.get(self.job_id) if self.job_id else runner.queue.running()
        if job is None:
            self.report({'WARNING'}, "no such job")
            return {'CANCELLED'}
        runner.cancel(job.id)
        return {'FINISHED'}


CLASSES = (SEQUENCER_OT_dance_cancel_job,)
