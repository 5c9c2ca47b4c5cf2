"""Where things are: the bundled backend, the backend Python, the demo model (no bpy).

The add-on runs in two layouts:

* **installed** (from ``python build.py``'s zip): the backend and training packages are
  copied into ``<add-on>/_vendor/``;
* **source checkout** (development): the add-on is ``<repo>/blender_addon`` and the backend
  is ``<repo>/backend``, usually with a ``<repo>/.venv`` that has the backend's requirements.

Either way ``backend_root()`` is the folder to put on ``PYTHONPATH`` (and use as the working
directory) so that ``PYTHON -m backend serve`` works.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

ADDON_DIR = Path(__file__).resolve().parents[1]
VENDOR = "_vendor"
VENV_NAME = "backend-venv"
SUPPORTED_PYTHON = ((3, 10), (3, 12))  # inclusive: what torch 2.13 + mediapipe 0.10.21 support


def backend_root(addon_dir: Path = ADDON_DIR) -> Path | None:
    """The folder holding the ``backend`` package; None when neither layout is found."""
    vendored = addon_dir / VENDOR
    if (vendored / "backend" / "__init__.py").is_file():
        return vendored
    repo = addon_dir.parent
    if (repo / "backend" / "__init__.py").is_file():
        return repo
    return None


def is_source_checkout(addon_dir: Path = ADDON_DIR) -> bool:
    root = backend_root(addon_dir)
    return root is not None and root == addon_dir.parent


def venv_python(venv_dir: Path) -> Path:
    """The interpreter inside a virtual environment."""
    if os.name == "nt":
        return venv_dir / "Scripts" / "python.exe"
    return venv_dir / "bin" / "python"


def find_backend_python(preference: str, user_dir: Path | None,
                        addon_dir: Path = ADDON_DIR) -> tuple[Path | None, str]:
    """The Python to run the worker with, and where it came from (shown in the panel).

    Order: the add-on preference; in a source checkout, the repository's ``.venv``; the
    virtual environment "Set Up Backend" made in the add-on's user folder.
    """
    if preference.strip():
        return Path(preference.strip()).expanduser(), "preference"
    if is_source_checkout(addon_dir):
        candidate = venv_python(addon_dir.parent / ".venv")
        if candidate.is_file():
            return candidate, "source checkout .venv"
    if user_dir is not None:
        candidate = venv_python(user_dir / VENV_NAME)
        if candidate.is_file():
            return candidate, "add-on environment"
    return None, "not set up"


def worker_environment(root: Path, base: dict[str, str] | None = None) -> dict[str, str]:
    """The environment for a backend process: ``root`` first on PYTHONPATH, unbuffered output.

    Blender's own PYTHONHOME/PYTHONPATH must not leak into another interpreter.
    """
    env = dict(os.environ if base is None else base)
    for key in ("PYTHONHOME", "PYTHONPATH", "PYTHONSTARTUP", "PYTHONNOUSERSITE"):
        env.pop(key, None)
    env["PYTHONPATH"] = str(root)
    env["PYTHONUNBUFFERED"] = "1"
    return env


def demo_bundle(root: Path | None = None) -> Path | None:
    """The built-in demo performer's model bundle, when it ships with the backend."""
    root = backend_root() if root is None else root
    if root is None:
        return None
    folder = root / "backend" / "demo" / "bundle"
    return folder if (folder / "manifest.json").is_file() else None


def python_fits(version: tuple[int, int]) -> bool:
    """Whether a Python of this (major, minor) can run the backend."""
    low, high = SUPPORTED_PYTHON
    return low <= tuple(version[:2]) <= high


def blender_python() -> Path | None:
    """Blender's own interpreter, where it is a real executable (it is not in the bpy wheel)."""
    exe = Path(sys.executable) if sys.executable else None
    if exe is None or not exe.is_file() or "blender" == exe.stem.lower():
        return None
    return exe
