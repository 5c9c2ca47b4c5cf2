"""The worker process the Blender add-on talks to (``python -m backend serve``).

``protocol`` (pure Python, no heavy imports) defines every message; the Blender add-on
imports it too, so the messages are defined once.
"""
