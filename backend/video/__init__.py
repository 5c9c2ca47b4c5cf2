"""Video in and out: probe a movie or image folder, stream its frames, write MP4 or PNGs.

Frames are numpy uint8 arrays HxWx3 in RGB order. Frame ``i`` of a video is the same
everywhere: `probe` counts exactly the frames `read_frames` yields, none dropped.
"""

from backend.video.images import IMAGE_EXTENSIONS
from backend.video.mp4_writer import Mp4Writer
from backend.video.png_writer import PngSequenceWriter
from backend.video.probe import VideoInfo, probe
from backend.video.reader import read_frame, read_frames

__all__ = [
    "IMAGE_EXTENSIONS",
    "Mp4Writer",
    "PngSequenceWriter",
    "VideoInfo",
    "probe",
    "read_frame",
    "read_frames",
]
