"""Training runs started from Blender: launch detached, read progress, cancel, resume (no bpy).

A run is a folder. ``train_pipeline.py`` (run with the backend's Python, in its own session so
that it outlives Blender) writes ``pipeline.json`` (which step, its pid, the outcome) and the
trainer writes ``status.json`` (stage, step, losses, ETA). The panel only reads those two
files, so a reopened .blend file re-attaches to a run by its folder alone.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from . import train_pipeline as pipeline
from .locations import worker_environment

PRESETS = ("cpu-small", "cpu-medium", "cpu-large", "tiny", "paper-global", "paper-local")
PIPELINE_SCRIPT = Path(pipeline.__file__).resolve()


@dataclass(frozen=True)
class TrainingRequest:
    """What "Train from Active Strip" asks for."""

    run_dir: Path
    video: Path
    name: str
    preset: str = "cpu-small"
    start: int | None = None  # source frames of the strip, [start, stop)
    stop: int | None = None
    train_args: tuple[str, ...] = ()  # extra options for 'python -m training train'

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; choose one of {', '.join(PRESETS)}")
        if not self.name.strip():
            raise ValueError("the model needs a name")


def training_options(perceptual: bool, vgg_weights: str = "") -> tuple[str, ...]:
    """Options for the trainer: without the perceptual loss, or with local VGG19 weights.

    The perceptual loss needs torchvision's ImageNet VGG19 weights, downloaded on first use;
    offline, the user points to a copy or trains without it.
    """
    if not perceptual:
        return ("--perceptual", "none")
    return ("--vgg-weights", vgg_weights) if vgg_weights.strip() else ()


def pipeline_command(python: Path, backend_root: Path, request: TrainingRequest,
                     resume: bool = False) -> list[str]:
    command = [str(python), str(PIPELINE_SCRIPT), "--run-dir", str(request.run_dir),
               "--video", str(request.video), "--preset", request.preset, "--name", request.name,
               "--backend-root", str(backend_root)]
    if request.start is not None:
        command += ["--start", str(request.start)]
    if request.stop is not None:
        command += ["--stop", str(request.stop)]
    command += [f"--train-arg={arg}" for arg in request.train_args]
    if resume:
        command.append("--resume")
    return command


def launch(python: Path, backend_root: Path, request: TrainingRequest,
           resume: bool = False) -> subprocess.Popen:
    """Start the pipeline detached from Blender (own session / process group, no console).

    The caller keeps the Popen only to reap the process if it ends while Blender runs.
    """
    request.run_dir.mkdir(parents=True, exist_ok=True)
    log = pipeline.open_log(request.run_dir / pipeline.LOG_FILE)
    kwargs: dict = {}
    if os.name == "nt":
        kwargs["creationflags"] = (subprocess.CREATE_NEW_PROCESS_GROUP | subprocess.DETACHED_PROCESS
                                   | subprocess.CREATE_NO_WINDOW)
    else:
        kwargs["start_new_session"] = True  # no SIGHUP/SIGINT from Blender's terminal
    try:
        return subprocess.Popen(pipeline_command(python, backend_root, request, resume),
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                cwd=str(backend_root), env=worker_environment(backend_root),
                                close_fds=True, **kwargs)
    finally:
        log.close()


def pid_alive(pid: int) -> bool:
    """Whether a process with this id exists (a zombie counts as ended where we can tell)."""
    if pid <= 0:
        return False
    if os.name == "nt":
        return _pid_alive_windows(pid)
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:  # Linux: a zombie has ended
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        return state != "Z"
    except (OSError, IndexError):
        return True


def _pid_alive_windows(pid: int) -> bool:
    import ctypes

    kernel32 = ctypes.windll.kernel32  # type: ignore[attr-defined]
    handle = kernel32.OpenProcess(0x1000, False, pid)  # PROCESS_QUERY_LIMITED_INFORMATION
    if not handle:
        return False
    code = ctypes.c_ulong()
    kernel32.GetExitCodeProcess(handle, ctypes.byref(code))
    kernel32.CloseHandle(handle)
    return code.value == 259  # STILL_ACTIVE


@dataclass
class TrainingStatus:
    """What the panel shows for a run."""

    state: str = "unknown"  # running, done, failed, cancelled, stopped (process gone), unknown
    step_name: str = ""  # prepare, train, export
    stage: str = ""  # global, local, face
    step: int = 0
    total_steps: int = 0
    eta_s: float | None = None
    losses: dict = field(default_factory=dict)
    message: str = ""
    pid: int = 0
    bundle: str = ""

    @property
    def progress(self) -> float:
        return self.step / self.total_steps if self.total_steps else 0.0

    @property
    def can_resume(self) -> bool:
        return self.state in ("cancelled", "stopped", "failed")

    def summary(self) -> str:
        if self.state == "running" and self.step_name == "train" and self.total_steps:
            eta = f", ETA {format_duration(self.eta_s)}" if self.eta_s is not None else ""
            return f"{self.stage} {self.step}/{self.total_steps}{eta}"
        if self.state == "running":
            return f"{self.step_name or 'starting'}..."
        return f"{self.state}: {self.message}" if self.message else self.state


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(path.read_text("utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def read_status(run_dir: Path) -> TrainingStatus:
    """The run's state from pipeline.json and status.json (missing files mean "unknown")."""
    record = _read_json(run_dir / pipeline.PIPELINE_FILE)
    train = _read_json(run_dir / pipeline.STATUS_FILE)
    if not record:
        return TrainingStatus(message="no training has been started in this folder")
    status = TrainingStatus(state=str(record.get("state", "unknown")),
                            step_name=str(record.get("step") or ""),
                            message=str(record.get("message", "")),
                            pid=int(record.get("pid") or 0), bundle=str(record.get("bundle", "")))
    if train:
        status.stage = str(train.get("stage") or "")
        status.step = int(train.get("step") or 0)
        status.total_steps = int(train.get("total_steps") or 0)
        status.eta_s = train.get("eta_s")
        status.losses = dict(train.get("losses") or {})
        if status.state == "running" and status.step_name == "train" and train.get("message"):
            status.message = str(train["message"])
    if status.state == "running" and not pid_alive(status.pid):
        status.state, status.message = "stopped", "the training process is no longer running"
    return status


def cancel(run_dir: Path) -> bool:
    """Ask the run's pipeline to stop (it checkpoints first). False if it is not running."""
    status = read_status(run_dir)
    if status.state != "running":
        return False
    # The stop file works everywhere (a detached process on Windows gets no signals);
    # SIGTERM makes it immediate on POSIX.
    (run_dir / pipeline.STOP_FILE).write_text("stop requested from Blender\n", encoding="utf-8")
    if os.name != "nt":
        try:
            os.kill(status.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    return True


def request_from_record(run_dir: Path) -> TrainingRequest:
    """The request a run was started with (for Resume)."""
    record = _read_json(run_dir / pipeline.PIPELINE_FILE)
    if not record:
        raise FileNotFoundError(f"{run_dir / pipeline.PIPELINE_FILE} not found")
    return TrainingRequest(run_dir=run_dir, video=Path(record["video"]), name=record["name"],
                           preset=record.get("preset", "cpu-small"), start=record.get("start"),
                           stop=record.get("stop"), train_args=tuple(record.get("train_args", ())))


def format_duration(seconds: float | None) -> str:
    if seconds is None:
        return "?"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m{secs:02d}s"


__all__ = ["PRESETS", "TrainingRequest", "TrainingStatus", "cancel", "format_duration", "launch",
           "pid_alive", "pipeline_command", "read_status", "request_from_record",
           "training_options"]
