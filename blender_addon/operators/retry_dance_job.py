"""``sequencer.dance_retry_job``: queue a failed or cancelled job again."""

import bpy
from bpy.props import StringProperty

from .. import session


class SEQUENCER_OT_dance_retry_job(bpy.types.Operator):
    bl_idname = "sequencer.dance_retry_job"
    bl_label = "Retry"
    bl_description = "Run this job again (frames already made are kept)"
    bl_options = {'REGISTER', 'INTERNAL'}

    job_id: StringProperty(options={'HIDDEN'})

    def execute(self, context):
        try:
            session.get().runner.queue.retry(self.job_id)
        except (KeyError, ValueError) as exc:
            self.report({'WARNING'}, str(exc))
            return {'CANCELLED'}
        if bpy.app.background:
            session.run_jobs_now()
        else:
            session.start_timer()
        return {'FINISHED'}


CLASSES = (SEQUENCER_OT_dance_retry_job,)
