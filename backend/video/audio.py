"""The sound track of a written MP4: audio taken from another file, cut to the video's length.

Used by `Mp4Writer`: the output gets the audio of ``audio_from`` from ``start_s`` on, as AAC,
and ends with the video. AAC audio starting at the beginning is copied packet by packet
(no quality loss; it may run on by less than one AAC frame, about 21 ms, past the video's
end). Anything else is decoded, cut to the sample and encoded as AAC.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
from av.audio.stream import AudioStream
from av.container import InputContainer, OutputContainer

from backend.errors import InputError
from backend.video.containers import open_movie

AAC_RATES = (96000, 88200, 64000, 48000, 44100, 32000, 24000, 22050, 16000, 12000, 11025, 8000)
AAC_BIT_RATE = 192_000


def open_audio_track(
    path: Path, start_s: float, output: OutputContainer
) -> "CopiedAudio | TranscodedAudio | None":
    """Add an audio stream for ``path``'s sound to ``output``; None if ``path`` has no audio."""
    if start_s < 0:
        raise ValueError(f"audio_start_s must be >= 0, got {start_s}")
    source = open_movie(path)
    streams = [s for s in source.streams.audio if s.codec_context is not None]
    if not streams:
        source.close()
        return None
    if streams[0].codec_context.name == "aac" and start_s == 0:
        return CopiedAudio(path, source, streams[0], output)
    return TranscodedAudio(path, source, streams[0], start_s, output)


class CopiedAudio:
    """AAC packets copied as they are, their times kept (the source starts at 0)."""

    def __init__(
        self, path: Path, source: InputContainer, stream: AudioStream, output: OutputContainer
    ) -> None:
        self.path, self.source, self.input, self.muxer = path, source, stream, output
        self.output = output.add_stream_from_template(stream)
        self.packets = self._packets()
        self.pending: av.Packet | None = None

    def _packets(self) -> Iterator[av.Packet]:
        try:
            for packet in self.source.demux(self.input):
                if packet.size > 0 and packet.pts is not None:
                    yield packet
        except av.FFmpegError as exc:
            raise InputError(self.path, f"its audio cannot be read ({exc.strerror})") from exc

    def mux_until(self, end_s: float) -> None:
        """Mux every packet that starts before ``end_s`` seconds."""
        while True:
            packet = self.pending or next(self.packets, None)
            self.pending = None
            if packet is None:
                return
            if float(packet.pts * self.input.time_base) >= end_s:
                self.pending = packet  # keep it for the next call
                return
            packet.stream = self.output
            self.muxer.mux(packet)

    def finish(self, end_s: float) -> None:
        self.mux_until(end_s)
        self.source.close()

    def close(self) -> None:
        self.source.close()


class TranscodedAudio:
    """Any audio decoded, cut to [start_s, end_s) to the sample, and encoded as AAC."""

    def __init__(
        self,
        path: Path,
        source: InputContainer,
        stream: AudioStream,
        start_s: float,
        output: OutputContainer,
    ) -> None:
        self.path, self.source, self.input, self.muxer = path, source, stream, output
        self.start_s = start_s
        rate = stream.rate if stream.rate in AAC_RATES else 48000
        layout = "mono" if stream.codec_context.channels == 1 else "stereo"
        self.output = output.add_stream("aac", rate=rate, layout=layout)
        self.output.bit_rate = AAC_BIT_RATE
        self.resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
        self.rate, self.layout = rate, layout
        self.buffer = np.zeros((self.output.codec_context.channels, 0), np.float32)
        self.written = 0  # samples encoded so far, the next frame's pts
        self.chunks = self._chunks()

    def _chunks(self) -> Iterator[np.ndarray]:
        """Resampled planar float audio from start_s on, the part before start_s cut away."""
        if self.start_s > 0:
            self.source.seek(int(self.start_s / self.input.time_base), stream=self.input)
        position: int | None = None  # of the next sample, in samples from the file's start
        try:
            for frame in self.source.decode(self.input):
                for out in self.resampler.resample(frame):
                    if position is None:
                        position = round(float(frame.pts * self.input.time_base) * self.rate)
                    samples = out.to_ndarray()
                    skip = max(0, round(self.start_s * self.rate) - position)
                    position += samples.shape[1]
                    if skip < samples.shape[1]:
                        yield samples[:, skip:]
        except av.FFmpegError as exc:
            raise InputError(self.path, f"its audio cannot be decoded ({exc.strerror})") from exc

    def mux_until(self, end_s: float, final: bool = False) -> None:
        """Encode and mux the audio up to ``end_s`` seconds after start_s."""
        wanted = round(end_s * self.rate)
        while self.written + self.buffer.shape[1] < wanted:
            chunk = next(self.chunks, None)
            if chunk is None:
                break
            self.buffer = np.concatenate([self.buffer, chunk], axis=1)
        available = min(self.buffer.shape[1], wanted - self.written)
        size = self.output.codec_context.frame_size or 1024
        full = available if final else available - available % size
        for begin in range(0, max(full, 0), size):
            self._encode(self.buffer[:, begin : min(begin + size, full)])
        self.buffer = self.buffer[:, max(full, 0) :]

    def _encode(self, samples: np.ndarray | None) -> None:
        frame = None
        if samples is not None:
            frame = av.AudioFrame.from_ndarray(
                np.ascontiguousarray(samples), format="fltp", layout=self.layout
            )
            frame.sample_rate, frame.pts = self.rate, self.written
            self.written += samples.shape[1]
        for packet in self.output.encode(frame):
            self.muxer.mux(packet)

    def finish(self, end_s: float) -> None:
        self.mux_until(end_s, final=True)
        self._encode(None)  # flush the encoder
        self.source.close()

    def close(self) -> None:
        self.source.close()
