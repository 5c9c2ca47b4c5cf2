"""Pose tracks: detection, OpenPose layouts, import, gap filling and smoothing."""

from .track import FramePose, PoseTrack

__all__ = ["FramePose", "PoseTrack"]
