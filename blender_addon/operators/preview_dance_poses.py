"""``sequencer.preview_dance_poses``: the stick figure the model will be given, shown first."""

import bpy

from ..strips import build_preview_job
from .retarget_dance import source_strip_poll, submit_job


class SEQUENCER_OT_preview_dance_poses(bpy.types.Operator):
    bl_idname = "sequencer.preview_dance_poses"
    bl_label = "Preview Poses"
    bl_description = ("Show the normalized stick figure of the active strip's dancer, with its "
                      "current (keyed) scale and offsets, over the model's target background: a "
                      "preview strip above it, updated in place when run again. Batch "
                      "retargeting and rendering skip it")
    bl_options = {'REGISTER', 'UNDO'}

    @classmethod
    def poll(cls, context):
        return source_strip_poll(cls, context)

    def execute(self, context):
        return submit_job(self, context, build_preview_job, "Previewing")


CLASSES = (SEQUENCER_OT_preview_dance_poses,)
