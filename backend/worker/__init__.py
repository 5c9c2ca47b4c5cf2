"""The worker process the Blender add-on talks to (``python -m backend serve``).

``protocol`` (pure Python, no heavy imports) defines every message; the Blender add-on
imports it too, so the messages are defined once. ``serve`` is the main loop and job queue,
``execute`` runs one job (progress, the reply), ``channel`` keeps stdout for the protocol,
``hello`` is the handshake. Keep this file free of imports: the add-on imports ``protocol``
through this package from Blender's own Python.
"""
