"""The learning rate of each training step.

Each stage trains for its epochs (or ``steps``) with Adam (lr 2e-4, betas 0.5/0.999), the
learning rate constant for the first half and decaying linearly to zero over the second half
(pix2pixHD's niter / niter_decay, applied per step here rather than per epoch). The stage's
step count fixes the schedule; a resumed run with another ``--steps`` recomputes it.
"""

from __future__ import annotations

from .options import TrainOptions
from .step import Optimizers


def lr_factor(step: int, total: int, constant_fraction: float) -> float:
    """pix2pixHD's schedule: 1 for the first ``constant_fraction`` of the steps, then a
    linear decay that reaches 0 at ``total``."""
    constant = round(total * constant_fraction)
    if step < constant or total <= constant:
        return 1.0
    return max(0.0, (total - step) / (total - constant))


def set_learning_rates(optimizers: Optimizers, opts: TrainOptions, step: int, total: int,
                       fixed_trunk_steps: int) -> float:
    lr = opts.optim.lr * lr_factor(step, total, opts.optim.constant_fraction)
    for group in optimizers.generator.param_groups:
        held = group.get("name") == "global_trunk" and step < fixed_trunk_steps
        group["lr"] = 0.0 if held else lr
    for group in optimizers.discriminator.param_groups:
        group["lr"] = lr
    return lr
