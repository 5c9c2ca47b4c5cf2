"""``sequencer.retarget_dance``: the active strip's dancer performed by the model's person."""

import bpy

from .. import compat, session
from ..strips import SOURCE_TYPES, JobSetupError, build_job


def source_strip_poll(cls, context):
    """An active movie or image strip that is not itself a result or a preview."""
    strip = compat.active_strip(context)
    if strip is None or strip.type not in SOURCE_TYPES:
        cls.poll_message_set("Select a movie or image strip (the source dancer)")
        return False
    if strip.dance.is_result or strip.dance.is_preview:
        cls.poll_message_set("This strip was made by the add-on: select the source dancer's strip")
        return False
    return True


class SEQUENCER_OT_retarget_dance(bpy.types.Operator):
    bl_idname = "sequencer.retarget_dance"
    bl_label = "Retarget Dance"
    bl_description = ("Make the model's person perform the dance in the active strip. The result "
                      "appears as an image strip above it (run again, the same strip gets the "
                      "new frames); the source strip is not changed")
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context):
        return source_strip_poll(cls, context)

    def execute(self, context):
        return submit_job(self, context, build_job, "Retargeting")


def submit_job(operator, context, build, doing):
    """Queue the job ``build(scene, active strip, runner)`` makes; in background mode run it
    (no timers there) and place its strip before returning."""
    scene = compat.sequencer_scene(context)
    runner = session.get().runner
    try:
        job = build(scene, compat.active_strip(context), runner)
    except JobSetupError as exc:
        operator.report({'ERROR'}, str(exc))
        return {'CANCELLED'}
    runner.submit(job)
    if not bpy.app.background:
        session.start_timer()
        operator.report({'INFO'}, f"{doing} {job.label}: follow it in the Dance tab")
        return {'FINISHED'}
    session.run_jobs_now()
    return finish_report(operator, [job])


def finish_report(operator, jobs):
    """Report how background-mode jobs ended; an error makes the calling script fail."""
    failed = [j for j in jobs if not j.placed]
    for job in failed:
        operator.report({'ERROR'}, f"{job.label}: {job.status_text()} {job.message}".strip())
    done = len(jobs) - len(failed)
    if done:
        operator.report({'INFO'}, f"{done} strip(s) placed")
    return {'FINISHED'} if done else {'CANCELLED'}


CLASSES = (SEQUENCER_OT_retarget_dance,)
