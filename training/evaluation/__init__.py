"""The paper's evaluation of a trained model on its run's held-out frames (`run.evaluate`).

Modules: `heldout_set` (the ground truth), `methods` (what is compared, drawn by the transfer),
`image_metrics` (SSIM, regions, flicker), `lpips` (the perceptual metric and its weights),
`pose_metrics` (keypoints found again on the outputs), `scoring`, `report`.
"""

from .lpips import LPIPS, LpipsWeights, load_lpips
from .run import EvalOptions, evaluate

__all__ = ["EvalOptions", "LPIPS", "LpipsWeights", "evaluate", "load_lpips"]
