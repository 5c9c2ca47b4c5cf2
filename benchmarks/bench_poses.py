"""Speed and memory of stage 1-2: pose detection and label rendering.

    python benchmarks/bench_poses.py [--video PATH] [--frames 120] [--json out.json]

Prints frames per second of MediaPipe Holistic detection (with our OpenPose mapping and
subject tracking) and of label rendering at the paper's sizes, and the peak memory of a
detection run on a short and on a long input (made by looping the video), which must be
about equal: frames are streamed, never held.
Default video: ../shared/data/target_taiji.mp4, else a demo-performer clip made on the fly.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import SHARED_DATA, machine, run_child, timed, write_json  # noqa: E402


def child(args: list[str]) -> None:
    """Measurements that run in their own process (see common.run_child)."""
    import json

    kind, video, frames = args[0], Path(args[1]), int(args[2])
    if kind == "detect":
        from backend.pose.detector import detect_video

        result = timed(lambda: len(detect_video(video, stop=frames, progress=False, use_cache=False)))
    else:
        from backend.labels import LabelStyle, render_label
        from backend.pose.detector import detect_video

        w, h = (int(v) for v in args[3].split("x"))
        track = detect_video(video, stop=min(frames, 30), progress=False, use_cache=False)

        def render() -> int:
            for i in range(frames):
                render_label(track.frame(i % len(track)), track.size, (w, h), LabelStyle())
            return frames

        result = timed(render)
    print(json.dumps(result))


def looped_clip(video: Path, n_frames: int, folder: Path) -> Path:
    """A clip of ``n_frames`` made by playing ``video`` forwards and backwards (a long input)."""
    from backend.video import Mp4Writer, probe, read_frames

    info = probe(video)
    path = folder / f"long_{n_frames}.mp4"
    with Mp4Writer(path, info.frame_rate, info.size, preset="veryfast") as writer:
        written, forward = 0, True
        while written < n_frames:
            frames = list(read_frames(video, 0, min(info.frame_count, 120)))
            for frame in frames if forward else frames[::-1]:
                if written == n_frames:
                    break
                writer.write(frame)
                written += 1
            forward = not forward
    return path


def default_video(folder: Path) -> Path:
    real = SHARED_DATA / "target_taiji.mp4"
    if real.is_file():
        return real
    from backend.demo import dance_motion, make_clip

    path = folder / "demo.mp4"
    make_clip(path, dance_motion(240, fps=30, size=(640, 480)))
    return path


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2:])
        return
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--video", type=Path, default=None)
    parser.add_argument("--frames", type=int, default=120, help="frames for the speed figures")
    parser.add_argument("--long", type=int, default=1200, help="frames of the long input")
    parser.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = parser.parse_args()
    script = Path(__file__).resolve()
    results: dict = {"machine": machine()}
    with tempfile.TemporaryDirectory() as tmp:
        video = args.video or default_video(Path(tmp))
        results["video"] = str(video)
        print(f"video: {video}")
        det = run_child(script, ["detect", str(video), str(args.frames)])
        results["detection"] = det
        print(f"pose detection:   {det['per_second']:7.2f} frames/s  (peak {det['peak_rss_mb']} MiB)")
        for size in ("1024x512", "512x256", "256x128"):
            lab = run_child(script, ["labels", str(video), "500", size])
            results[f"labels_{size}"] = lab
            print(f"labels {size:>9}: {lab['per_second']:7.2f} frames/s")
        long_video = looped_clip(video, args.long, Path(tmp))
        short = run_child(script, ["detect", str(long_video), str(args.long // 10)])
        full = run_child(script, ["detect", str(long_video), str(args.long)])
        results["memory"] = {"short": short, "long": full,
                             "ratio": round(full["peak_rss_mb"] / short["peak_rss_mb"], 3)}
        print(f"detection peak memory: {short['items']} frames {short['peak_rss_mb']} MiB, "
              f"{full['items']} frames {full['peak_rss_mb']} MiB "
              f"(ratio {results['memory']['ratio']}; flat = about 1)")
    write_json(args.json, results)


if __name__ == "__main__":
    main()
