"""Numbered PNG frames (000001.png, 000002.png, ...) written one by one, safe to resume.

Each PNG is encoded in memory and renamed into place, so a file with a frame's final name
is always complete; after a crash `count_existing` says where to continue.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from backend.paths import atomic_write_bytes

# zlib level 1: files ~10-30% larger than level 9 but encoded several times faster.
PNG_COMPRESSION = 1
PNG_END = b"IEND\xaeB`\x82"  # the last 8 bytes of every complete PNG file


class PngSequenceWriter:
    """``w = PngSequenceWriter(folder); w.resume(); w.write(rgb)`` -> folder/000001.png, ...

    ``next_number`` is the number the next `write` uses; it starts at ``start_number``,
    and `resume` moves it past the frames already on disk.
    """

    def __init__(self, folder: str | Path, start_number: int = 1, digits: int = 6) -> None:
        if start_number < 0 or digits < 1:
            raise ValueError(f"need start_number >= 0 and digits >= 1, got {start_number}, {digits}")
        self.folder = Path(folder)
        self.start_number = start_number
        self.digits = digits
        self.next_number = start_number
        self.folder.mkdir(parents=True, exist_ok=True)

    def path_for(self, number: int) -> Path:
        return self.folder / f"{number:0{self.digits}d}.png"

    def write(self, frame: np.ndarray) -> Path:
        """Write an RGB (or RGBA) uint8 HxWx3 (x4) frame as the next numbered PNG; returns
        its path."""
        if frame.ndim != 3 or frame.shape[2] not in (3, 4) or frame.dtype != np.uint8:
            raise ValueError(f"expected an RGB or RGBA uint8 frame, got {frame.dtype} {frame.shape}")
        order = cv2.COLOR_RGB2BGR if frame.shape[2] == 3 else cv2.COLOR_RGBA2BGRA
        ok, encoded = cv2.imencode(
            ".png", cv2.cvtColor(frame, order), [cv2.IMWRITE_PNG_COMPRESSION, PNG_COMPRESSION]
        )
        if not ok:
            raise RuntimeError(f"OpenCV could not encode frame {self.next_number} as PNG")
        path = self.path_for(self.next_number)
        atomic_write_bytes(path, encoded.tobytes())
        self.next_number += 1
        return path

    def count_existing(self) -> int:
        """How many complete frames exist from ``start_number`` on without a gap."""
        count = 0
        while _is_complete_png(self.path_for(self.start_number + count)):
            count += 1
        return count

    def resume(self) -> int:
        """Continue after the frames already written; returns how many there are."""
        done = self.count_existing()
        self.next_number = self.start_number + done
        return done


def _is_complete_png(path: Path) -> bool:
    """True for a file that ends like a PNG should (cheap: reads the last 8 bytes)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            if f.tell() < len(PNG_END):
                return False
            f.seek(-len(PNG_END), 2)
            return f.read() == PNG_END
    except OSError:
        return False
