"""Run every benchmark, write one JSON with all their figures, and print a summary table.

    python benchmarks/run_all.py [--quick] [--only poses onnx transfer train precision compare
                                 threads loop cluster]
                                 [--json runs/benchmarks.json]
    python -m benchmarks --quick            (the same)

Each script runs as its own process (its output appears as it goes) and writes its JSON to a
temporary file; this merges them under ``results.<name>`` with the machine, the arguments and
each script's wall time, writes ``--json`` (default ``runs/benchmarks.json``, which git
ignores) and ends with one table of the main figures. ``--quick`` runs each script's quick
configuration (a few minutes on a 2-core laptop CPU):

    poses      --quick   30 frames detected, 100 labels per size, a 300-frame long input
    onnx       --quick   tiny and cpu-small, one round
    transfer   --quick --configs cpu-small   20 frames; the 10 s / 60 s check at 4 fps
    train      --quick   tiny and cpu-small, every stage, 2-3 steps
    precision  --quick   cpu-small: fp32 against bf16, every stage, 2 alternating rounds
    compare    --quick   tiny and cpu-small, 2 rounds
    threads    --quick   cpu-small: default vs the rule's threads, idle and beside a busy process
    loop       --quick   the editor's loop on 3 s of a clip: previews, full and partial reruns
    cluster    --quick   4 jobs of 6 frames in process vs as tasks of a local Ray cluster

Without ``--quick`` every script runs its default configuration (paper-global included in
onnx and transfer: allow tens of minutes on a CPU). A script that fails is reported and the
others still run; the exit status is then 1.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks import (bench_cluster, bench_compare, bench_loop, bench_onnx,  # noqa: E402
                        bench_poses, bench_precision, bench_threads, bench_train,
                        bench_transfer)
from benchmarks.common import REPO, print_table, start, write_json  # noqa: E402

HERE = Path(__file__).resolve().parent


class Script:
    """One benchmark script: its file, its quick arguments and its summary rows."""

    def __init__(self, module: Any, quick: list[str]) -> None:
        self.path = HERE / f"{module.__name__.rsplit('.', 1)[-1]}.py"
        self.quick = quick
        self.summary: Callable[[dict], list[tuple[str, str, str]]] = module.summary


SCRIPTS = {
    "poses": Script(bench_poses, ["--quick"]),
    "onnx": Script(bench_onnx, ["--quick"]),
    "transfer": Script(bench_transfer, ["--quick", "--configs", "cpu-small"]),
    "train": Script(bench_train, ["--quick"]),
    "precision": Script(bench_precision, ["--quick"]),
    "compare": Script(bench_compare, ["--quick"]),
    "threads": Script(bench_threads, ["--quick"]),
    "loop": Script(bench_loop, ["--quick"]),
    "cluster": Script(bench_cluster, ["--quick"]),
}


def run_script(name: str, quick: bool, folder: Path) -> dict[str, Any]:
    """Run one script (output to this terminal); its figures, or the error."""
    script = SCRIPTS[name]
    out = folder / f"{name}.json"
    command = [sys.executable, str(script.path), *(script.quick if quick else []), "--json",
               str(out)]
    print(f"\n=== {name}: {' '.join(Path(c).name if i < 2 else c for i, c in enumerate(command))}",
          flush=True)
    began = time.perf_counter()
    done = subprocess.run(command, cwd=REPO, check=False)
    seconds = round(time.perf_counter() - began, 1)
    if done.returncode != 0 or not out.is_file():
        return {"error": f"exit status {done.returncode}", "wall_seconds": seconds}
    return {**json.loads(out.read_text()), "wall_seconds": seconds}


def print_summary(results: dict[str, Any]) -> None:
    rows: list[tuple[str, str, str]] = []
    for name, figures in results.items():
        if "error" in figures:
            rows.append((name, "FAILED", figures["error"]))
            continue
        rows += SCRIPTS[name].summary(figures)
    print_table(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="each script's quick configuration")
    parser.add_argument("--only", nargs="+", choices=list(SCRIPTS), default=list(SCRIPTS),
                        help="run only these scripts")
    parser.add_argument("--json", type=Path, default=REPO / "runs" / "benchmarks.json",
                        help="where to write all the figures (default %(default)s)")
    args = parser.parse_args()
    everything: dict[str, Any] = start({})
    everything.update({"quick": args.quick, "started": time.strftime("%Y-%m-%d %H:%M:%S"),
                       "results": {}})
    with tempfile.TemporaryDirectory() as tmp:
        for name in args.only:
            everything["results"][name] = run_script(name, args.quick, Path(tmp))
    print_summary(everything["results"])
    write_json(args.json, everything)
    if any("error" in r for r in everything["results"].values()):
        sys.exit(1)


if __name__ == "__main__":
    main()
