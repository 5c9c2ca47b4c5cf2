""""Set Up Backend": a virtual environment with the backend's requirements (no bpy).

Blender's own Python is never modified: a new virtual environment is made in the add-on's
user folder with a Python the user picks (or Blender's own when its version fits), and the
requirements are installed into it. The steps run in a background thread, one subprocess
each; every output line goes to a log file (kept as the failure report) and to a queue that
the panel reads on Blender's main thread.
"""

from __future__ import annotations

import queue
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from .locations import SUPPORTED_PYTHON, python_fits, venv_python

TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"
VERSION_PROBE = "import sys; print('%d.%d.%d' % sys.version_info[:3])"


@dataclass(frozen=True)
class Step:
    title: str
    command: list[str]


def read_requirements(backend_root: Path) -> list[str]:
    """The backend's requirements: ``requirements.txt`` of a built add-on, else pyproject's.

    build.py writes ``requirements.txt`` from pyproject.toml's ``dependencies``; a source
    checkout reads pyproject.toml itself (with a tiny parser where ``tomllib`` is missing).
    """
    req = backend_root / "requirements.txt"
    if req.is_file():
        lines = [line.split("#", 1)[0].strip() for line in req.read_text("utf-8").splitlines()]
        return [line for line in lines if line]
    pyproject = backend_root / "pyproject.toml"
    if not pyproject.is_file():
        raise FileNotFoundError(f"{req} not found: cannot tell what the backend needs")
    return dependencies_from_pyproject(pyproject.read_text("utf-8"))


def dependencies_from_pyproject(text: str) -> list[str]:
    """``[project] dependencies`` of a pyproject.toml."""
    try:
        import tomllib
    except ImportError:  # Python 3.10
        return _dependencies_without_tomllib(text)
    return list(tomllib.loads(text).get("project", {}).get("dependencies", []))


def _dependencies_without_tomllib(text: str) -> list[str]:
    """The ``dependencies = [...]`` array, read with a regular expression (one per line)."""
    match = re.search(r"^dependencies\s*=\s*\[(.*?)^\]", text, re.S | re.M)
    if not match:
        return []
    body = "\n".join(line.split("#", 1)[0] for line in match.group(1).splitlines())
    return re.findall(r"[\"']([^\"']+)[\"']", body)


def setup_steps(base_python: Path, venv_dir: Path, requirements: list[str],
                cpu_only_torch: bool = False) -> list[Step]:
    """The commands that build the environment, in order."""
    python = str(venv_python(venv_dir))
    pip = [python, "-m", "pip", "install", "--disable-pip-version-check", "--progress-bar", "off"]
    extra = ["--extra-index-url", TORCH_CPU_INDEX] if cpu_only_torch else []
    return [
        Step("Create the virtual environment", [str(base_python), "-m", "venv", str(venv_dir)]),
        Step("Update pip", [*pip, "--upgrade", "pip"]),
        Step("Install the backend's requirements", [*pip, *extra, *requirements]),
        Step("Check the installation",
             [python, "-c", "import torch, mediapipe, av, safetensors; print('torch', "
                            "torch.__version__, 'cuda', torch.cuda.is_available())"]),
    ]


def python_version(python: Path, timeout: float = 20.0) -> tuple[int, int, int]:
    """The version of the interpreter at ``python``; OSError/ValueError when it is not one."""
    out = subprocess.run([str(python), "-c", VERSION_PROBE], capture_output=True, text=True,
                         timeout=timeout, check=True).stdout.strip()
    major, minor, micro = (int(x) for x in out.split("."))
    return major, minor, micro


def check_base_python(python: Path) -> str | None:
    """None when ``python`` can build the environment, else why not (for the user)."""
    if not python.is_file():
        return f"{python} does not exist"
    try:
        version = python_version(python)
    except (OSError, ValueError, subprocess.SubprocessError) as exc:
        return f"{python} is not a working Python ({exc})"
    if not python_fits(version[:2]):
        (lo_major, lo_minor), (hi_major, hi_minor) = SUPPORTED_PYTHON
        return (f"{python} is Python {'.'.join(map(str, version))}; the backend needs "
                f"{lo_major}.{lo_minor} to {hi_major}.{hi_minor}")
    return None


@dataclass
class SetupTask:
    """Runs the steps in a thread; the main thread calls `poll` to read what happened."""

    steps: list[Step]
    log_path: Path
    state: str = "idle"  # idle -> running -> done | failed | cancelled
    step_index: int = 0
    last_line: str = ""
    error: str = ""
    started: float = 0.0
    _lines: "queue.Queue[str]" = field(default_factory=queue.Queue, repr=False)
    _thread: threading.Thread | None = field(default=None, repr=False)
    _process: subprocess.Popen | None = field(default=None, repr=False)
    _cancel: threading.Event = field(default_factory=threading.Event, repr=False)

    def start(self) -> None:
        if self.state == "running":
            raise RuntimeError("the set-up is already running")
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self.state, self.started, self.error = "running", time.time(), ""
        self._thread = threading.Thread(target=self._run, name="dance-backend-setup", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()
        process = self._process
        if process is not None and process.poll() is None:
            process.terminate()

    def poll(self) -> list[str]:
        """Output lines since the last call (main thread)."""
        lines = []
        while True:
            try:
                lines.append(self._lines.get_nowait())
            except queue.Empty:
                break
        if lines:
            self.last_line = lines[-1]
        return lines

    def wait(self, timeout: float | None = None) -> str:
        if self._thread is not None:
            self._thread.join(timeout)
        self.poll()
        return self.state

    @property
    def title(self) -> str:
        if 0 <= self.step_index < len(self.steps):
            return f"{self.step_index + 1}/{len(self.steps)} {self.steps[self.step_index].title}"
        return ""

    def _run(self) -> None:  # the background thread: touches no Blender data
        with open(self.log_path, "w", encoding="utf-8") as log:
            for index, step in enumerate(self.steps):
                self.step_index = index
                self._emit(log, f"== {step.title}: {' '.join(step.command)}")
                code = self._run_step(step, log)
                if self._cancel.is_set():
                    self._finish(log, "cancelled", "cancelled by the user")
                    return
                if code != 0:
                    self._finish(log, "failed", f"'{step.title}' failed with exit code {code}; "
                                                f"see {self.log_path}")
                    return
            self._finish(log, "done", "")

    def _run_step(self, step: Step, log) -> int:
        try:
            self._process = subprocess.Popen(step.command, stdout=subprocess.PIPE,
                                             stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                             text=True, errors="replace", bufsize=1)
        except OSError as exc:
            self._emit(log, f"cannot start: {exc}")
            return -1
        assert self._process.stdout is not None
        for line in self._process.stdout:
            self._emit(log, line.rstrip())
        return self._process.wait()

    def _emit(self, log, line: str) -> None:
        log.write(line + "\n")
        log.flush()
        self._lines.put(line)

    def _finish(self, log, state: str, error: str) -> None:
        if error:
            self._emit(log, f"== {state}: {error}")
        self.error, self.state = error, state
