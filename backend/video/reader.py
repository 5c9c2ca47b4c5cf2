"""Reading frames as RGB arrays, streamed, from any index, identical to reading from the start.

Frame ``i`` is the i-th frame in presentation order (what a player shows), the same
numbering `probe` counts. To start at ``i > 0`` without decoding everything before it, we
seek to the keyframe before frame ``i`` and decode forward, naming each decoded frame by
its presentation timestamp (pts). The pts -> index table comes from demuxing the packet
timestamps (cheap, no decoding). Files whose timestamps cannot be trusted (missing or
repeated pts, AVI with B-frames, a seek that lands after the wanted frame) are detected
on the way and read by counting decoded frames from the start instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
from av.video.stream import VideoStream

from backend.errors import InputError
from backend.video.containers import first_video_stream, frame_to_rgb, open_movie
from backend.video.images import list_images, read_image
from backend.video.probe import VideoInfo, probe


def read_frames(
    path: str | Path, start: int = 0, stop: int | None = None, fps: float | None = None
) -> Iterator[np.ndarray]:
    """RGB uint8 HxWx3 frames with index in [start, stop) of a movie or image folder.

    ``stop`` None (or past the end) means to the last frame, as in slicing. ``fps`` only
    matters for image folders (see `probe`). The file is checked now, so a bad path raises
    `InputError` at the call, not at the first ``next()``; a file that decodes to fewer
    frames than `probe` counted raises `InputError` when the shortfall is reached.
    """
    info = probe(path, fps)
    if start < 0 or (stop is not None and stop < 0):
        raise ValueError(f"start and stop must be >= 0, got start={start}, stop={stop}")
    stop = info.frame_count if stop is None else min(stop, info.frame_count)
    if start >= stop:
        return iter(())
    if info.kind == "images":
        return _read_images(info, start, stop)
    return _read_movie(info, start, stop)


def read_frame(path: str | Path, index: int, fps: float | None = None) -> np.ndarray:
    """The single frame ``index`` (RGB uint8 HxWx3). For many frames use `read_frames`."""
    for frame in read_frames(path, index, index + 1, fps):
        return frame
    raise IndexError(f"{path}: frame {index} does not exist (the video has fewer frames)")


def _read_images(info: VideoInfo, start: int, stop: int) -> Iterator[np.ndarray]:
    for file in list_images(info.path)[start:stop]:
        rgb = read_image(file)
        if rgb.shape[:2] != (info.height, info.width):
            raise InputError(
                file,
                f"is {rgb.shape[1]}x{rgb.shape[0]} but the sequence's first image is "
                f"{info.width}x{info.height}; all images must have the same size",
            )
        yield rgb


class _UntrustedTimestamps(Exception):
    """Internal: pts-based frame numbering broke down; fall back to counting."""


def _read_movie(info: VideoInfo, start: int, stop: int) -> Iterator[np.ndarray]:
    next_index = start
    if start > 0:
        for rgb in _read_by_seeking(info.path, start, stop):
            yield rgb
            next_index += 1
        if next_index >= stop:
            return
    # Counting pass: from the start when not seeking, or to finish what seeking could not.
    for index, frame in enumerate(_decode(info.path)):
        if index < next_index:
            continue
        yield frame_to_rgb(frame)
        next_index += 1
        if next_index >= stop:
            return
    raise InputError(
        info.path,
        f"is damaged: only {next_index} of its {info.frame_count} frames could be decoded",
    )


def _read_by_seeking(path: Path, start: int, stop: int) -> Iterator[np.ndarray]:
    """Frames start, start+1, ... found by seeking; stops early (silently) where unsure.

    If a seek lands after frame ``start`` (the keyframe found precedes it in decoding
    order but follows it on screen, as with B-frames), seek again further back.
    """
    pts_to_index = _pts_index(path)
    if pts_to_index is None:
        return
    pts_sorted = sorted(pts_to_index, key=pts_to_index.__getitem__)
    next_index, back = start, 0
    while next_index < stop:
        seek_index = max(0, start - back)
        frames = _decode(path, seek_pts=pts_sorted[seek_index])
        try:
            previous = -1
            for frame in frames:
                index = pts_to_index.get(frame.pts)
                # Decoders deliver frames in presentation order: pts must rise one frame
                # at a time from the target on; anything else means they lie.
                if index is None or index <= previous or index > next_index:
                    raise _UntrustedTimestamps
                previous = index
                if index == next_index:
                    yield frame_to_rgb(frame)
                    next_index += 1
                    if next_index >= stop:
                        return
            return  # end of stream before stop: the counting pass reports it
        except _UntrustedTimestamps:
            if next_index > start or seek_index == 0:
                return  # a gap mid-stream or no earlier keyframe: seeking cannot help
            back = max(8, back * 4)
        finally:
            frames.close()


def _pts_index(path: Path) -> dict[int, int] | None:
    """Map each frame's pts to its presentation index, or None where pts are unusable."""
    with open_movie(path) as container:
        stream = first_video_stream(container, path)
        if "avi" in container.format.name.split(",") and stream.codec_context.has_b_frames:
            # AVI stores no presentation times; FFmpeg makes pts up from the decoding
            # order, which is not the display order once B-frames reorder pictures.
            return None
        pts = [
            packet.pts
            for packet in container.demux(stream)
            if packet.size > 0 and not packet.is_discard
        ]
    if None in pts or len(set(pts)) != len(pts):
        return None
    return {p: i for i, p in enumerate(sorted(pts))}


def _decode(path: Path, seek_pts: int | None = None) -> Iterator[av.VideoFrame]:
    """Decoded frames of the first video stream, optionally from the keyframe before ``seek_pts``."""
    with open_movie(path) as container:
        stream = first_video_stream(container, path)
        _use_threads(stream)
        if seek_pts is not None:
            container.seek(seek_pts, stream=stream, backward=True, any_frame=False)
        for packet in container.demux(stream):
            if packet.size == 0 and packet.dts is not None:
                continue  # an AVI "dropped frame" placeholder: nothing to decode (and not EOF)
            yield from _decode_packet(stream, packet, path)


def _decode_packet(stream: VideoStream, packet: av.Packet, path: Path) -> list[av.VideoFrame]:
    try:
        return stream.decode(packet)
    except av.FFmpegError as exc:
        where = "" if packet.pts is None else f" near {float(packet.pts * stream.time_base):.2f} s"
        raise InputError(path, f"is damaged: video data{where} cannot be decoded ({exc.strerror})") from exc


def _use_threads(stream: VideoStream) -> None:
    # Frame threading: several frames decode in parallel, still delivered in order.
    stream.thread_type = "AUTO"
    stream.thread_count = 0
