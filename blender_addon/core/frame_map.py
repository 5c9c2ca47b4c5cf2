"""Which source frames a sequencer strip shows, frame by frame (no bpy).

Blender places a strip's *content* (a movie's frames, or an image strip's elements) on the
timeline starting at ``frame_start``. Hard trims (``animation_offset_start/end``) cut content
frames away; soft trims (``frame_offset_start/end``) hide timeline frames. When a movie's frame
rate differs from the scene's, Blender may play it in real time (Blender 3.x always does,
4.x when "adjust playback rate" was on when the strip was added), showing
``media_fps / scene_fps`` content frames per timeline frame. Reversed playback and strobe
change the mapping too. This module mirrors Blender's ``give_frame_index`` so that the job
sent to the backend covers exactly the frames the strip shows, and the result strip shows
the synthesized version of the same frame on every timeline frame.
"""

from __future__ import annotations

import math
from dataclasses import dataclass


class StripMappingError(ValueError):
    """The strip cannot be mapped to source frames (its message is for the user)."""


@dataclass(frozen=True)
class StripTiming:
    """The timing fields of a movie or image strip, copied out of Blender.

    ``frame_start``: timeline frame of the first content frame after hard trims.
    ``final_start`` / ``final_end``: the visible range (end exclusive).
    ``content_length``: content frames left after hard trims (Blender's ``len``).
    ``hard_trim_start``: content frames cut at the start (``animation_offset_start``).
    ``rate``: content frames per timeline frame (1, or media fps / scene fps).
    """

    frame_start: float
    final_start: int
    final_end: int
    content_length: int
    hard_trim_start: int = 0
    rate: float = 1.0
    reverse: bool = False
    strobe: float = 1.0

    def __post_init__(self) -> None:
        if self.final_end <= self.final_start:
            raise StripMappingError("the strip shows no frames (its end is not after its start)")
        if self.content_length < 1:
            raise StripMappingError("the strip has no content frames")
        if not self.rate > 0:
            raise StripMappingError(f"invalid playback rate {self.rate}")

    @property
    def duration(self) -> int:
        """Visible timeline frames."""
        return self.final_end - self.final_start

    @property
    def timeline_length(self) -> float:
        """Timeline frames the whole (hard-trimmed) content spans."""
        return self.content_length / self.rate


def content_index(timing: StripTiming, timeline_frame: int) -> int:
    """The content frame (0 = first frame of the media file) shown at ``timeline_frame``.

    Follows Blender's ``give_frame_index``: position within the content, reversed if asked,
    scaled by the playback rate, clamped to the content, strobed, then shifted by the hard
    trim (the decoder truncates the fractional frame index).
    """
    start = timing.frame_start
    end = start + timing.timeline_length - 1
    index = (end - timeline_frame) if timing.reverse else (timeline_frame - start)
    index = max(index, 0.0) * timing.rate
    index = min(index, timing.content_length - 1)
    if timing.strobe > 1.0:
        index -= math.fmod(index, timing.strobe)
    return int(index) + timing.hard_trim_start


@dataclass(frozen=True)
class FrameMapping:
    """The frames a strip shows: one source frame per visible timeline frame.

    The backend job covers the contiguous source range [``source_start``, ``source_stop``);
    ``job_frames[k]`` is the job's frame (0-based, = output image ``k + 1``) shown on
    timeline frame ``timeline_start + k``.
    """

    timeline_start: int
    source_frames: tuple[int, ...]

    @property
    def source_start(self) -> int:
        return min(self.source_frames)

    @property
    def source_stop(self) -> int:
        return max(self.source_frames) + 1

    @property
    def job_length(self) -> int:
        return self.source_stop - self.source_start

    @property
    def job_frames(self) -> tuple[int, ...]:
        return tuple(f - self.source_start for f in self.source_frames)

    @property
    def duration(self) -> int:
        return len(self.source_frames)

    def timeline_frame_of_job_frame(self, job_frame: int) -> float:
        """The timeline frame where job frame ``job_frame`` is (first) shown.

        Used to sample keyed parameters once per job frame: a frame the strip skips (the
        movie is faster than the scene) gets the time between its neighbours.
        """
        source = job_frame + self.source_start
        for k, shown in enumerate(self.source_frames):
            if shown == source:
                return float(self.timeline_start + k)
        # Not shown: interpolate between the nearest shown frames around it.
        before = [(s, k) for k, s in enumerate(self.source_frames) if s < source]
        after = [(s, k) for k, s in enumerate(self.source_frames) if s > source]
        if not before or not after:
            k = (before or after)[0][1]
            return float(self.timeline_start + k)
        (s0, k0), (s1, k1) = max(before), min(after)
        return self.timeline_start + k0 + (source - s0) * (k1 - k0) / (s1 - s0)


def map_strip(timing: StripTiming) -> FrameMapping:
    """The source frame shown on every visible timeline frame of the strip."""
    frames = tuple(content_index(timing, t) for t in range(timing.final_start, timing.final_end))
    return FrameMapping(timeline_start=timing.final_start, source_frames=frames)


def infer_rate(media_fps: float, scene_fps: float, content_length: int,
               timeline_length: int) -> float:
    """The playback rate Blender applies to a movie strip: 1 or ``media_fps / scene_fps``.

    Blender 4.x only rescales movies added with "adjust playback rate" and does not expose
    that flag to Python, so it is read off the strip's length: the content of
    ``content_length`` frames spans ``timeline_length`` timeline frames.
    """
    if media_fps <= 0 or scene_fps <= 0 or math.isclose(media_fps, scene_fps, rel_tol=1e-4):
        return 1.0
    real_time = media_fps / scene_fps
    candidates = (1.0, real_time)
    return min(candidates, key=lambda r: abs(content_length / r - timeline_length))


def first_free_channel(occupied: list[tuple[int, int, int]], above: int, start: int, end: int,
                       max_channel: int = 128) -> int:
    """The lowest channel above ``above`` with nothing in [start, end).

    ``occupied`` lists (channel, final_start, final_end) of the strips already there.
    """
    for channel in range(above + 1, max_channel + 1):
        if not any(c == channel and s < end and start < e for c, s, e in occupied):
            return channel
    raise StripMappingError(f"no free channel above channel {above} for frames {start}-{end - 1}")
