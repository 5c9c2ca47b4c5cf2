"""Everybody Dance Now motion transfer for Blender's Video Sequence Editor.

The add-on is thin: it turns strips into jobs for the backend worker (a separate Python
process with torch and mediapipe, see ``backend_client``) and turns finished jobs into strips.
Importing this package needs no Blender: ``bpy`` is imported in `register`, so plain pytest
can import the bpy-free modules (``core``, ``backend_client``).
"""

bl_info = {
    "name": "Everybody Dance Now",
    "author": "Everybody Dance VSE contributors",
    "version": (0, 1, 0),
    "blender": (3, 4, 0),
    "location": "Sequencer > Sidebar > Dance",
    "description": "Motion transfer: make the person of a trained model perform a strip's dance",
    "doc_url": "",
    "category": "Sequencer",
}

_registered = []  # the classes registered by `register`, unregistered in reverse order


def _classes():
    from . import operators, preferences, props, ui

    return (*props.CLASSES, *preferences.CLASSES, *operators.CLASSES, *ui.CLASSES)


def register():
    import atexit

    import bpy

    from . import handlers, props, session

    for cls in _classes():
        bpy.utils.register_class(cls)
        _registered.append(cls)
    props.register_properties()
    handlers.register()
    session.start_timer()
    atexit.register(session.shutdown)  # quitting Blender stops the worker


def unregister():
    import atexit

    import bpy

    from . import handlers, props, session

    atexit.unregister(session.shutdown)
    session.stop_timer()
    session.shutdown()
    handlers.unregister()
    props.unregister_properties()
    while _registered:
        bpy.utils.unregister_class(_registered.pop())
