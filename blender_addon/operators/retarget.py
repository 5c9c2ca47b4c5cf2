"""Making strips from the active or selected source strips: retarget, retarget a batch, preview
the poses first (``sequencer.retarget_dance``, ``retarget_dance_batch``, ``preview_dance_poses``)."""

import bpy
from bpy.props import BoolProperty, StringProperty

from .. import compat, session
from ..strips import SOURCE_TYPES, JobSetupError, build_job, build_preview_job
from .base import DanceOperator
from .render import render_video


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


def submit_job(operator, context, build, doing):
    """Queue the job ``build(scene, active strip, runner)`` makes; in background mode run it
    (no timers there) and place its strip before returning."""
    scene = compat.sequencer_scene(context)
    runner = session.get().runner
    try:
        job = build(scene, compat.active_strip(context), runner)
    except JobSetupError as exc:
        return operator.refuse(exc)
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


def sources(context):
    """Selected movie/image strips that are not results or previews of earlier jobs, in
    timeline order."""
    found = [s for s in compat.selected_strips(context) if s.type in SOURCE_TYPES
             and not (s.dance.is_result or s.dance.is_preview)]
    return sorted(found, key=lambda s: (s.frame_final_start, s.channel))


class SourceStripOperator(DanceOperator):
    """An operator on the active source strip (see `source_strip_poll`) that queues the job
    ``build`` makes of it (never registered itself)."""

    bl_options = {'REGISTER', 'UNDO'}
    doing = ""  # the word for the job in its report: "Retargeting", ...

    @classmethod
    def poll(cls, context):
        return source_strip_poll(cls, context)

    @staticmethod
    def build(scene, strip, runner):
        raise NotImplementedError

    def execute(self, context):
        return submit_job(self, context, self.build, self.doing)


class SEQUENCER_OT_retarget_dance(SourceStripOperator):
    bl_idname = "sequencer.retarget_dance"
    bl_label = "Retarget Dance"
    bl_description = ("Make the model's person perform the dance in the active strip. The result "
                      "appears as an image strip above it (run again, the same strip gets the "
                      "new frames); the source strip is not changed")
    build = staticmethod(build_job)
    doing = "Retargeting"


class SEQUENCER_OT_retarget_dance_batch(DanceOperator):
    bl_idname = "sequencer.retarget_dance_batch"
    bl_label = "Retarget Selected"
    bl_description = ("Retarget every selected movie or image strip, one after another, with the "
                      "model kept loaded between them")
    bl_options = {'REGISTER', 'UNDO'}

    render: BoolProperty(
        name="Render Video After", default=False,
        description="Background mode: render the sequencer to a video once every job is done")
    filepath: StringProperty(
        name="Video", subtype='FILE_PATH', default="",
        description="The video to render (empty: the scene's Dance render path)")

    @classmethod
    def poll(cls, context):
        if not sources(context):
            cls.poll_message_set("Select movie or image strips (the source dancers)")
            return False
        return True

    def execute(self, context):
        scene = compat.sequencer_scene(context)
        runner = session.get().runner
        jobs = []
        for strip in sources(context):
            try:
                jobs.append(runner.submit(build_job(scene, strip, runner)))
            except JobSetupError as exc:
                self.report({'WARNING'}, str(exc))
        if not jobs:
            return self.refuse("no job could be made from the selected strips")
        if not bpy.app.background:
            session.start_timer()
            self.report({'INFO'}, f"{len(jobs)} retarget job(s) queued")
            return {'FINISHED'}
        session.run_jobs_now()
        result = finish_report(self, jobs)
        if self.render and result == {'FINISHED'}:
            path = render_video(scene, self.filepath or scene.dance.render_path)
            self.report({'INFO'}, f"rendered {path}")
        return result


class SEQUENCER_OT_preview_dance_poses(SourceStripOperator):
    bl_idname = "sequencer.preview_dance_poses"
    bl_label = "Preview Poses"
    bl_description = ("Show the normalized stick figure of the active strip's dancer, with its "
                      "current (keyed) scale and offsets, over the model's target background: a "
                      "preview strip above it, updated in place when run again. Batch "
                      "retargeting and rendering skip it")
    build = staticmethod(build_preview_job)
    doing = "Previewing"


CLASSES = (SEQUENCER_OT_retarget_dance, SEQUENCER_OT_retarget_dance_batch,
           SEQUENCER_OT_preview_dance_poses)
