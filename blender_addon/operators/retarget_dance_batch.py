"""``sequencer.retarget_dance_batch``: one job per selected strip, run in turn by one worker."""

import bpy
from bpy.props import BoolProperty, StringProperty

from .. import compat, session
from ..strips import SOURCE_TYPES, JobSetupError, build_job
from .render_dance_video import render_video
from .retarget_dance import finish_report


class SEQUENCER_OT_retarget_dance_batch(bpy.types.Operator):
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
            self.report({'ERROR'}, "no job could be made from the selected strips")
            return {'CANCELLED'}
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


def sources(context):
    """Selected movie/image strips that are not results or previews of earlier jobs, in
    timeline order."""
    found = [s for s in compat.selected_strips(context) if s.type in SOURCE_TYPES
             and not (s.dance.is_result or s.dance.is_preview)]
    return sorted(found, key=lambda s: (s.frame_final_start, s.channel))


CLASSES = (SEQUENCER_OT_retarget_dance_batch,)
