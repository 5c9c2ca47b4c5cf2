"""Running one ``preview`` request: a pose preview (backend.pose_preview) and its reply."""

from __future__ import annotations

import threading
from typing import Callable

from .protocol import Done, Preview

Report = Callable[[str, int, int], None]


def run_preview(preview: Preview, report: Report, cancel: threading.Event) -> Done:
    """Draw the preview's frames and return its `Done` (errors are raised, as the transfer's)."""
    from backend.pose_preview import run_pose_preview
    from backend.transfer.request import preview_job

    result = run_pose_preview(preview_job(preview), report=report, cancel=cancel)
    return Done(job_id=preview.job_id, frames_dir=str(result.frames_dir),
                frame_count=result.frame_count,
                video=None if result.video is None else str(result.video))
