"""Application handlers: when a file is opened, re-attach to its training runs and keep
results of jobs started in the previous file out of it."""

import bpy
from bpy.app.handlers import persistent

from . import session


@persistent
def _on_load_post(*_args):
    # Training runs are listed on the scene by folder: forgetting the cached status makes the
    # panel read the runs of the file just opened (still running, finished or stopped).
    state = session.get()
    state.file_generation += 1
    state.forget_training_cache()
    session.start_timer()


def register():
    if _on_load_post not in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.append(_on_load_post)


def unregister():
    if _on_load_post in bpy.app.handlers.load_post:
        bpy.app.handlers.load_post.remove(_on_load_post)
