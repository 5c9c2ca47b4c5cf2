"""The pose preview: the stick figure the transfer would draw, over the target's background.

``run_pose_preview(PosePreviewJob(source, model, output_dir, ...))`` writes one frame per
source frame in a preview folder (see `run`); ``python -m backend preview-poses`` is its
command line and the worker's ``preview`` message its way in from Blender. `background`
chooses what the figure is drawn over (the bundle's plate, a target frame, or grey).
"""

from .background import (PLATE_FILE, TARGET_FRAME_FILE, PreviewBackground, preview_background,
                         write_target_frame)
from .run import PosePreviewJob, PosePreviewResult, run_pose_preview

__all__ = ["PLATE_FILE", "TARGET_FRAME_FILE", "PreviewBackground", "PosePreviewJob",
           "PosePreviewResult", "preview_background", "run_pose_preview", "write_target_frame"]
