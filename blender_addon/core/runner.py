"""Drives the job queue with one backend worker (no bpy).

`tick` is called on Blender's main thread by a timer (or in a loop by `run_until_idle` in
background mode, where timers never fire). Each tick applies what the worker said since the
last one, notices a worker that died (failing its job with a clear message; the next job
starts a fresh worker), and sends the next pending job when none is running. Jobs go to the
worker one at a time, so a cancelled or failed job never holds up the rest, and the model
stays loaded in the worker between jobs; a worker that hands jobs to a cluster gets several
at once (``at_once``), which it queues and spreads over the cluster.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Protocol

from .job_queue import Job, JobQueue, JobState


class Client(Protocol):
    """What the runner needs from ``backend_client.BackendClient`` (started already)."""

    hello: Any

    @property
    def alive(self) -> bool: ...
    def submit(self, run: Any) -> None: ...
    def cancel(self, job_id: str) -> None: ...
    def poll(self) -> list[Any]: ...
    def join_reader(self, timeout: float = ...) -> None: ...
    def shutdown(self, timeout: float = ...) -> int | None: ...


ClientFactory = Callable[[], Client]  # starts a worker without waiting for its hello


class JobRunner:
    """The session's queue plus the worker that runs it."""

    def __init__(self, make_client: ClientFactory, queue: JobQueue | None = None,
                 at_once: Callable[[], int] = lambda: 1) -> None:
        self.make_client = make_client
        self.at_once = at_once  # how many jobs the worker is given together
        self.queue = queue or JobQueue()
        self.client: Client | None = None
        self.hello: Any = None  # the last worker's handshake, kept for the panel
        self.last_error = ""  # why the worker could not be started, for the panel

    # --- called by operators ----------------------------------------------------------------

    def submit(self, job: Job) -> Job:
        return self.queue.add(job)

    def cancel(self, job_id: str) -> None:
        if self.queue.cancel(job_id) and self.client is not None:
            self.client.cancel(job_id)

    def release(self) -> None:
        """Stop the worker (frees the GPU). A running job is cancelled first."""
        client, self.client = self.client, None
        for running in self.queue.all_running():
            running.state, running.message = JobState.CANCELLED, "cancelled: the worker was stopped"
        if client is not None:
            client.shutdown()

    # --- called by the timer ----------------------------------------------------------------

    def tick(self) -> list[Job]:
        """Advance everything; returns the jobs that finished successfully in this tick."""
        finished: list[Job] = []
        if self.client is not None:
            dead = not self.client.alive
            if dead:  # let the reader thread post its last messages (worker_died errors)
                self.client.join_reader(5.0)
            finished += self._apply(self.client.poll())
            if dead:
                self._worker_died()
        self._start_next()
        return finished

    def _apply(self, messages: list[Any]) -> list[Job]:
        finished = []
        for message in messages:
            if getattr(message, "type", "") == "hello":
                self.hello = message
                continue
            job = self.queue.apply(message)
            if job is not None and job.state is JobState.DONE:
                finished.append(job)
        return finished

    def run_until_idle(self, timeout: float | None = None, interval: float = 0.05,
                       on_finished: Callable[[Job], None] | None = None,
                       on_tick: Callable[[], None] | None = None) -> list[Job]:
        """Tick until no job is pending or running (background mode). Returns finished jobs;
        ``on_finished`` sees each as it finishes, ``on_tick`` is called after every tick."""
        deadline = None if timeout is None else time.monotonic() + timeout
        finished: list[Job] = []
        while self.queue.active():
            for job in self.tick():
                finished.append(job)
                if on_finished is not None:
                    on_finished(job)
            if on_tick is not None:
                on_tick()
            if not self.queue.active():
                break
            if deadline is not None and time.monotonic() > deadline:
                raise TimeoutError(f"jobs still running after {timeout} s")
            time.sleep(interval)
        return finished

    @property
    def worker_running(self) -> bool:
        return self.client is not None and self.client.alive

    # --- internals --------------------------------------------------------------------------

    def _worker_died(self) -> None:
        """Forget a dead worker; the next job starts a fresh one.

        The client reports the death as a ``worker_died`` error for the job it was running
        (exit code and the end of the worker's log); a job still marked running after that
        is failed here so that it never hangs.
        """
        self.client = None
        for running in self.queue.all_running():
            self.queue.fail(running.id, "the backend worker stopped unexpectedly")

    def _start_next(self) -> None:
        at_once = self.at_once()
        while len(self.queue.all_running()) < at_once and self._start_one(at_once):
            pass

    def _start_one(self, at_once: int) -> bool:
        """Send the next pending job to the worker; False when there is none (or no worker)."""
        job = self.queue.next_pending()
        if job is None:
            return False
        if self.client is None or not self.client.alive:
            try:
                self.client = self.make_client()
                self.last_error = ""
            except Exception as exc:  # a missing Python, a bad path: the job says why
                self.client = None
                self.last_error = str(exc)
                self.queue.fail(job.id, f"cannot start the backend worker: {exc}")
                return False
        self.queue.start(job.id, at_once)
        try:
            self.client.submit(job.run)  # checks the request first (protocol's validate)
        except ValueError as exc:  # the worker would refuse it: the job says why, at once
            self.queue.fail(job.id, str(exc))
        return True
