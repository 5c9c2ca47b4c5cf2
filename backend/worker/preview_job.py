"""Running one ``preview`` request: a pose preview (backend.pose_preview) and its reply."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Callable

from .protocol import Done, Preview

Report = Callable[[str, int, int], None]


def to_preview_job(preview: Preview):
    """The `PosePreviewJob` a ``preview`` message asks for (``adjust`` checked already)."""
    from backend.normalize import NormalizationStats
    from backend.pose_preview import PosePreviewJob

    from .jobs import to_adjustments

    return PosePreviewJob(
        source=Path(preview.source), model=Path(preview.model),
        output_dir=Path(preview.output_dir), frame_start=preview.frame_start,
        frame_stop=preview.frame_stop, fps=preview.fps, adjustments=to_adjustments(preview),
        video=preview.video, frame_format=preview.frame_format,
        source_stats=None if preview.source_stats is None
        else NormalizationStats.load(preview.source_stats))


def run_preview(preview: Preview, report: Report, cancel: threading.Event) -> Done:
    """Draw the preview's frames and return its `Done` (errors are raised, as the transfer's)."""
    from backend.pose_preview import run_pose_preview

    result = run_pose_preview(to_preview_job(preview), report=report, cancel=cancel)
    return Done(job_id=preview.job_id, frames_dir=str(result.frames_dir),
                frame_count=result.frame_count,
                video=None if result.video is None else str(result.video))
