"""Opening a user's movie file with PyAV and turning every failure into an `InputError`.

PyAV raises FFmpeg's own errors ("Invalid data found when processing input"); the user
needs to hear which file is wrong and in plain words why, so all opening goes through here.
"""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
from av.container import InputContainer
from av.video.stream import VideoStream

from backend.errors import InputError


def check_file(path: Path) -> None:
    """Raise `InputError` for a path that is missing, not a file, or empty."""
    if not path.exists():
        raise InputError(path, "file not found")
    if not path.is_file():
        raise InputError(path, "is not a file")
    if path.stat().st_size == 0:
        raise InputError(path, "is empty (0 bytes)")


def _container_family(path: Path) -> str | None:
    """Which video container the first bytes announce (MP4/MOV, AVI, Matroska/WebM), if any."""
    with open(path, "rb") as f:
        head = f.read(12)
    if head[4:8] in (b"ftyp", b"moov", b"mdat", b"wide", b"free", b"skip"):
        return "MP4/MOV"
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return "AVI"
    if head[:4] == b"\x1a\x45\xdf\xa3":
        return "Matroska/WebM"
    return None


def open_movie(path: Path) -> InputContainer:
    """Open ``path`` for reading; a file FFmpeg cannot parse raises `InputError`."""
    check_file(path)
    try:
        return av.open(str(path), mode="r")
    except av.FFmpegError as exc:
        family = _container_family(path)
        if family == "MP4/MOV":
            # The usual cause: a recording or download interrupted before the index
            # (the "moov" box, written last by most cameras and encoders) was written.
            raise InputError(
                path, "is a truncated or damaged MP4/MOV file (its index is missing or unreadable)"
            ) from exc
        if family is not None:
            raise InputError(path, f"is a truncated or damaged {family} file ({exc.strerror})") from exc
        raise InputError(path, "is not a video file that FFmpeg can read") from exc


def first_video_stream(container: InputContainer, path: Path) -> VideoStream:
    """The file's first video stream; `InputError` if it has none (audio-only, subtitles...)."""
    streams = [s for s in container.streams.video if s.codec_context is not None]
    if not streams:
        kinds = sorted({s.type for s in container.streams})
        what = ", ".join(kinds) if kinds else "no streams at all"
        raise InputError(path, f"has no video stream (it contains: {what})")
    return streams[0]


def frame_to_rgb(frame: av.VideoFrame) -> np.ndarray:
    """A decoded frame as RGB uint8 HxWx3, turned upright as the file's rotation tag asks.

    Phones store portrait video as landscape pixels plus a rotation tag; players (and
    FFmpeg's command line) turn it upright, so we do too. ``to_ndarray`` converts with the
    colour matrix and range the frame is tagged with (BT.601 when untagged, as FFmpeg does).
    """
    rgb = frame.to_ndarray(format="rgb24")
    quarter_turns = _quarter_turns(frame.rotation)
    if quarter_turns:
        # The tag gives a counter-clockwise angle, which is np.rot90's direction.
        rgb = np.ascontiguousarray(np.rot90(rgb, k=quarter_turns))
    return rgb


def _quarter_turns(degrees: float) -> int:
    """Counter-clockwise quarter turns for a display rotation (0 for odd angles we ignore)."""
    turns, rest = divmod(round(degrees), 90)
    return turns % 4 if rest == 0 else 0
