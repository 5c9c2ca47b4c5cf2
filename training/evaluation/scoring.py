"""Scores of one method's frames against the held-out set: image metrics, flicker, poses."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from backend.pose.detector import HolisticConfig, detect_video
from backend.progress import progress_bar
from backend.video.images import list_images, read_image

from .heldout_set import HeldOutSet
from .image_metrics import REGIONS, Box, Flicker, crop, ssim
from .lpips import LPIPS
from .pose_metrics import PARTS, PartScore, pose_scores


@dataclass
class RegionScore:
    ssim: list[float] = field(default_factory=list)
    lpips: list[float] = field(default_factory=list)

    def to_dict(self, lpips_available: bool) -> dict:
        return {"ssim": _mean(self.ssim), "lpips": _mean(self.lpips) if lpips_available else None,
                "frames": len(self.ssim)}


def _mean(values: list[float]) -> float | None:
    kept = [v for v in values if math.isfinite(v)]
    return round(float(np.mean(kept)), 4) if kept else None


@dataclass
class Regions:
    """Per held-out frame, the boxes of the body and the face (None: the whole frame)."""

    body: list[Box | None]
    face: list[Box | None]

    def box(self, region: str, t: int) -> Box | None:
        return {"body": self.body, "face": self.face}[region][t]


def image_scores(frames: Path, held_out: HeldOutSet, real: Path, regions: Regions,
                 lpips: LPIPS | None, progress: bool = True, name: str = "") -> dict:
    """SSIM (and LPIPS) per region and the flicker of the PNGs in ``frames`` against ``real``."""
    outputs, truths = list_images(frames), list_images(real)
    if len(outputs) != len(held_out) or len(truths) != len(held_out):
        raise RuntimeError(f"{frames}: {len(outputs)} frames and {len(truths)} real ones, "
                           f"expected {len(held_out)}")
    scores = {region: RegionScore() for region in REGIONS}
    flicker = Flicker()
    for t in progress_bar(range(len(held_out)), len(held_out), f"scoring {name}", progress):
        out, truth = read_image(outputs[t]), read_image(truths[t])
        flicker.add(out, truth)
        for region in REGIONS:
            if region == "full":
                a, b = out, truth
            else:
                a, b = crop(out, regions.box(region, t)), crop(truth, regions.box(region, t))
                if a is None or b is None:
                    continue
            scores[region].ssim.append(ssim(a, b))
            if lpips is not None:
                scores[region].lpips.append(lpips.distance(a, b))
    return {"image": {r: s.to_dict(lpips is not None) for r, s in scores.items()},
            "flicker": None if not math.isfinite(flicker.value) else round(flicker.value, 4)}


def redetect(frames: Path, held_out: HeldOutSet, config: HolisticConfig,
             progress: bool = True) -> dict[str, dict]:
    """Detect the poses on the PNGs in ``frames`` and score them against the input poses."""
    found = detect_video(frames, config, progress=progress, fps=held_out.poses.fps)
    scores: dict[str, PartScore] = pose_scores(held_out.output_poses(), found, held_out.style)
    return {part: scores[part].to_dict() for part in PARTS}
