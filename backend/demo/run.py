"""The built-in example that runs anywhere: ``python -m backend demo -o OUT_DIR``.

The demo performer (in its "red" look) dances the built-in dance; the bundled demo model,
trained with this project's own commands on a video of the performer in its "teal" look
(``python -m training.demo_bundle``), makes the teal performer dance it. Everything runs
through the real pipeline: MediaPipe detection on the rendered source, normalization to the
model's target, labels, the temporal generator and the face residual. With ``source`` the
moves of any video are used instead of the built-in dance.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..transfer import TransferJob, TransferResult, run_transfer
from .clip import make_clip
from .motion import dance_motion
from .performer import LOOKS

DEMO_BUNDLE = Path(__file__).resolve().parent / "bundle"


@dataclass(frozen=True)
class DemoConfig:
    seconds: float = 8.0
    fps: float = 30.0
    size: tuple[int, int] = (384, 512)  # the rendered source dance (width, height)
    seed: int = 0
    look: str = "red"


def run_demo(out_dir: str | Path, config: DemoConfig = DemoConfig(), source: str | Path | None = None,
             bundle: str | Path = DEMO_BUNDLE, progress: bool = True) -> TransferResult:
    """Write the demo's source clip and transfer job into ``out_dir``; return the transfer's result."""
    bundle = Path(bundle)
    if not (bundle / "manifest.json").is_file():
        raise InputError(bundle, "the demo model bundle is missing; make it with "
                                 "`python -m training.demo_bundle` (about half an hour on 2 CPU cores)")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    if source is None:
        source = out / "source.mp4"
        if not source.exists():
            n = int(round(config.seconds * config.fps))
            make_clip(source, dance_motion(n, config.fps, config.size, seed=config.seed),
                      LOOKS[config.look], progress=progress)
    job = TransferJob(source=Path(source), model=bundle, output_dir=out / "transfer", side_by_side=True)
    return run_transfer(job, progress=progress)
