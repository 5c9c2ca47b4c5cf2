"""Pose-preview folders on disk (no bpy).

Every "Preview Poses" writes a new folder (``<output>/previews/<job id>/``, laid out as
backend/pose_preview/run.py writes it: ``preview.json`` and ``frames/``), so that Blender,
which caches images by path, shows the new frames. A preview strip keeps the folder it showed
before the current one (for one undo); older ones are removed with `remove_preview_folder`.
"""

from __future__ import annotations

import shutil
from pathlib import Path

PREVIEWS_FOLDER = "previews"
PREVIEW_FILE = "preview.json"  # backend/pose_preview/run.py's PREVIEW_FILE
FRAMES_DIR = "frames"  # and its FRAMES_DIR


def preview_folder(frames_dir: str | Path) -> Path | None:
    """The preview folder whose frames are ``frames_dir``; None when it is not one."""
    frames = Path(frames_dir)  # (a trailing separator is dropped)
    folder = frames.parent
    if frames.name != FRAMES_DIR or not (folder / PREVIEW_FILE).is_file():
        return None
    return folder


def remove_preview_folder(frames_dir: str | Path) -> bool:
    """Delete the preview folder whose frames are ``frames_dir``; True when it was one.

    Anything that is not a preview folder (no ``preview.json`` beside ``frames``) is left
    alone, whatever path a strip held.
    """
    folder = preview_folder(frames_dir)
    if folder is None:
        return False
    shutil.rmtree(folder, ignore_errors=True)
    return True
