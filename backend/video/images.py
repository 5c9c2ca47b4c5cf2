"""Image-sequence folders: which files count as frames, in which order, and reading one.

A folder of numbered images (frame1.png ... frame10.png) is a video without a frame rate.
Frames are ordered by *natural* sort, so ``frame2`` comes before ``frame10``.
"""

from __future__ import annotations

import re
from pathlib import Path

import cv2
import numpy as np

from backend.errors import InputError

IMAGE_EXTENSIONS = frozenset({".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp"})


def natural_key(name: str) -> list[int | str]:
    """Sort key that compares digit runs as numbers: 'f2' < 'f10'."""
    parts = re.split(r"(\d+)", name.lower())
    return [int(p) if p.isdigit() else p for p in parts]


def list_images(folder: Path) -> list[Path]:
    """The image files in ``folder`` in natural order; `InputError` if there are none.

    Hidden files (``.DS_Store``, macOS ``._x.png``, our own ``.x.png.tmp`` temp files) are skipped.
    """
    if not folder.is_dir():
        raise InputError(folder, "is not a folder")
    files = [
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMAGE_EXTENSIONS and not p.name.startswith(".") and p.is_file()
    ]
    if not files:
        exts = ", ".join(sorted(e.lstrip(".") for e in IMAGE_EXTENSIONS))
        raise InputError(folder, f"contains no images ({exts})")
    return sorted(files, key=lambda p: natural_key(p.name))


def read_image(path: Path, alpha: bool = False) -> np.ndarray:
    """One image as RGB uint8 HxWx3 (alpha dropped, 16-bit scaled to 8-bit, grey expanded);
    with ``alpha`` RGBA HxWx4 (opaque where the file has no alpha)."""
    # np.fromfile + imdecode instead of imread: imread cannot open non-ASCII paths on Windows.
    try:
        data = np.fromfile(str(path), dtype=np.uint8)
    except OSError as exc:
        raise InputError(path, f"cannot be read ({exc.strerror})") from exc
    image = cv2.imdecode(data, cv2.IMREAD_UNCHANGED if alpha else cv2.IMREAD_COLOR) \
        if data.size else None
    if image is None:
        raise InputError(path, "is not a readable image (empty or damaged)")
    if not alpha:
        return cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
    if image.dtype != np.uint8:
        image = (image // 257).astype(np.uint8)
    if image.ndim == 2:
        image = cv2.cvtColor(image, cv2.COLOR_GRAY2BGR)
    if image.shape[2] == 3:
        image = cv2.cvtColor(image, cv2.COLOR_BGR2BGRA)
    return cv2.cvtColor(image, cv2.COLOR_BGRA2RGBA)
