"""Train a model from a target video: prepare -> train -> export, as one detached process.

Run by the add-on with the *backend's* Python (never Blender's) and detached from Blender, so
training survives Blender closing::

    PYTHON train_pipeline.py --run-dir RUN --video TARGET.mp4 --preset cpu-small --name NAME
                             [--start N --stop M] [--train-arg=--perceptual --train-arg=none]
                             [--resume]

It runs ``python -m training prepare | train | export`` one after the other and records where
it is in ``RUN/pipeline.json`` (replaced atomically); ``python -m training train`` itself
writes ``RUN/status.json`` with the step, losses and ETA. SIGTERM (the panel's Cancel) is
passed on to the running step, which checkpoints and stops; ``--resume`` continues.
Standard library only: this file is also imported by the add-on for its constants.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PIPELINE_FILE = "pipeline.json"
STATUS_FILE = "status.json"
BUNDLE_DIR = "bundle"
LOG_FILE = "pipeline.log"
STOP_FILE = "stop_requested"  # created by the add-on's Cancel
STEPS = ("prepare", "train", "export")
EXIT_STOPPED = 130  # the training CLI's "stopped, resumable"


def write_json_atomic(path: Path, data: dict) -> None:
    """Replace ``path`` with ``data`` so that a reader never sees half a file."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(data, f, indent=2)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def open_log(path: Path):
    """``path`` opened to append text (made when missing), never through a symbolic link: a
    run folder from elsewhere whose pipeline.log points at another file gets `OSError`
    naming it, and that file stays as it was. (The backend's `folders.open_append` does the
    same; this script and the add-on run without the backend on their path.)"""
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    if path.is_symlink():  # also where there is no O_NOFOLLOW (Windows)
        raise OSError(f"{path} is a symbolic link; the training log is never written through "
                      f"one: remove it to use this run folder")
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | nofollow, 0o644)
    return os.fdopen(fd, "a", encoding="utf-8")


class Pipeline:
    """The three steps, the record in pipeline.json, and stopping on SIGTERM."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.run_dir: Path = args.run_dir.resolve()
        self.child: subprocess.Popen | None = None
        self.stopping = False
        self.record = {"state": "running", "step": None, "pid": os.getpid(),
                       "video": str(args.video), "preset": args.preset, "name": args.name,
                       "start": args.start, "stop": args.stop, "train_args": list(args.train_arg),
                       "bundle": str(self.run_dir / BUNDLE_DIR), "message": "",
                       "started": time.time()}

    def update(self, **fields) -> None:
        self.record.update(fields, updated=time.time())
        write_json_atomic(self.run_dir / PIPELINE_FILE, self.record)

    def on_sigterm(self, signum, frame) -> None:
        self.stopping = True
        if self.child is not None and self.child.poll() is None:
            self.child.terminate()  # the trainer checkpoints on SIGTERM and exits 130

    def commands(self) -> dict[str, list[str]]:
        a = self.args
        prepare = [sys.executable, "-m", "training", "prepare", str(a.video),
                   "-o", str(self.run_dir), "--preset", a.preset, "--no-progress"]
        if a.start is not None:
            prepare += ["--start", str(a.start)]
        if a.stop is not None:
            prepare += ["--stop", str(a.stop)]
        train = [sys.executable, "-m", "training", "train", str(self.run_dir), "--preset", a.preset,
                 "--no-progress", *a.train_arg]
        if a.resume:
            train.append("--resume")
        export = [sys.executable, "-m", "training", "export", str(self.run_dir),
                  "-o", str(self.run_dir / BUNDLE_DIR), "--name", a.name]
        return {"prepare": prepare, "train": train, "export": export}

    def run(self) -> int:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        (self.run_dir / STOP_FILE).unlink(missing_ok=True)  # a resume starts afresh
        signal.signal(signal.SIGTERM, self.on_sigterm)
        try:
            log = open_log(self.run_dir / LOG_FILE)
        except OSError as exc:
            self.update(state="failed", message=str(exc))
            return 2
        self.update(state="running", message="")
        with log:
            for step, command in self.commands().items():
                if self.stopping:
                    break
                if step == "train" and self.args.resume and _trained(self.run_dir):
                    continue
                self.update(step=step)
                log.write(f"== {step}: {' '.join(command)}\n")
                log.flush()
                code = self._run_step(command, log)
                if self.stopping or code == EXIT_STOPPED:
                    break
                if code != 0:
                    self.update(state="failed", message=f"{step} failed (exit code {code}): "
                                                        f"{_last_error(self.run_dir / LOG_FILE)}")
                    return code
            else:
                self.update(state="done", message="model bundle written", step="export")
                return 0
        self.update(state="cancelled", message="stopped; resume to continue")
        return EXIT_STOPPED

    def _run_step(self, command: list[str], log) -> int:
        self.child = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT,
                                      stdin=subprocess.DEVNULL, cwd=self.args.backend_root)
        while True:
            try:
                return self.child.wait(timeout=1.0)
            except subprocess.TimeoutExpired:
                if not self.stopping and (self.run_dir / STOP_FILE).exists():
                    self.on_sigterm(None, None)
            except KeyboardInterrupt:  # SIGINT to the group: the child got it too
                self.stopping = True


def _trained(run_dir: Path) -> bool:
    """Whether status.json says training finished (a resume goes straight to export)."""
    try:
        return json.loads((run_dir / STATUS_FILE).read_text("utf-8")).get("state") == "done"
    except (OSError, ValueError):
        return False


def _last_error(log: Path) -> str:
    """The last line that looks like an error in the log, for the panel."""
    try:
        text = log.read_text("utf-8", "replace")
        lines = [line.strip() for line in text.splitlines() if line.strip()]
    except OSError:
        return ""
    errors = [line for line in lines
              if line.lower().startswith(("error", "traceback")) or "Error" in line]
    return (errors or lines or [""])[-1][:300]


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--run-dir", type=Path, required=True)
    p.add_argument("--video", type=Path, required=True)
    p.add_argument("--preset", default="cpu-small")
    p.add_argument("--name", required=True)
    p.add_argument("--start", type=int, default=None)
    p.add_argument("--stop", type=int, default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--train-arg", action="append", default=[],
                   help="passed on to 'python -m training train' (repeat; write --train-arg=--x)")
    p.add_argument("--backend-root", type=Path, required=True)
    return p.parse_args(argv)


if __name__ == "__main__":
    sys.exit(Pipeline(parse_args()).run())
