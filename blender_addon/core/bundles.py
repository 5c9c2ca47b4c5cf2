"""Reading a model bundle's manifest for the panel (no bpy, no torch).

The backend owns the format (backend/models/bundle.py); the add-on only shows a bundle's
name and resolution and checks that a folder is one before submitting a job.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

MANIFEST = "manifest.json"


@dataclass(frozen=True)
class BundleInfo:
    folder: Path
    name: str
    resolution: tuple[int, int]
    has_face: bool
    created: str

    def summary(self) -> str:
        face = ", face GAN" if self.has_face else ""
        return f"{self.name} ({self.resolution[0]}x{self.resolution[1]}{face})"


def read_bundle_info(folder: str | Path) -> BundleInfo:
    """The bundle's name and resolution; ValueError saying what is wrong otherwise."""
    folder = Path(folder)
    path = folder / MANIFEST
    if not path.is_file():
        raise ValueError(f"{folder} is not a model bundle (no {MANIFEST})")
    try:
        data = json.loads(path.read_text("utf-8"))
        width, height = data["resolution"]
        return BundleInfo(folder=folder, name=str(data.get("name", folder.name)),
                          resolution=(int(width), int(height)),
                          has_face=data.get("face_generator") is not None,
                          created=str(data.get("created", "")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{path} cannot be read as a bundle manifest: {exc}") from None
