"""The editor's loop on a real clip: preview the poses, retarget, change a keyframe in the
second half, preview again, retarget again.

    python benchmarks/bench_loop.py [--seconds 10] [--model BUNDLE] [--threads 1] [--quick]
                                    [--json out.json]

Times, in order, in one fresh process with its own empty pose cache (so the first preview
detects the source's poses and everything after reads them from the cache, as in Blender):

    first preview     preview-poses of the clip: pose detection, normalization, drawing
    updated preview   the same with the scale changed from the clip's middle on: drawing only
    full retarget     a fresh transfer job of the clip with the original adjustments
    partial rerun     that job run again with the changed scale: the frames before the
                      first changed one are kept, the rest are made again
    fresh rerun       the changed job in a new folder, for comparison (everything made)

and ``partial / fresh``: the share of a full regeneration that a change in the second half
costs (about one half plus the job's fixed costs: loading the networks, the video).

The clip is the first ``--seconds`` of ``../shared/data/source_juggle.mp4`` where present,
else the demo performer dancing; the model is the built-in demo bundle unless ``--model``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import (SHARED_DATA, run_child, script_arguments,  # noqa: E402
                               start, write_json)

CLIP = SHARED_DATA / "source_juggle.mp4"
CHANGED_SCALE = 1.15  # from the clip's middle on: a keyframe moved in the second half


def source_clip(seconds: float, tmp: Path) -> tuple[Path, float]:
    """The real clip where present, else the demo performer; and its frame rate."""
    from backend.video import probe

    if CLIP.is_file():
        return CLIP, probe(CLIP).fps
    from backend.demo import make_demo_clip

    path = tmp / "dance.mp4"
    make_demo_clip(path, "dance", n_frames=round(seconds * 30), fps=30.0, progress=False)
    return path, 30.0


def child(args: list[str]) -> None:
    """The whole loop; prints its timings as one JSON line."""
    source, model, frames, out = Path(args[0]), Path(args[1]), int(args[2]), Path(args[3])
    threads = int(args[4])
    os.environ["EVERYBODY_DANCE_CACHE"] = str(out / "cache")  # poses detected once, here
    from backend.normalize import Adjustments
    from backend.pose_preview import PosePreviewJob, run_pose_preview
    from backend.transfer import TransferJob, run_transfer

    changed = Adjustments(scale=[1.0] * (frames // 2) + [CHANGED_SCALE] * (frames - frames // 2))
    times: dict[str, float] = {}

    def timed(name: str, fn) -> Any:
        began = time.perf_counter()
        result = fn()
        times[name] = round(time.perf_counter() - began, 3)
        return result

    def preview(adjustments: Adjustments) -> Any:
        return run_pose_preview(PosePreviewJob(source, model, out / "preview", 0, frames,
                                               adjustments=adjustments), progress=False)

    def job(folder: str, adjustments: Adjustments) -> TransferJob:
        return TransferJob(source, model, out / folder, 0, frames, adjustments=adjustments,
                           device="cpu", threads=threads)

    timed("first preview", lambda: preview(Adjustments()))
    timed("updated preview", lambda: preview(changed))
    timed("full retarget", lambda: run_transfer(job("job", Adjustments())))
    timed("partial rerun", lambda: run_transfer(job("job", changed)))
    kept = json.loads((out / "job" / "status.json").read_text()).get("resumed_from")
    timed("fresh rerun", lambda: run_transfer(job("fresh", changed)))
    same = all((out / "job" / "frames" / p.name).read_bytes() == p.read_bytes()
               for p in sorted((out / "fresh" / "frames").iterdir()))
    print(json.dumps({"frames": frames, "times": times, "kept": kept, "identical": same}))


def summary(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    times = results["times"]
    return [("loop: updated preview", f"{times['updated preview']:.2f} s",
             f"first {times['first preview']:.2f} s (with pose detection)"),
            ("loop: partial / fresh rerun", f"{results['partial_over_fresh']:.2f}",
             f"{results['kept']} of {results['frames']} frames kept; identical: "
             f"{'yes' if results['identical'] else 'NO'}")]


def main() -> None:
    parser = script_arguments(__doc__, child)
    if parser is None:
        return
    parser.add_argument("--seconds", type=float, default=10.0, help="of the clip (default 10)")
    parser.add_argument("--model", type=Path, default=None, help="bundle (default: the demo's)")
    parser.add_argument("--threads", type=int, default=0,
                        help="threads per network operation (default 0: the project's rule)")
    parser.add_argument("--quick", action="store_true", help="3 seconds of the clip")
    args = parser.parse_args()
    from backend.demo.run import DEMO_BUNDLE

    results = start({"benchmark": "loop"})
    seconds = 3.0 if args.quick else args.seconds
    with tempfile.TemporaryDirectory() as tmp:
        source, fps = source_clip(seconds, Path(tmp))
        model = args.model or DEMO_BUNDLE
        frames = round(seconds * fps)
        print(f"{source.name}, {frames} frames ({seconds:g} s); model {model}")
        run = run_child(Path(__file__).resolve(), [str(source), str(model), str(frames),
                                                   str(Path(tmp) / "loop"), str(args.threads)])
    times = run["times"]
    for name, value in times.items():
        print(f"  {name:<16} {value:8.2f} s")
    ratio = times["partial rerun"] / times["fresh rerun"]
    print(f"  partial / fresh  {ratio:8.2f}   ({run['kept']} of {frames} frames kept; "
          f"frames identical to the fresh run: {'yes' if run['identical'] else 'NO'})")
    results.update(source=str(source), model=str(model), **run,
                   partial_over_fresh=round(ratio, 3))
    write_json(args.json, results)


if __name__ == "__main__":
    main()
