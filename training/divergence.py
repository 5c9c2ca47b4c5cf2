"""Divergence: where the losses are measured (each logged step, each checkpoint, the first step
of a call), a loss that is not finite or G's total grown a hundredfold stops the stage before
a checkpoint keeps those weights (`DivergenceWatch`): the last good checkpoint stays, and a
resume with a smaller ``--lr`` continues from it.
"""

from __future__ import annotations

import math

from backend.errors import InputError


class Diverged(InputError):
    """A stage's losses stopped being finite or grew a hundredfold: the options (usually
    the learning rate) make training fail; the last good checkpoint stays."""


class DivergenceWatch:
    """Whether a stage's losses diverge: one that is not finite, or G's total grown to
    ``GROWTH`` times the smallest measured in this call (from its first step on)."""

    GROWTH = 100.0

    def __init__(self, first_step: int) -> None:
        self.first_step = first_step
        self.least: tuple[float, int] | None = None  # (G's total, at step)

    def problem(self, losses: dict[str, float], step: int) -> str | None:
        """What diverged at ``step``, in words, or None."""
        broken = [name for name, value in losses.items() if not math.isfinite(value)]
        if broken:
            return f"{', '.join(broken)} {'is' if len(broken) == 1 else 'are'} not finite"
        total = losses.get("G_total")
        if total is None:
            return None
        if self.least is not None and total > self.GROWTH * max(self.least[0], 1e-6):
            least, at = self.least
            return (f"G's loss grew from {least:.4g} (step {at}) to {total:.4g}, more than "
                    f"{self.GROWTH:g} times")
        if self.least is None or total < self.least[0]:
            self.least = (total, step)
        return None
