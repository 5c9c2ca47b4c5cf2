"""Train the built-in demo performer's model bundle (``backend/demo/bundle``) with our own commands.

    python -m training.demo_bundle [-o backend/demo/bundle] [--frames 480] [--epochs-global 5]

It renders a target video of the demo performer moving freely (walking towards and away from
the camera), prepares it exactly as a user's video (real MediaPipe detection), trains the
``cpu-small`` networks at a portrait resolution that suits one standing person, and exports
the bundle. The perceptual (VGG) loss is off, so that it runs where VGG19's weights cannot be
downloaded (pix2pix's L1 term instead); the performer's room is static, so the preset trains
a matte over its plate. On 2 CPU cores it takes about 20 minutes.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from backend.checks import CheckedParser, Int
from backend.demo import LOOKS, make_demo_clip

from .data.prepare import PrepareOptions, prepare
from .export import export_bundle
from .options import EPOCHS, preset
from .trainer import train

DEMO_BUNDLE = Path(__file__).resolve().parents[1] / "backend" / "demo" / "bundle"
SIZE = (192, 256)  # training resolution (width, height): a standing person fills it
CLIP_SIZE = (384, 512)  # the rendered target video, same aspect
TARGET_LOOK = "teal"  # the source dance is drawn in another look ("red")


def main(argv: list[str] | None = None) -> int:
    parser = CheckedParser(prog="python -m training.demo_bundle",
                           description=__doc__.split("\n\n")[0])
    parser.add_argument("-o", "--output", type=Path, default=DEMO_BUNDLE)
    parser.add_argument("--frames", type=Int(8, 100_000).parse, default=480,
                        help="length of the target video (30 fps)")
    parser.add_argument("--epochs-global", type=EPOCHS.parse, default=5.0,
                        help="epochs of the global stage (5)")
    parser.add_argument("--epochs-face", type=EPOCHS.parse, default=1.0,
                        help="epochs of the face stage (1)")
    parser.add_argument("--work", type=Path, default=None, help="keep the run here (default: a temp folder)")
    args = parser.parse_args(argv)

    opts = preset("cpu-small")
    opts.size = SIZE
    opts.loss.perceptual = "none"
    opts.loss.lambda_l1 = 10.0  # as the README advises without the VGG loss
    opts.runtime.threads = 1  # small convolutions: extra threads only synchronise
    opts.schedule.epochs_global = args.epochs_global
    opts.schedule.epochs_face = args.epochs_face
    with tempfile.TemporaryDirectory() as tmp:
        work = args.work or Path(tmp)
        work.mkdir(parents=True, exist_ok=True)
        video = work / "demo_target.mp4"
        if not video.exists():
            make_demo_clip(video, "target", n_frames=args.frames, fps=30.0, size=CLIP_SIZE, seed=1,
                           appearance=LOOKS[TARGET_LOOK])
        run = work / "run"
        prepare(video, run, PrepareOptions(size=SIZE, label_sizes=(SIZE,), preset="cpu-small", holdout=0.1))
        train(run, opts)
        export_bundle(run, args.output, name="demo-performer")
    print(f"wrote {args.output}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
