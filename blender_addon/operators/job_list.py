"""The job list's buttons: cancel, retry or remove a job (``sequencer.dance_cancel_job``,
``dance_retry_job``, ``dance_remove_job``)."""

from .. import session
from .base import JobRowOperator, run_queued_jobs


class SEQUENCER_OT_dance_cancel_job(JobRowOperator):
    bl_idname = "sequencer.dance_cancel_job"
    bl_label = "Cancel"
    bl_description = "Cancel this job (the running one when none is named)"

    def execute(self, context):
        runner = session.get().runner
        job = runner.queue.get(self.job_id) if self.job_id else runner.queue.running()
        if job is None:
            return self.refuse("no such job", 'WARNING')
        runner.cancel(job.id)
        return {'FINISHED'}


class SEQUENCER_OT_dance_retry_job(JobRowOperator):
    bl_idname = "sequencer.dance_retry_job"
    bl_label = "Retry"
    bl_description = "Run this job again (frames already made are kept)"

    def execute(self, context):
        try:
            session.get().runner.queue.retry(self.job_id)
        except (KeyError, ValueError) as exc:
            return self.refuse(exc, 'WARNING')
        run_queued_jobs()
        return {'FINISHED'}


class SEQUENCER_OT_dance_remove_job(JobRowOperator):
    bl_idname = "sequencer.dance_remove_job"
    bl_label = "Remove"
    bl_description = ("Remove this job from the list (empty: every finished job). Its files and "
                      "strips stay")

    def execute(self, context):
        queue = session.get().runner.queue
        if not self.job_id:
            queue.clear_finished()
            return {'FINISHED'}
        try:
            queue.remove(self.job_id)
        except (KeyError, ValueError) as exc:
            return self.refuse(exc, 'WARNING')
        return {'FINISHED'}


CLASSES = (SEQUENCER_OT_dance_cancel_job, SEQUENCER_OT_dance_retry_job,
           SEQUENCER_OT_dance_remove_job)
