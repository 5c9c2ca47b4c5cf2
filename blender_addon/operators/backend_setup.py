"""``sequencer.dance_setup_backend``: make a virtual environment with the backend's requirements.

The work runs in a background thread (never on Blender's main thread, never in Blender's own
Python); the Backend panel shows each step and the last line of output, and the full log
stays in the add-on's user folder as the failure report.
"""

from pathlib import Path

import bpy

from .. import compat, preferences, session
from ..core import locations, venv_setup


def base_python(prefs):
    """The Python to build the environment with: the preference, else Blender's own."""
    if prefs.setup_python.strip():
        return Path(prefs.setup_python.strip()).expanduser()
    return locations.blender_python()


class SEQUENCER_OT_dance_setup_backend(bpy.types.Operator):
    bl_idname = "sequencer.dance_setup_backend"
    bl_label = "Set Up Backend"
    bl_description = ("Create a Python environment in the add-on's user folder and install the "
                      "backend's requirements (PyTorch, MediaPipe, ...; several GB to download)")
    bl_options = {'REGISTER'}

    @classmethod
    def poll(cls, context):
        setup = session.get().setup
        if setup is not None and setup.state == "running":
            cls.poll_message_set("The set-up is running")
            return False
        return True

    def execute(self, context):
        prefs = preferences.get(context)
        python = base_python(prefs)
        if python is None:
            self.report({'ERROR'}, "Blender's own Python cannot be used here: choose a Python "
                                   "3.10-3.12 in the add-on preferences (Python for Set Up)")
            return {'CANCELLED'}
        problem = venv_setup.check_base_python(python)
        if problem:
            self.report({'ERROR'}, problem + " (choose another in the add-on preferences)")
            return {'CANCELLED'}
        root = locations.backend_root()
        if root is None:
            self.report({'ERROR'}, "the bundled backend is missing from the add-on")
            return {'CANCELLED'}
        try:
            requirements = venv_setup.read_requirements(root)
        except (OSError, ValueError) as exc:
            self.report({'ERROR'}, str(exc))
            return {'CANCELLED'}
        user = compat.user_dir()
        steps = venv_setup.setup_steps(python, user / locations.VENV_NAME, requirements,
                                       prefs.cpu_only_torch)
        state = session.get()
        state.runner.release()  # the next job must use the new environment
        state.setup = venv_setup.SetupTask(steps, log_path=user / "setup.log")
        state.setup.start()
        if bpy.app.background:
            result = state.setup.wait()
            if result != "done":
                self.report({'ERROR'}, state.setup.error)
                return {'CANCELLED'}
            self.report({'INFO'}, "backend environment ready")
            return {'FINISHED'}
        session.start_timer()
        self.report({'INFO'}, f"Setting up the backend; log: {state.setup.log_path}")
        return {'FINISHED'}


CLASSES = (SEQUENCER_OT_dance_setup_backend,)
