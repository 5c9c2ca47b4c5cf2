"""The add-on's side of the process boundary: start the backend worker and talk to it (no bpy).

The worker (``PYTHON -m backend serve``) runs in another Python, the one that has torch and
mediapipe. This module starts it with pipes on stdin/stdout, reads its replies on a reader
thread into a queue, and gives the add-on two ways to consume them:

* ``poll()`` from a timer on Blender's main thread (Blender data is never touched from
  another thread);
* ``wait_for(job_id)`` in background mode (``blender -b``), where there are no timers.

Typical use::

    client = BackendClient(python, log_path=user_dir / "worker.log")
    hello = client.start()                  # blocks until the worker is ready
    client.submit(Run(job_id="j1", source=..., model=..., output_dir=...))
    ...                                     # poll() -> [Progress, ..., Done]
    client.shutdown()

A worker that dies (a crash, out of memory, killed) is reported as an ``Error`` with code
``worker_died`` for every job it had not answered, with its exit code and the end of its
log; a new ``BackendClient`` then starts a fresh worker.
"""

from __future__ import annotations

import importlib
import importlib.util
import os
import queue
import signal
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, Sequence

from .core.locations import backend_root, worker_environment

HELLO_TIMEOUT_S = 180.0  # importing torch on a cold disk can take a minute
SHUTDOWN_TIMEOUT_S = 15.0
LOG_TAIL_LINES = 20
LOG_MAX_BYTES = 5 * 2**20
LOG_HEADER = "===== everybody-dance worker started"


# --------------------------------------------------------------------------------------------
# The protocol module, imported without importing anything heavy
# --------------------------------------------------------------------------------------------


def _load_protocol(root: Path | None):
    """``backend.worker.protocol`` of the backend at ``root`` (pure standard library).

    In a source checkout (and under pytest) the repository root is on ``sys.path`` and the
    module is imported normally. In Blender the backend is not on ``sys.path`` (putting a
    package called ``backend`` there could shadow or be shadowed by another add-on's), so the
    package is loaded by path under a private name.
    """
    if root is None:
        raise ImportError("the backend package was found neither next to the add-on nor in "
                          "its _vendor folder")
    expected = (root / "backend" / "__init__.py").resolve()
    spec = importlib.util.find_spec("backend") if "backend" not in sys.modules else None
    found = sys.modules.get("backend")
    origin = getattr(found, "__file__", None) if found is not None else (
        spec.origin if spec is not None else None)
    if origin is not None and Path(origin).resolve() == expected:
        return importlib.import_module("backend.worker.protocol")
    # The backend package under a private name (its __init__ and worker/__init__ import
    # nothing), so that the protocol's own imports (``..checks``) resolve inside it.
    name = "_everybody_dance_backend"
    if name not in sys.modules:
        spec = importlib.util.spec_from_file_location(
            name, root / "backend" / "__init__.py",
            submodule_search_locations=[str(root / "backend")])
        package = importlib.util.module_from_spec(spec)
        sys.modules[name] = package
        spec.loader.exec_module(package)
    return importlib.import_module(f"{name}.worker.protocol")


protocol = _load_protocol(backend_root())
Message = protocol.Message
Hello, Run, Preview = protocol.Hello, protocol.Run, protocol.Preview
Adjustments = protocol.Adjustments  # the one type of them (backend/adjustments.py)
Progress, Done, Error = protocol.Progress, protocol.Done, protocol.Error
Cancel, Cancelled, Shutdown = protocol.Cancel, protocol.Cancelled, protocol.Shutdown
ProtocolError, parse_line = protocol.ProtocolError, protocol.parse_line

FINAL_TYPES = ("done", "error", "cancelled")  # each submitted job gets exactly one of these


class WorkerError(RuntimeError):
    """The worker could not be started, or is no longer running."""


def is_final(message: Any, job_id: str | None = None) -> bool:
    """Whether ``message`` ends a job (``job_id``'s, when given)."""
    return message.type in FINAL_TYPES and getattr(message, "job_id", None) is not None and (
        job_id is None or message.job_id == job_id)


def describe_exit(returncode: int | None) -> str:
    """Plain words for a process exit status."""
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            name = signal.Signals(-returncode).name
        except ValueError:
            name = f"signal {-returncode}"
        return f"exit code {returncode}, killed by {name}"
    return f"exit code {returncode}"


def log_tail(path: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last ``lines`` lines that the latest worker wrote to its log ('' when none)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 64 * 1024))
            text = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    text = text.rsplit(LOG_HEADER, 1)[-1]  # only this worker's lines, not an earlier one's
    return "\n".join(text.splitlines()[1:][-lines:]).strip()


# --------------------------------------------------------------------------------------------
# The client
# --------------------------------------------------------------------------------------------


class BackendClient:
    """One backend worker process and the conversation with it.

    ``python`` is the interpreter that has the backend's requirements; ``log_path`` receives
    the worker's stderr (logs, tracebacks; appended); ``root`` is the folder holding the
    ``backend`` package (default: found next to the add-on); ``args`` are extra ``serve``
    options such as ``["--device", "cpu"]``.
    """

    def __init__(self, python: str | Path, log_path: str | Path | None = None,
                 root: str | Path | None = None, args: Sequence[str] = (),
                 env: dict[str, str] | None = None) -> None:
        self.python = Path(python)
        self.root = Path(root) if root is not None else backend_root()
        if self.root is None:
            raise WorkerError("the backend package was not found next to the add-on")
        default_log = Path(tempfile.gettempdir()) / f"everybody-dance-worker-{os.getpid()}.log"
        self.log_path = Path(log_path) if log_path is not None else default_log
        self.args = list(args)
        self.env = env
        self.hello: Hello | None = None
        self.returncode: int | None = None
        self._proc: subprocess.Popen | None = None
        self._messages: queue.Queue = queue.Queue()
        self._backlog: list[Message] = []  # messages wait_for took that were not its job's
        self._pending: set[str] = set()  # submitted jobs without a final reply yet
        self._submitted: set[str] = set()  # every job id submitted to this worker
        self._handed_out: set[str] = set()  # jobs whose final reply poll/wait_for returned
        self._lock = threading.Lock()  # guards _pending and _dead
        self._write_lock = threading.Lock()  # one message at a time on the worker's stdin
        self._closing = False
        self._dead = False
        self._ready = threading.Event()  # hello received, or the worker died
        self._reader: threading.Thread | None = None

    # ---------------------------------------------------------------- starting

    @property
    def command(self) -> list[str]:
        return [str(self.python), "-m", "backend", "serve", *self.args]

    def start(self, timeout: float | None = HELLO_TIMEOUT_S, wait: bool = True) -> Hello | None:
        """Start the worker; with ``wait``, block until its ``hello`` and return it.

        Raises `WorkerError` when the interpreter cannot be run, or when the worker exits or
        stays silent before its hello (the message gives the exit code and the log's end).
        With ``wait=False`` it returns at once; the hello (or a ``worker_died`` error) then
        comes through `poll`.
        """
        if self._proc is not None:
            raise WorkerError("this client has already started a worker; make a new client")
        self._spawn()
        if not wait:
            return None
        if not self._ready.wait(timeout):
            self._kill()
            raise WorkerError(f"the backend worker did not answer within {timeout:.0f} s "
                              f"({' '.join(self.command)}); see {self.log_path}")
        if self.hello is None:
            self.join_reader()
            died = self._drain_until_died()
            raise WorkerError(died.message if died is not None else "the backend worker died")
        return self.hello

    def _spawn(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._rotate_log()
        with open(self.log_path, "ab") as log:
            stamp = datetime.now().isoformat(timespec="seconds")
            log.write(f"\n{LOG_HEADER} {stamp}: {' '.join(self.command)} "
                      f"(in {self.root}) =====\n".encode())
            log.flush()
            kwargs: dict[str, Any] = {}
            if os.name == "nt":  # no console window; Ctrl+C in Blender's console spares it
                kwargs["creationflags"] = (subprocess.CREATE_NEW_PROCESS_GROUP
                                           | getattr(subprocess, "CREATE_NO_WINDOW", 0))
            else:  # its own session: Ctrl+C in the terminal Blender runs in spares it
                kwargs["start_new_session"] = True
            try:
                self._proc = subprocess.Popen(
                    self.command, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                    cwd=str(self.root), env=worker_environment(self.root, self.env), **kwargs)
            except OSError as exc:
                raise WorkerError(f"cannot run the backend Python {self.python}: {exc}") from exc
        self._reader = threading.Thread(target=self._read, name="backend-reader", daemon=True)
        self._reader.start()

    def _rotate_log(self) -> None:
        """Keep the appended log from growing without end: one older generation is kept."""
        try:
            if self.log_path.stat().st_size > LOG_MAX_BYTES:
                os.replace(self.log_path, self.log_path.with_name(self.log_path.name + ".1"))
        except OSError:
            pass  # no log yet, or it is in use elsewhere: appending is fine

    # ---------------------------------------------------------------- the reader thread

    def _read(self) -> None:
        assert self._proc is not None and self._proc.stdout is not None
        for raw in iter(self._proc.stdout.readline, b""):
            line = raw.decode("utf-8", errors="replace")
            if not line.strip():
                continue
            try:
                message = parse_line(line)
            except ProtocolError as exc:
                message = Error(code="bad_reply", message=f"the backend worker wrote a line that "
                                f"is not a protocol message ({exc}): {line.strip()[:200]}")
            self._receive(message)
        self._worker_gone()

    def _receive(self, message: Message) -> None:
        if isinstance(message, Hello):
            self.hello = message
            self._ready.set()
        elif is_final(message):
            with self._lock:
                self._pending.discard(message.job_id)
        self._messages.put(message)

    def _worker_gone(self) -> None:
        """stdout reached its end: the worker has exited (or is about to)."""
        assert self._proc is not None
        try:
            self.returncode = self._proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # it closed stdout but lives on: useless, end it
            self._kill()
            self.returncode = self._proc.returncode
        with self._lock:
            self._dead = True
            pending = sorted(self._pending)
            self._pending.clear()
        if not self._closing or pending:
            text = self._death_text()
            for job_id in pending or [None]:
                self._messages.put(Error(code="worker_died", message=text, job_id=job_id))
        self._ready.set()

    def _death_text(self) -> str:
        when = "while starting" if self.hello is None else "unexpectedly"
        text = (f"The backend worker stopped {when} ({describe_exit(self.returncode)}). "
                f"Its log is {self.log_path}")
        tail = log_tail(self.log_path)
        return f"{text}; it ends with:\n{tail}" if tail else f"{text} (empty)."

    def _drain_until_died(self) -> Error | None:
        died = None
        for message in self.poll():
            if message.type == "error" and message.code == "worker_died":
                died = message
        return died

    # ---------------------------------------------------------------- sending

    @property
    def alive(self) -> bool:
        """Whether the worker process runs and can take messages."""
        return self._proc is not None and not self._dead and self._proc.poll() is None

    @property
    def pending(self) -> set[str]:
        """Ids of submitted jobs that have not had their final reply yet."""
        with self._lock:
            return set(self._pending)

    def _send(self, message: Message) -> None:
        if self._proc is None or self._proc.stdin is None:
            raise WorkerError("the backend worker has not been started")
        if self._dead:
            raise WorkerError(f"the backend worker is not running "
                              f"({describe_exit(self.returncode)})")
        with self._write_lock:
            try:
                self._proc.stdin.write(message.to_line().encode("utf-8"))
                self._proc.stdin.flush()
            except (BrokenPipeError, OSError, ValueError) as exc:
                raise WorkerError(f"the backend worker is not running ({exc})") from exc

    def submit(self, run: Run | Preview) -> None:
        """Queue a job (a ``run`` or a ``preview``) in the worker; it runs them one at a time,
        in order.

        Raises `ValueError` for a request the worker would refuse (`protocol.validate`: a
        relative path, say; the worker runs in another folder) or a job id still pending,
        `WorkerError` when the worker is gone.
        """
        run.validate()  # the worker's own check (`protocol.validate`), before it is sent
        with self._lock:
            if run.job_id in self._pending:
                raise ValueError(f"job {run.job_id!r} is already submitted")
            self._pending.add(run.job_id)
            self._submitted.add(run.job_id)
            self._handed_out.discard(run.job_id)  # a resubmitted job gets a new final reply
        try:
            self._send(run)
        except WorkerError:
            with self._lock:
                self._pending.discard(run.job_id)
            raise

    def cancel(self, job_id: str) -> None:
        """Ask the worker to cancel a job; its ``cancelled`` (or ``done`` if it was just
        finishing) comes later. Nothing to do when the worker is gone."""
        if self.alive:
            try:
                self._send(Cancel(job_id=job_id))
            except WorkerError:
                pass  # it died meanwhile: the reader reports worker_died for the job

    # ---------------------------------------------------------------- receiving

    def poll(self) -> list[Message]:
        """Every message received since the last call (never blocks; main-thread timers)."""
        messages, self._backlog = self._backlog, []
        while True:
            try:
                messages.append(self._messages.get_nowait())
            except queue.Empty:
                break
        self._handed_out.update(m.job_id for m in messages if is_final(m))
        return messages

    def wait_for(self, job_id: str, timeout: float | None = None,
                 on_message: Callable[[Message], None] | None = None) -> Message:
        """Block until ``job_id``'s final reply (``Done``, ``Error`` or ``Cancelled``).

        For background mode, where no timer runs. ``on_message`` sees every message as it
        arrives (progress, say); messages about other jobs are kept for the next `poll`.
        Raises `TimeoutError` after ``timeout`` seconds (the job keeps running).
        """
        for i, message in enumerate(self._backlog):
            if is_final(message, job_id):
                self._handed_out.add(job_id)
                return self._backlog.pop(i)
        if job_id not in self._submitted:
            raise ValueError(f"job {job_id!r} was not submitted to this worker")
        if job_id in self._handed_out:
            raise ValueError(f"the final reply of job {job_id!r} was already returned "
                             f"(by poll or an earlier wait_for)")
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            remaining = None if deadline is None else deadline - time.monotonic()
            if remaining is not None and remaining <= 0:
                raise TimeoutError(f"job {job_id} did not finish within {timeout} s")
            try:
                message = self._messages.get(timeout=remaining)
            except queue.Empty:
                continue
            if on_message is not None:
                on_message(message)
            if is_final(message, job_id):
                self._handed_out.add(job_id)
                return message
            if getattr(message, "job_id", None) != job_id:
                self._backlog.append(message)

    def run_job(self, run: Run | Preview, timeout: float | None = None,
                on_message: Callable[[Message], None] | None = None) -> Message:
        """`submit` then `wait_for`: run one job to its end (background mode)."""
        self.submit(run)
        return self.wait_for(run.job_id, timeout, on_message)

    # ---------------------------------------------------------------- stopping

    def shutdown(self, timeout: float = SHUTDOWN_TIMEOUT_S) -> int | None:
        """Stop the worker (its running job is cancelled, queued ones dropped) and wait.

        A worker that does not exit within ``timeout`` seconds is killed. Returns its exit
        status. Replies sent while stopping (``cancelled``) stay available to `poll`.
        """
        if self._proc is None:
            return None
        self._closing = True
        if self.alive:
            try:
                self._send(Shutdown())
            except WorkerError:
                pass
        try:
            if self._proc.stdin is not None:
                self._proc.stdin.close()  # a worker that missed the shutdown sees EOF
        except OSError:
            pass
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self._kill()
        self.join_reader()
        self.returncode = self._proc.returncode
        return self.returncode

    def _kill(self) -> None:
        assert self._proc is not None
        self._proc.kill()
        try:
            self._proc.wait(10)
        except subprocess.TimeoutExpired:
            pass

    def join_reader(self, timeout: float = 15.0) -> None:
        if self._reader is not None:
            self._reader.join(timeout)

    def __enter__(self) -> BackendClient:
        return self

    def __exit__(self, *_exc_info: object) -> None:
        self.shutdown()


__all__ = [
    "Adjustments", "BackendClient", "Cancel", "Cancelled", "Done", "Error", "FINAL_TYPES", "Hello",
    "Message", "Preview", "Progress", "Run", "Shutdown", "WorkerError", "describe_exit", "is_final",
    "log_tail", "protocol",
]
