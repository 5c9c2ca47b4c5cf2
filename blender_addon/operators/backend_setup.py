"""The Backend panel's buttons: set up the backend's Python environment, stop the set-up,
stop the worker (``sequencer.dance_setup_backend``, ``dance_cancel_setup``,
``dance_release_gpu``).

The set-up runs in a background thread (never on Blender's main thread, never in Blender's own
Python); the Backend panel shows each step and the last line of output, and the full log
stays in the add-on's user folder as the failure report.
"""

from pathlib import Path

import bpy

from .. import compat, preferences, session
from ..core import locations, venv_setup
from .base import DanceOperator


def base_python(prefs):
    """The Python to build the environment with: the preference, else Blender's own."""
    if prefs.setup_python.strip():
        return Path(prefs.setup_python.strip()).expanduser()
    return locations.blender_python()


def setup_running() -> bool:
    setup = session.get().setup
    return setup is not None and setup.state == "running"


class SEQUENCER_OT_dance_setup_backend(DanceOperator):
    """Make a virtual environment with the backend's requirements."""

    bl_idname = "sequencer.dance_setup_backend"
    bl_label = "Set Up Backend"
    bl_description = ("Create a Python environment in the add-on's user folder and install the "
                      "backend's requirements (PyTorch, MediaPipe, ...; several GB to download)")
    bl_options = {'REGISTER'}

    @classmethod
    def poll(cls, context):
        if setup_running():
            cls.poll_message_set("The set-up is running")
            return False
        return True

    def execute(self, context):
        prefs = preferences.get(context)
        python = base_python(prefs)
        if python is None:
            return self.refuse("Blender's own Python cannot be used here: choose a Python "
                               "3.10-3.12 in the add-on preferences (Python for Set Up)")
        problem = venv_setup.check_base_python(python)
        if problem:
            return self.refuse(problem + " (choose another in the add-on preferences)")
        root = locations.backend_root()
        if root is None:
            return self.refuse("the bundled backend is missing from the add-on")
        try:
            requirements = venv_setup.read_requirements(root)
        except (OSError, ValueError) as exc:
            return self.refuse(exc)
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
                return self.refuse(state.setup.error)
            self.report({'INFO'}, "backend environment ready")
            return {'FINISHED'}
        session.start_timer()
        self.report({'INFO'}, f"Setting up the backend; log: {state.setup.log_path}")
        return {'FINISHED'}


class SEQUENCER_OT_dance_cancel_setup(DanceOperator):
    """Stop a running "Set Up Backend"."""

    bl_idname = "sequencer.dance_cancel_setup"
    bl_label = "Cancel Set-Up"
    bl_description = "Stop installing the backend (what is installed so far stays)"
    bl_options = {'REGISTER', 'INTERNAL'}

    def execute(self, context):
        if setup_running():
            session.get().setup.cancel()
        return {'FINISHED'}


class SEQUENCER_OT_dance_release_gpu(DanceOperator):
    """Stop the backend worker, freeing its GPU memory."""

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


CLASSES = (SEQUENCER_OT_dance_setup_backend, SEQUENCER_OT_dance_cancel_setup,
           SEQUENCER_OT_dance_release_gpu)
