"""Writing RGB frames to an H.264 MP4, with the sound of another file, never half a file.

The file is written under a temporary name in the output folder and renamed into place
only when the ``with`` block ends without an exception, so a crash or a cancelled job never
leaves a partial video at the final path nor clobbers an existing one. A full disk raises
`NoSpaceError` naming the video.
"""

from __future__ import annotations

import os
import secrets
from fractions import Fraction
from pathlib import Path
from types import TracebackType

import av
import numpy as np
from av.video.reformatter import ColorRange, Colorspace

from backend.oserrors import writing
from backend.video.audio import open_audio_track

# Tags for BT.709 (HD) colour, limited range: what players assume for HD H.264. The
# conversion from RGB uses the same matrix, and the tags make readers use it back.
BT709 = 1
MPEG_RANGE = 1


# libx264 ships in PyAV's wheels; the others are what FFmpeg builds offer elsewhere.
H264_ENCODERS = ("libx264", "libopenh264", "h264_videotoolbox", "h264_mf")


def h264_encoder() -> str:
    """The best H.264 encoder in this FFmpeg build (libx264 where present)."""
    for name in H264_ENCODERS:
        try:
            av.Codec(name, "w")
        except (ValueError, av.FFmpegError):  # UnknownCodecError is a ValueError
            continue
        return name
    raise RuntimeError(f"this FFmpeg build (PyAV {av.__version__}) has no H.264 encoder")


def exact_rate(fps: float | Fraction) -> Fraction:
    """A frame rate as an exact fraction: 29.97002997 -> 30000/1001, 25.0 -> 25."""
    rate = Fraction(fps).limit_denominator(1001)
    if rate <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    return rate


class Mp4Writer:
    """H.264 (libx264, yuv420p) MP4 writer: ``with Mp4Writer(...) as w: w.write(rgb)``.

    ``size`` is (width, height) of the frames given to `write`. H.264 in yuv420p needs even
    sizes: an odd width or height is padded by repeating the last column or row, so the file
    is one pixel larger there (``encoded_size``). ``audio_from``: a media file whose audio,
    from ``audio_start_s`` seconds on (that file's own timeline), is muxed in and cut to the
    video's length (no audio if that file has none; check ``has_audio``). ``crf`` and ``preset`` are libx264's quality and speed knobs.
    """

    def __init__(
        self,
        path: str | Path,
        fps: float | Fraction,
        size: tuple[int, int],
        audio_from: str | Path | None = None,
        audio_start_s: float = 0.0,
        crf: int = 18,
        preset: str = "medium",
    ) -> None:
        self.path = Path(path)
        self.rate = exact_rate(fps)
        self.width, self.height = (int(v) for v in size)
        if self.width <= 0 or self.height <= 0:
            raise ValueError(f"frame size must be positive, got {size}")
        self.encoded_size = (self.width + self.width % 2, self.height + self.height % 2)
        self.frames_written = 0
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # A hidden name next to the target: same file system, so the final rename is atomic.
        self._tmp = self.path.with_name(f".{self.path.name}.{secrets.token_hex(4)}.part")
        # faststart: the index goes before the data (rewritten at close), so players and
        # Blender can start reading before the whole file is loaded.
        options = {"movflags": "+faststart"}
        with writing(self.path):
            self._container = av.open(str(self._tmp), mode="w", format="mp4", options=options)
        self._audio = None
        try:
            self._stream = self._add_video_stream(crf, preset)
            if audio_from is not None:
                self._audio = open_audio_track(Path(audio_from), audio_start_s, self._container)
        except BaseException:
            self._abort()
            raise

    @property
    def has_audio(self) -> bool:
        return self._audio is not None

    def _add_video_stream(self, crf: int, preset: str) -> av.VideoStream:
        encoder = h264_encoder()
        stream = self._container.add_stream(encoder, rate=self.rate)
        stream.width, stream.height = self.encoded_size
        stream.pix_fmt = "yuv420p"
        stream.time_base = 1 / self.rate  # one tick per frame: pts = frame number
        context = stream.codec_context
        context.colorspace = context.color_primaries = context.color_trc = BT709
        context.color_range = MPEG_RANGE
        if encoder == "libx264":
            stream.options = {"crf": str(crf), "preset": preset}
        else:  # no constant-quality mode: a generous bit rate (0.2 bit per pixel) instead
            stream.bit_rate = int(0.2 * stream.width * stream.height * self.rate)
        return stream

    def write(self, frame: np.ndarray) -> None:
        """Append one RGB uint8 HxWx3 frame of the size given at construction."""
        if frame.shape != (self.height, self.width, 3) or frame.dtype != np.uint8:
            raise ValueError(
                f"expected a uint8 frame of shape {(self.height, self.width, 3)}, "
                f"got {frame.dtype} {frame.shape}"
            )
        if self.encoded_size != (self.width, self.height):
            pad = ((0, self.encoded_size[1] - self.height), (0, self.encoded_size[0] - self.width), (0, 0))
            frame = np.pad(frame, pad, mode="edge")
        video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(frame), format="rgb24")
        video_frame = video_frame.reformat(
            format="yuv420p", dst_colorspace=Colorspace.ITU709, dst_color_range=ColorRange.MPEG
        )
        video_frame.pts = self.frames_written
        with writing(self.path):
            for packet in self._stream.encode(video_frame):
                self._container.mux(packet)
            self.frames_written += 1
            if self._audio is not None:
                self._audio.mux_until(self.duration_s)

    @property
    def duration_s(self) -> float:
        return float(self.frames_written / self.rate)

    def close(self) -> None:
        """Finish the file and move it to ``path`` (replacing any file there)."""
        if self._container is None:
            return
        try:
            with writing(self.path):
                for packet in self._stream.encode(None):
                    self._container.mux(packet)
                if self._audio is not None:
                    self._audio.finish(self.duration_s)
                self._container.close()
            self._container = None
            os.replace(self._tmp, self.path)
        except BaseException:
            self._abort()
            raise

    def _abort(self) -> None:
        """Drop the unfinished file; whatever was at ``path`` before stays as it was."""
        if self._audio is not None:
            self._audio.close()
        if self._container is not None:
            try:
                self._container.close()
            except av.FFmpegError:
                pass  # closing a half-written file may fail; it is deleted anyway
            self._container = None
        self._tmp.unlink(missing_ok=True)

    def __enter__(self) -> Mp4Writer:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc_type is None:
            self.close()
        else:
            self._abort()
