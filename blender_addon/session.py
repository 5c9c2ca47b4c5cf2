"""The add-on's live state in this Blender session, and the timer that moves it forward.

One `JobRunner` (the job queue and its worker), the running "Set Up Backend" task, and the
training processes started from here. Worker messages arrive on a reader thread; the timer
below applies them on Blender's main thread, the only place Blender data is touched. In
background mode (``blender -b``) timers never fire: operators call `run_jobs_now` instead.
"""

import time
from pathlib import Path

import bpy

from . import compat, preferences, results
from .backend_client import BackendClient, WorkerError
from .core import locations, training_runs
from .core.runner import JobRunner

ACTIVE_INTERVAL = 0.2  # seconds between timer ticks while something runs
IDLE_INTERVAL = 1.0
TRAINING_REFRESH = 2.0  # seconds between reads of a training run's status files


class Session:
    def __init__(self):
        self.runner = JobRunner(make_client, at_once=jobs_at_once)
        self.setup = None  # core.venv_setup.SetupTask while "Set Up Backend" runs or ran
        self.training_processes = {}  # run folder -> Popen, to reap runs that end while we run
        self._training_status = {}  # run folder -> (time read, TrainingStatus)
        # Counts the files opened in this session: a job's result goes only into the file
        # it was started from, never into a scene of the same name in another file.
        self.file_generation = 0

    def training_status(self, run_dir):
        """The run's status, re-read at most every TRAINING_REFRESH seconds (panel drawing)."""
        key = str(run_dir)
        cached = self._training_status.get(key)
        if cached is None or time.monotonic() - cached[0] > TRAINING_REFRESH:
            status = training_runs.read_status(Path(run_dir))
            process = self.training_processes.get(key)
            if status.state == "unknown" and process is not None and process.poll() is None:
                # Launched a moment ago: its pipeline.json is not written yet.
                status = training_runs.TrainingStatus(state="running", step_name="starting",
                                                      pid=process.pid)
            cached = (time.monotonic(), status)
            self._training_status[key] = cached
        return cached[1]

    def forget_training_cache(self):
        self._training_status.clear()

    def shutdown(self):
        self.runner.release()
        if self.setup is not None and self.setup.state == "running":
            self.setup.cancel()


_session = None


def get():
    global _session
    if _session is None:
        _session = Session()
    return _session


def backend_python():
    """The backend interpreter and where it came from (preference, checkout, set-up)."""
    prefs = preferences.get()
    return locations.find_backend_python(prefs.backend_python, compat.user_dir())


# Jobs given at once to a worker that hands them to a cluster: it queues them and runs as many
# together as the cluster has GPUs (else CPUs).
CLUSTER_JOBS_AT_ONCE = 64


def jobs_at_once():
    """One job at a time on this machine; many where the preferences name a cluster."""
    return CLUSTER_JOBS_AT_ONCE if preferences.get().cluster_address.strip() else 1


def make_client():
    """Start a worker (without waiting for its hello: Blender stays responsive)."""
    python, origin = backend_python()
    if python is None:
        raise WorkerError("no backend Python: press Set Up Backend, or set one in the add-on "
                          "preferences")
    if not python.is_file():
        raise WorkerError(f"the backend Python {python} ({origin}) does not exist")
    prefs = preferences.get()
    args = [] if prefs.device == 'auto' else ["--device", prefs.device]
    if prefs.cluster_address.strip():  # jobs go to a Ray cluster (docs/addon.md)
        args += ["--cluster", prefs.cluster_address.strip()]
    client = BackendClient(python, log_path=compat.user_dir() / "worker.log", args=args)
    client.start(wait=False)
    return client


def place_finished(job, undo_step=False):
    """Show a finished job's frames in its strip (see `results`).

    ``undo_step``: record the change as an undo step of its own. Timers do that: the
    operator's own step was pushed when it returned, long before the frames arrived. In
    background mode the operator places the frames before it returns, inside its own step.
    """
    strip = results.place_result(job, get().file_generation)
    if strip is None:
        return
    print(f"Dance: {job.label} -> {strip.name} (channel {strip.channel}, "
          f"frames {strip.frame_final_start}-{strip.frame_final_end - 1})")
    if undo_step:
        try:
            bpy.ops.ed.undo_push(message=f"Dance: {strip.name}")
        except RuntimeError as exc:  # no undo here (it never fails the placing itself)
            print(f"Dance: no undo step for {strip.name}: {exc}")


def run_jobs_now(timeout=None):
    """Background mode: run every queued job to its end, placing results as they finish."""
    session = get()
    last = {}

    def progress_printer():
        for job in session.runner.queue.jobs:
            text = job.status_text()
            if last.get(job.id) != text:
                last[job.id] = text
                print(f"Dance: {job.label}: {text}", flush=True)

    session.runner.run_until_idle(timeout, on_finished=place_finished, on_tick=progress_printer)
    progress_printer()


def tick():
    """The timer: apply worker messages, place finished results, follow set-up and training."""
    session = get()
    try:
        for job in session.runner.tick():
            place_finished(job, undo_step=True)
        if session.setup is not None and session.setup.state == "running":
            session.setup.poll()
        for run_dir, process in list(session.training_processes.items()):
            if process.poll() is not None:  # reap it; its files say how it ended
                del session.training_processes[run_dir]
                session.forget_training_cache()
        compat.redraw_sequencer()
    except Exception as exc:  # a timer that raises is unregistered for good: keep it alive
        print(f"Dance: timer error: {exc!r}")
    busy = session.runner.queue.active() or (session.setup is not None
                                              and session.setup.state == "running")
    return ACTIVE_INTERVAL if busy else IDLE_INTERVAL


def start_timer():
    if not bpy.app.timers.is_registered(tick):
        bpy.app.timers.register(tick, first_interval=IDLE_INTERVAL, persistent=True)


def stop_timer():
    if bpy.app.timers.is_registered(tick):
        bpy.app.timers.unregister(tick)


def shutdown():
    """Stop the worker and any set-up (unregister, quitting Blender)."""
    if _session is not None:
        _session.shutdown()
