"""N short transfer jobs through the worker's in-process queue vs as tasks of a local Ray
cluster (``--cluster local``): wall and CPU seconds, and the cost per job.

    python benchmarks/bench_cluster.py [--jobs 6] [--frames 12] [--quick] [--json out.json]

Each way runs in a fresh process on the built-in demo bundle and a demo dance clip with its
poses given (so the figures are the transfer's, not MediaPipe's), each job its own range:

    in-process     the jobs in turn, one model cache, as `python -m backend serve` runs them
    cluster 1x     the jobs in turn, each a Ray task (`backend.cluster.run_on_cluster`)
    cluster all    all jobs submitted at once, as `serve --cluster` does (Ray runs as many
                   together as the cluster has CPUs)

CPU seconds count this process and every process it started (Ray's GCS, raylet and worker
processes included) over the jobs; starting the embedded Ray is timed apart. The figure to
watch is the overhead per job: what a Ray task costs over the same job in process (its worker
loads the model afresh; the caller polls status.json).
"""

from __future__ import annotations

import json
import os
import resource
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.common import run_child, script_arguments, start, write_json  # noqa: E402

WAYS = ("in-process", "cluster 1x", "cluster all")


def descendants_cpu_seconds() -> float:
    """User + system CPU seconds of the live processes below this one (from /proc)."""
    parents: dict[int, int] = {}
    times: dict[int, float] = {}
    tick = os.sysconf("SC_CLK_TCK")
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue  # gone meanwhile
        parents[int(entry.name)] = int(fields[1])
        times[int(entry.name)] = (int(fields[11]) + int(fields[12])) / tick
    mine, total = {os.getpid()}, 0.0
    changed = True
    while changed:
        changed = False
        for pid, parent in parents.items():
            if parent in mine and pid not in mine:
                mine.add(pid)
                changed = True
    for pid in mine - {os.getpid()}:
        total += times[pid]
    return total


def cpu_seconds() -> float:
    """This process, its waited-for children and its live descendants."""
    own = resource.getrusage(resource.RUSAGE_SELF)
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return (own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime
            + descendants_cpu_seconds())


def measured(fn: Callable[[], None]) -> dict[str, float]:
    cpu, began = cpu_seconds(), time.perf_counter()
    fn()
    return {"wall_s": round(time.perf_counter() - began, 3),
            "cpu_s": round(cpu_seconds() - cpu, 3)}


def child(args: list[str]) -> None:
    """One way of running the jobs; prints its figures as one JSON line."""
    way, source, poses, jobs, frames, out = (args[0], Path(args[1]), Path(args[2]), int(args[3]),
                                             int(args[4]), Path(args[5]))
    from backend.demo.run import DEMO_BUNDLE
    from backend.transfer import TransferJob, run_transfer
    from backend.transfer.model_cache import ModelCache

    def job(k: int) -> TransferJob:
        return TransferJob(source=source, model=DEMO_BUNDLE, output_dir=out / f"job{k}",
                           frame_start=k * frames, frame_stop=(k + 1) * frames, device="cpu",
                           poses=poses)

    figures: dict[str, Any] = {"each_wall_s": []}

    def each(run: Callable[[int], Any]) -> Callable[[], None]:
        def in_turn() -> None:
            for k in range(jobs):
                began = time.perf_counter()
                run(k)
                figures["each_wall_s"].append(round(time.perf_counter() - began, 3))
        return in_turn

    if way == "in-process":
        cache = ModelCache()
        figures["jobs"] = measured(each(lambda k: run_transfer(job(k), models=cache)))
    else:
        from backend.cluster import connect, run_on_cluster

        figures["ray_start"] = measured(lambda: connect("local"))

        def all_at_once() -> None:
            threads = [threading.Thread(target=run_on_cluster, args=(job(k), "local"))
                       for k in range(jobs)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()

        one_by_one = each(lambda k: run_on_cluster(job(k), "local"))
        figures["jobs"] = measured(all_at_once if way == "cluster all" else one_by_one)
    done = sum(len(list((out / f"job{k}" / "frames").glob("*.png"))) for k in range(jobs))
    figures["frames"] = done
    print(json.dumps(figures))


def summary(results: dict[str, Any]) -> list[tuple[str, str, str]]:
    return [("cluster: overhead per job", f"{results['overhead_per_job_s']:.2f} s",
             f"wall, one at a time (CPU {results['cpu_overhead_per_job_s']:.2f} s; later jobs "
             f"{results['later_job_overhead_s']:.2f} s); "
             f"{results['jobs']} jobs of {results['frames']} frames, all at once "
             f"{results['ways']['cluster all']['jobs']['wall_s']:.1f} s vs in process "
             f"{results['ways']['in-process']['jobs']['wall_s']:.1f} s")]


def main() -> None:
    parser = script_arguments(__doc__, child)
    if parser is None:
        return
    parser.add_argument("--jobs", type=int, default=6, help="short jobs (default 6)")
    parser.add_argument("--frames", type=int, default=12, help="frames per job (default 12)")
    parser.add_argument("--quick", action="store_true", help="4 jobs of 6 frames")
    args = parser.parse_args()
    jobs, frames = (4, 6) if args.quick else (args.jobs, args.frames)
    results = start({"benchmark": "cluster", "jobs": jobs, "frames": frames, "ways": {}})
    from backend.demo import make_demo_clip

    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "dance.mp4"
        track = make_demo_clip(source, "dance", n_frames=jobs * frames, fps=30.0, size=(256, 256),
                               progress=False)
        track.save(Path(tmp) / "dance.npz")
        print(f"{jobs} jobs of {frames} frames, demo bundle, 256x256 demo clip, poses given")
        for way in WAYS:
            run = run_child(Path(__file__).resolve(), [
                way, str(source), str(Path(tmp) / "dance.npz"), str(jobs), str(frames),
                str(Path(tmp) / way.replace(" ", "-"))], timeout=900)
            assert run["frames"] == jobs * frames, run
            results["ways"][way] = run
            start_text = (f"  (Ray start {run['ray_start']['wall_s']:.1f} s wall, "
                          f"{run['ray_start']['cpu_s']:.1f} s CPU)" if "ray_start" in run else "")
            print(f"  {way:<12} {run['jobs']['wall_s']:7.2f} s wall {run['jobs']['cpu_s']:7.2f} s "
                  f"CPU{start_text}", flush=True)
    ways = results["ways"]
    results["overhead_per_job_s"] = round(
        (ways["cluster 1x"]["jobs"]["wall_s"] - ways["in-process"]["jobs"]["wall_s"]) / jobs, 3)
    results["cpu_overhead_per_job_s"] = round(
        (ways["cluster 1x"]["jobs"]["cpu_s"] - ways["in-process"]["jobs"]["cpu_s"]) / jobs, 3)
    later = [sum(ways[w]["each_wall_s"][1:]) / max(1, jobs - 1) for w in WAYS[:2]]
    results["later_job_overhead_s"] = round(later[1] - later[0], 3)
    results["first_job_overhead_s"] = round(
        ways["cluster 1x"]["each_wall_s"][0] - ways["in-process"]["each_wall_s"][0], 3)
    print(f"  overhead per job: {results['overhead_per_job_s']:.2f} s wall, "
          f"{results['cpu_overhead_per_job_s']:.2f} s CPU (cluster 1x over in-process); the "
          f"first job {results['first_job_overhead_s']:.2f} s (a Ray worker process imports the "
          f"backend), each later one {results['later_job_overhead_s']:.2f} s")
    write_json(args.json, results)


if __name__ == "__main__":
    main()
