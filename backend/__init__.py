"""Everybody Dance Now backend: video I/O, poses, labels, normalization, inference.

Never imports ``bpy``. Usable as a library and as ``python -m backend``.
"""

__version__ = "0.1.0"
