"""Rendering the sequencer (with the new strips) to a video (``sequencer.dance_render_video``).

Pose-preview strips are for the editor's eyes only: they are muted while the video renders
and shown again afterwards.
"""

import os

import bpy
from bpy.props import StringProperty

from .. import compat
from .base import DanceOperator


def render_video(scene, filepath):
    """Render ``scene``'s sequencer to an MP4 at ``filepath`` (blocking); returns the path."""
    path = _set_output(scene, filepath)
    muted = mute_previews(scene)
    try:
        bpy.ops.render.render(animation=True, scene=scene.name)
    finally:
        unmute(scene.name, muted)
    return path


def _set_output(scene, filepath):
    path = compat.abspath(filepath)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    compat.set_video_output(scene, path)
    return path


def mute_previews(scene):
    """Mute the scene's shown preview strips; returns their names (for `unmute`)."""
    ed = compat.editor(scene)
    shown = [] if ed is None else [s for s in compat.all_strips(ed)
                                   if s.dance.is_preview and not s.mute]
    for strip in shown:
        strip.mute = True
    return [strip.name for strip in shown]


def unmute(scene_name, names):
    """Show the strips `mute_previews` muted again (found by name: undo may have run)."""
    scene = bpy.data.scenes.get(scene_name)
    for name in names:
        strip = compat.find_strip(scene, name) if scene is not None else None
        if strip is not None:
            strip.mute = False


def _unmute_after_render(scene_name, names):
    """Unmute when the render started with INVOKE_DEFAULT ends (done or cancelled).

    Render handlers may run on the render thread, so they only ask a timer (main thread) to
    restore the strips and to remove the handlers.
    """
    events = (bpy.app.handlers.render_complete, bpy.app.handlers.render_cancel)

    def restore():
        for handlers in events:
            if ended in handlers:
                handlers.remove(ended)
        unmute(scene_name, names)

    def ended(*_args):
        bpy.app.timers.register(restore, first_interval=0.0)

    for handlers in events:
        handlers.append(ended)
    return restore


class SEQUENCER_OT_dance_render_video(DanceOperator):
    bl_idname = "sequencer.dance_render_video"
    bl_label = "Render Video"
    bl_description = ("Render the sequencer (with the dance strips, without pose previews) to an "
                      "H.264 video file")
    bl_options = {'REGISTER'}

    filepath: StringProperty(name="Video", subtype='FILE_PATH', default="")

    def execute(self, context):
        scene = compat.sequencer_scene(context)
        filepath = self.filepath or scene.dance.render_path
        if bpy.app.background:
            self.report({'INFO'}, f"rendered {render_video(scene, filepath)}")
            return {'FINISHED'}
        _set_output(scene, filepath)
        restore = _unmute_after_render(scene.name, mute_previews(scene))
        # The render window shows the progress and keeps Blender responsive.
        started = bpy.ops.render.render('INVOKE_DEFAULT', animation=True, scene=scene.name)
        if 'CANCELLED' in started:
            restore()
        return {'FINISHED'}


CLASSES = (SEQUENCER_OT_dance_render_video,)
