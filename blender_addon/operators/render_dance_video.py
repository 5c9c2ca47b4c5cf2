"""``sequencer.dance_render_video``: render the sequencer (with the new strips) to a video."""

import os

import bpy
from bpy.props import StringProperty

from .. import compat


def render_video(scene, filepath):
    """Render ``scene``'s sequencer to an MP4 at ``filepath`` (blocking); returns the path."""
    path = compat.abspath(filepath)
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    compat.set_video_output(scene, path)
    bpy.ops.render.render(animation=True, scene=scene.name)
    return path


class SEQUENCER_OT_dance_render_video(bpy.types.Operator):
    bl_idname = "sequencer.dance_render_video"
    bl_label = "Render Video"
    bl_description = "Render the sequencer (with the dance strips) to an H.264 video file"
    bl_options = {'REGISTER'}

    filepath: StringProperty(name="Video", subtype='FILE_PATH', default="")

    def execute(self, context):
        scene = compat.sequencer_scene(context)
        filepath = self.filepath or scene.dance.render_path
        if bpy.app.background:
            self.report({'INFO'}, f"rendered {render_video(scene, filepath)}")
            return {'FINISHED'}
        path = compat.abspath(filepath)
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        compat.set_video_output(scene, path)
        # The render window shows the progress and keeps Blender responsive.
        bpy.ops.render.render('INVOKE_DEFAULT', animation=True, scene=scene.name)
        return {'FINISHED'}


CLASSES = (SEQUENCER_OT_dance_render_video,)
