"""Speed and memory of stage 1-2: pose detection and label rendering.

    python benchmarks/bench_poses.py [--video PATH] [--frames 120] [--long 1200] [--workers N]
                                     [--rounds 2] [--quick] [--json out.json]

Prints frames per second of MediaPipe Holistic detection (with our OpenPose mapping and
subject tracking) and of label rendering at the paper's sizes, and the peak memory of a
detection run on a short and on a long input (made by looping the video), which must be
about equal: frames are streamed, never held.
Detection in chunks (``--workers N`` processes, default: the cores this process may use, at
least 2): the long input detected by 1 and by N processes in alternating rounds (both see the
same load), the speed-up as a ratio, and the memory of the N-process run on the short and the
long input: the parent's peak and the largest worker's (each worker streams its own chunk).
Default video: ../shared/data/target_taiji.mp4, else a demo-performer clip made on the fly.
``--quick``: 30 frames for the speed figures, 100 labels per size, a 300-frame long input,
one round.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from backend.pose.chunks import available_cores  # noqa: E402
from benchmarks.common import (SHARED_DATA, run_child, script_arguments, start,  # noqa: E402
                               timed, write_json)

LABEL_SIZES = ("1024x512", "512x256", "256x128")


def child(args: list[str]) -> None:
    """Measurements that run in their own process (see common.run_child)."""
    import json

    kind, source, frames = args[0], Path(args[1]), int(args[2])
    if kind == "detect":  # source: a video; args[3]: workers; args[4], if given: save the track
        result = detect_child(source, frames, int(args[3]), args[4] if len(args) > 4 else None)
    else:  # source: a saved track whose poses are drawn at size args[3]
        from backend.labels import LabelStyle, render_label
        from backend.pose.track import PoseTrack

        w, h = (int(v) for v in args[3].split("x"))
        track = PoseTrack.load(source)

        def render() -> int:
            for i in range(frames):
                render_label(track.frame(i % len(track)), track.size, (w, h), LabelStyle())
            return frames

        result = timed(render)
    print(json.dumps(result))


def detect_child(source: Path, frames: int, workers: int, save: str | None) -> dict:
    """Detection of ``frames`` frames by ``workers`` processes: speed, this process's peak
    memory and the largest worker process's (0 for one process: it detects here), and the CPU
    seconds of all of them (divided by the wall time: the cores the run had in effect)."""
    import resource

    from backend.pose.detector import HolisticConfig, detect_video

    chunks: dict = {}

    def detect() -> int:
        track = detect_video(source, HolisticConfig(workers=workers), stop=frames,
                             progress=False, use_cache=False)
        chunks.update(chunks=len(track.detector.get("chunks", [None])),
                      detected_again=track.detector.get("detected_again", []))
        if save:
            track.save(save)
        return len(track)

    result = timed(detect)
    usage = [resource.getrusage(who) for who in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN)]
    cpu = sum(u.ru_utime + u.ru_stime for u in usage)
    # ru_maxrss of the children: the largest child's peak (KiB on Linux), once they are joined
    largest = usage[1].ru_maxrss / 1024.0
    return {**result, **chunks, "workers": workers, "cpu_seconds": round(cpu, 1),
            "cores_used": round(cpu / result["seconds"], 2),
            "worker_peak_rss_mb": round(largest, 1) if workers > 1 else 0.0}


def parallel(script: Path, long_video: Path, n_frames: int, workers: int, rounds: int) -> dict:
    """1 and ``workers`` processes on the long input in alternating rounds; the short input
    (a tenth) with ``workers`` for memory."""
    runs: dict[int, list[dict]] = {1: [], workers: []}
    for _ in range(rounds):
        for w in (1, workers):
            runs[w].append(run_child(script, ["detect", str(long_video), str(n_frames), str(w)]))
    best = {w: min(r, key=lambda x: x["seconds"]) for w, r in runs.items()}
    seconds = {str(w): [r["seconds"] for r in rs] for w, rs in runs.items()}
    short = run_child(script, ["detect", str(long_video), str(max(n_frames // 10, 60)), str(workers)])
    long = best[workers]
    return {"workers": workers, "frames": n_frames, "rounds": rounds, "seconds": seconds,
            "one": best[1], "many": long,
            "speedup": round(best[1]["seconds"] / long["seconds"], 2),
            "memory": {"short": short, "long": long,
                       "parent_ratio": round(long["peak_rss_mb"] / short["peak_rss_mb"], 3),
                       "worker_ratio": round(long["worker_peak_rss_mb"]
                                             / max(short["worker_peak_rss_mb"], 1.0), 3)}}


def print_parallel(p: dict) -> None:
    one, many, mem = p["one"], p["many"], p["memory"]
    print(f"detection in chunks ({p['frames']} frames, best of {p['rounds']} alternating "
          f"rounds): 1 process {one['per_second']:.2f} frames/s, {p['workers']} processes "
          f"{many['per_second']:.2f} frames/s ({many['chunks']} chunks, detected again: "
          f"{many['detected_again'] or 'none'}): {p['speedup']}x")
    print(f"  CPU seconds {one['cpu_seconds']} vs {many['cpu_seconds']} (the split's own cost); "
          f"cores in effect {one['cores_used']} vs {many['cores_used']} (the speed-up's ceiling "
          f"on a shared machine)")
    print(f"  memory with {p['workers']} processes, {mem['short']['items']} vs "
          f"{mem['long']['items']} frames: parent {mem['short']['peak_rss_mb']} vs "
          f"{mem['long']['peak_rss_mb']} MiB (ratio {mem['parent_ratio']}), largest worker "
          f"{mem['short']['worker_peak_rss_mb']} vs {mem['long']['worker_peak_rss_mb']} MiB "
          f"(ratio {mem['worker_ratio']}; flat = about 1)")


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
    parser = script_arguments(__doc__, child)
    if parser is None:
        return
    parser.add_argument("--video", type=Path, default=None)
    parser.add_argument("--frames", type=int, default=120, help="frames for the speed figures")
    parser.add_argument("--long", type=int, default=1200, help="frames of the long input")
    parser.add_argument("--labels", type=int, default=500, help="labels drawn per size")
    parser.add_argument("--workers", type=int, default=max(2, available_cores()),
                        help="processes for the detection in chunks (default: the cores, at least 2)")
    parser.add_argument("--rounds", type=int, default=2,
                        help="alternating rounds of 1 and --workers processes")
    parser.add_argument("--quick", action="store_true",
                        help="--frames 30 --labels 100 --long 300 --rounds 1")
    args = parser.parse_args()
    if args.quick:
        args.frames, args.labels, args.long, args.rounds = 30, 100, 300, 1
    script = Path(__file__).resolve()
    results: dict = start({})
    with tempfile.TemporaryDirectory() as tmp:
        video = args.video or default_video(Path(tmp))
        results["video"] = str(video)
        print(f"video: {video}")
        track = Path(tmp) / "track.npz"
        det = run_child(script, ["detect", str(video), str(args.frames), "1", str(track)])
        results["detection"] = det
        print(f"pose detection:   {det['per_second']:7.2f} frames/s  (peak {det['peak_rss_mb']} MiB)")
        for size in LABEL_SIZES:
            lab = run_child(script, ["labels", str(track), str(args.labels), size])
            results[f"labels_{size}"] = lab
            print(f"labels {size:>9}: {lab['per_second']:7.2f} frames/s")
        long_video = looped_clip(video, args.long, Path(tmp))
        short = run_child(script, ["detect", str(long_video), str(args.long // 10), "1"])
        full = run_child(script, ["detect", str(long_video), str(args.long), "1"])
        results["memory"] = {"short": short, "long": full,
                             "ratio": round(full["peak_rss_mb"] / short["peak_rss_mb"], 3),
                             "time_ratio": round(full["seconds"] / short["seconds"], 2)}
        print(f"detection peak memory: {short['items']} frames {short['peak_rss_mb']} MiB, "
              f"{full['items']} frames {full['peak_rss_mb']} MiB "
              f"(ratio {results['memory']['ratio']}; flat = about 1); time ratio "
              f"{results['memory']['time_ratio']} for {full['items'] / short['items']:g}x the "
              f"frames (below that: the detector's start-up is paid once)")
        results["parallel"] = parallel(script, long_video, args.long, args.workers, args.rounds)
        print_parallel(results["parallel"])
    write_json(args.json, results)


def summary(results: dict) -> list[tuple[str, str, str]]:
    """Rows (what, figure, detail) for benchmarks/run_all.py's table."""
    rows = []
    if "detection" in results:
        d = results["detection"]
        rows.append(("pose detection", f"{d['per_second']:.2f} frames/s",
                     f"{d['items']} frames, peak {d['peak_rss_mb']:.0f} MiB"))
    for size in LABEL_SIZES:
        if f"labels_{size}" in results:
            lab = results[f"labels_{size}"]
            rows.append((f"labels {size}", f"{lab['per_second']:.1f} frames/s",
                         f"peak {lab['peak_rss_mb']:.0f} MiB"))
    if "memory" in results:
        m = results["memory"]
        rows.append(("detection memory long/short", f"{m['ratio']:.2f}x",
                     f"{m['short']['items']} vs {m['long']['items']} frames: "
                     f"{m['short']['peak_rss_mb']:.0f} vs {m['long']['peak_rss_mb']:.0f} MiB"))
    if "parallel" in results:
        p = results["parallel"]
        rows.append((f"detection {p['workers']} vs 1 processes", f"{p['speedup']:.2f}x",
                     f"{p['frames']} frames: {p['one']['per_second']:.1f} vs "
                     f"{p['many']['per_second']:.1f} frames/s"))
        mem = p["memory"]
        rows.append(("chunked detection memory long/short", f"{mem['worker_ratio']:.2f}x",
                     f"largest worker {mem['short']['worker_peak_rss_mb']:.0f} vs "
                     f"{mem['long']['worker_peak_rss_mb']:.0f} MiB, parent "
                     f"{mem['parent_ratio']:.2f}x"))
    return rows


if __name__ == "__main__":
    main()
