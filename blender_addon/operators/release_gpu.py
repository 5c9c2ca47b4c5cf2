"""``sequencer.dance_release_gpu``: stop the backend worker, freeing its GPU memory."""

import bpy

from .. import session


class SEQUENCER_OT_dance_release_gpu(bpy.types.Operator):
    bl_idname = "sequencer.dance_release_gpu"
    bl_label = "Release GPU"
    bl_description = ("Stop the backend worker and free the memory of its loaded model (a "
                      "running job is cancelled; the next job starts a new worker)")
    bl_options = {'REGISTER'}

    def execute(self, context):
        runner = session.get().runner
        was_running = runner.worker_running
        runner.release()
        self.report({'INFO'}, "backend worker stopped" if was_running else "no worker was running")
        return {'FINISHED'}


CLASSES = (SEQUENCER_OT_dance_release_gpu,)
