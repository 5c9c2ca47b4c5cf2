"""The built-in demo performer: a cartoon person whose exact keypoints are known.

``dance_motion`` (the default source dance) and ``target_motion`` (varied free movement,
walking towards and away from the camera, for a target training video) return exact
``PoseTrack``s; ``render_performer`` draws the character in one pose; ``make_clip`` and
``make_demo_clip`` write a clip (MP4 or PNG frames) with its ground-truth track. With
them the whole tool runs anywhere, with no footage and no GPU, and tests have footage
whose true poses are known.
"""

from .clip import make_clip, make_demo_clip
from .motion import dance_motion, target_motion
from .performer import LOOKS, Appearance, background, render_performer
from .skeleton import Proportions

__all__ = [
    "LOOKS",
    "Appearance",
    "Proportions",
    "background",
    "dance_motion",
    "make_clip",
    "make_demo_clip",
    "render_performer",
    "target_motion",
]
