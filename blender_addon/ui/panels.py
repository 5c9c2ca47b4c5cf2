"""The "Dance" tab in the sequencer's sidebar: Model, Retarget, Queue, Backend.

Panels only read state (the session's job queue, the set-up task, cached training status) and
call operators; nothing here changes data.
"""

from pathlib import Path

import bpy

from .. import compat, session
from ..core import locations
from ..core.bundles import read_bundle_info
from ..core.job_queue import JobState

JOB_ICONS = {JobState.PENDING: 'SORTTIME', JobState.RUNNING: 'PLAY', JobState.DONE: 'CHECKMARK',
             JobState.FAILED: 'ERROR', JobState.CANCELLED: 'CANCEL'}


class _DancePanel:
    bl_space_type = 'SEQUENCE_EDITOR'
    bl_region_type = 'UI'
    bl_category = "Dance"

    @classmethod
    def poll(cls, context):
        return compat.sequencer_scene(context) is not None


class DANCE_PT_model(_DancePanel, bpy.types.Panel):
    bl_label = "Model"
    bl_order = 0

    def draw(self, context):
        layout = self.layout
        settings = compat.sequencer_scene(context).dance
        demo = locations.demo_bundle()
        row = layout.row(align=True)
        row.prop(settings, "model_path", text="")
        if demo is not None:
            row.operator("sequencer.dance_use_model", text="", icon='ARMATURE_DATA').folder = ""
        path = settings.model_path.strip()
        if not path:
            if demo is not None:
                layout.label(text="Demo performer (built in)", icon='ARMATURE_DATA')
            else:
                layout.label(text="Choose a model bundle folder", icon='INFO')
            return
        try:
            layout.label(text=read_bundle_info(compat.abspath(path)).summary(), icon='CHECKMARK')
        except ValueError as exc:
            layout.label(text=str(exc), icon='ERROR')


class DANCE_PT_training(_DancePanel, bpy.types.Panel):
    bl_label = "Train a New Model"
    bl_parent_id = "DANCE_PT_model"
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        layout = self.layout
        settings = compat.sequencer_scene(context).dance
        col = layout.column(align=True)
        col.prop(settings, "train_name")
        col.prop(settings, "train_preset")
        col.prop(settings, "train_perceptual")
        layout.operator("sequencer.dance_train_from_strip", icon='OUTLINER_OB_ARMATURE')
        state = session.get()
        for index, run in enumerate(settings.training_runs):
            status = state.training_status(run.run_dir)
            box = layout.box()
            header = box.row()
            header.label(text=run.name, icon='FILE_FOLDER')
            header.operator("sequencer.dance_forget_training", text="", icon='X').index = index
            if status.state == "running":
                compat.draw_progress(box, status.progress, status.summary())
                box.operator("sequencer.dance_cancel_training", icon='CANCEL').index = index
            else:
                box.label(text=status.summary())
            if status.can_resume:
                box.operator("sequencer.dance_resume_training", icon='PLAY').index = index
            if status.state == "done" and status.bundle:
                op = box.operator("sequencer.dance_use_model", text="Use This Model",
                                  icon='CHECKMARK')
                op.folder = status.bundle


class DANCE_PT_retarget(_DancePanel, bpy.types.Panel):
    bl_label = "Retarget"
    bl_order = 1

    def draw(self, context):
        layout = self.layout
        scene = compat.sequencer_scene(context)
        strip = compat.active_strip(context)
        if strip is None or strip.type not in {'MOVIE', 'IMAGE'} or strip.dance.is_result \
                or strip.dance.is_preview:
            layout.label(text="Select the source dancer's strip", icon='INFO')
        else:
            layout.label(text=strip.name, icon='SEQUENCE')
            col = layout.column()
            col.use_property_split = True
            col.use_property_decorate = True  # the keyframe buttons
            col.prop(strip, "dance_scale")
            col.prop(strip, "dance_offset_x")
            col.prop(strip, "dance_offset_y")
            col.prop(strip.dance, "override_stats")
            sub = col.column()
            sub.active = strip.dance.override_stats
            sub.prop(strip.dance, "stats_path")
        row = layout.row(align=True)
        row.prop(scene.dance, "use_face", toggle=True)
        row.prop(scene.dance, "side_by_side", toggle=True)
        layout.prop(scene.dance, "background")
        layout.prop(scene.dance, "output_dir")
        layout.operator("sequencer.preview_dance_poses", icon='HIDE_OFF')
        col = layout.column(align=True)
        col.scale_y = 1.4
        col.operator("sequencer.retarget_dance", icon='PLAY')
        layout.operator("sequencer.retarget_dance_batch", icon='SEQ_STRIP_DUPLICATE')
        running = session.get().runner.queue.running()
        if running is not None:
            row = layout.row(align=True)
            compat.draw_progress(row, running.progress, f"{running.label}: {running.status_text()}")
            row.operator("sequencer.dance_cancel_job", text="", icon='CANCEL').job_id = running.id


class DANCE_PT_queue(_DancePanel, bpy.types.Panel):
    bl_label = "Queue"
    bl_order = 2

    def draw(self, context):
        layout = self.layout
        queue = session.get().runner.queue
        if not queue.jobs:
            layout.label(text="No jobs yet")
        for job in queue.jobs:
            box = layout.box()
            row = box.row(align=True)
            row.label(text=job.label, icon=JOB_ICONS[job.state])
            if job.state in (JobState.PENDING, JobState.RUNNING):
                row.operator("sequencer.dance_cancel_job", text="", icon='CANCEL').job_id = job.id
            if job.state in (JobState.FAILED, JobState.CANCELLED):
                retry = row.operator("sequencer.dance_retry_job", text="", icon='FILE_REFRESH')
                retry.job_id = job.id
            if job.state.finished:
                row.operator("sequencer.dance_remove_job", text="", icon='X').job_id = job.id
            if job.state is JobState.RUNNING:
                compat.draw_progress(box, job.progress, job.status_text())
            else:
                _wrapped_label(box, job.status_text())
        if any(j.state.finished for j in queue.jobs):
            layout.operator("sequencer.dance_remove_job", text="Clear Finished").job_id = ""
        if any(j.placed for j in queue.jobs) and not queue.active():
            row = layout.row(align=True)
            row.prop(compat.sequencer_scene(context).dance, "render_path", text="")
            row.operator("sequencer.dance_render_video", text="Render", icon='RENDER_ANIMATION')


class DANCE_PT_backend(_DancePanel, bpy.types.Panel):
    bl_label = "Backend"
    bl_order = 3
    bl_options = {'DEFAULT_CLOSED'}

    def draw(self, context):
        layout = self.layout
        state = session.get()
        python, origin = session.backend_python()
        col = layout.column(align=True)
        col.label(text=f"Python ({origin}):")
        col.label(text=str(python) if python else "none: press Set Up Backend",
                  icon='CHECKMARK' if python and Path(python).is_file() else 'ERROR')
        hello = state.runner.hello
        runner = state.runner
        box = layout.box()
        box.label(text="Worker: running" if runner.worker_running else "Worker: stopped",
                  icon='PLAY' if runner.worker_running else 'PAUSE')
        if hello is not None:
            box.label(text=f"backend {hello.backend_version}, Python {hello.python}")
            box.label(text=f"torch {hello.torch}, mediapipe {hello.mediapipe}")
            device = hello.device if not hello.gpu_name else f"{hello.device}: {hello.gpu_name}"
            box.label(text=device, icon='MEMORY')
            if hello.gpu_memory_total_mb:
                box.label(text=f"GPU memory {hello.gpu_memory_free_mb or 0} MB free of "
                               f"{hello.gpu_memory_total_mb} MB")
        if runner.last_error:
            _wrapped_label(box, runner.last_error, icon='ERROR')
        setup = state.setup
        if setup is not None and setup.state == "running":
            box = layout.box()
            box.label(text=setup.title, icon='TIME')
            _wrapped_label(box, setup.last_line[-120:])
            box.operator("sequencer.dance_cancel_setup", icon='CANCEL')
        else:
            layout.operator("sequencer.dance_setup_backend", icon='CONSOLE')
            if setup is not None and setup.state in ("failed", "cancelled"):
                _wrapped_label(layout, setup.error, icon='ERROR')
            elif setup is not None and setup.state == "done":
                layout.label(text="Backend environment ready", icon='CHECKMARK')
        layout.operator("sequencer.dance_release_gpu", icon='UNLINKED')


def _wrapped_label(layout, text, icon='NONE', width=48):
    """A long message over several lines (labels do not wrap)."""
    col = layout.column(align=True)
    words, line = text.split(), ""
    lines = []
    for word in words:
        if line and len(line) + 1 + len(word) > width:
            lines.append(line)
            line = word
        else:
            line = f"{line} {word}" if line else word
    lines.append(line)
    for i, part in enumerate(lines[:6]):
        col.label(text=part, icon=icon if i == 0 else 'NONE')


CLASSES = (DANCE_PT_model, DANCE_PT_training, DANCE_PT_retarget, DANCE_PT_queue,
           DANCE_PT_backend)
