"""``python -m backend serve``: the worker process that the Blender add-on talks to.

The main thread reads JSON lines from stdin and answers at once (a malformed line gets an
``error`` with code ``bad_message`` and the worker carries on); jobs run one at a time on a
job thread, so a ``cancel`` is seen while a job runs. A job (``run``: a transfer, or
``preview``: a pose preview) that arrives while another job runs waits in a queue (first come,
first served). With ``--cluster`` transfers run as tasks of a Ray cluster (`backend.cluster`),
and as many job threads as the cluster has GPUs (else CPUs) hand them over at once. Every accepted job gets exactly one final reply: ``done``, ``error`` or
``cancelled``.

The worker exits on ``shutdown`` or when stdin closes (the add-on, or Blender, has gone),
cancelling the running job and dropping queued ones first. It listens on no network port:
stdin and stdout are its only way in and out; logs go to stderr.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
from collections import deque
from dataclasses import replace
from typing import BinaryIO

from .channel import Channel, OversizedLine, claim_stdout, read_lines
from .execute import WorkerSettings
from .protocol import (MAX_JOB_ID_CHARS, MAX_LINE_BYTES, Cancel, Cancelled, Error, Message,
                       Preview, ProtocolError, Request, Run, Shutdown, parse_line, shorten,
                       validate)

log = logging.getLogger("backend.worker")

STOP_JOIN_TIMEOUT_S = 60.0  # how long a cancelled job may take to reach its next frame


class Worker:
    """The job queue and the job thread; `handle_line` is called for each line of stdin."""

    def __init__(self, channel: Channel, settings: WorkerSettings, slots: int = 1) -> None:
        self._channel = channel
        self._settings = settings
        self._cache = None  # the job threads' `ModelCache`, made once the transfer is imported
        self._cond = threading.Condition()
        self._queue: deque[Request] = deque()
        self._running: dict[str, threading.Event] = {}  # job id -> its cancel
        self._stopping = False
        # One job thread runs the jobs here; more hand them to a cluster (``slots``).
        self._threads = [threading.Thread(target=self._work, daemon=True,
                                          name="job" if slots == 1 else f"job-{i + 1}")
                         for i in range(slots)]

    def start(self) -> None:
        for thread in self._threads:
            thread.start()

    # ---------------------------------------------------------------- messages from the client

    def handle_line(self, line: str | OversizedLine) -> bool:
        """Act on one line from the client; False when the worker should stop (shutdown)."""
        if isinstance(line, OversizedLine):
            log.warning("bad message: a line of %d bytes, over the limit", line.size)
            self._send(Error(code="bad_message", message=f"malformed message: a line of "
                             f"{line.size} bytes; lines may have at most {MAX_LINE_BYTES} bytes"))
            return True
        if not line.strip():
            return True  # blank lines carry nothing; tolerate them
        try:
            message = parse_line(line)
        except ProtocolError as exc:
            log.warning("bad message: %s: %.200r", exc, line)
            self._send(Error(code="bad_message", message=f"malformed message: {exc}",
                             job_id=self._job_id_of(line)))
            return True
        log.info("received %s", message.type)
        if isinstance(message, (Run, Preview)):
            self._submit(message)
        elif isinstance(message, Cancel):
            self._cancel_job(message.job_id)
        elif isinstance(message, Shutdown):
            return False
        else:
            self._send(Error(code="bad_message",
                             message=f"a client sends run, preview, cancel or shutdown, not "
                                     f"{message.type!r}"))
        return True

    def _job_id_of(self, line: str) -> str | None:
        """The job id of a malformed line when there is one, so the client can tell which of
        its requests failed; never the id of a job that is queued or running (its reply is
        still to come)."""
        try:
            data = json.loads(line)
        except (ValueError, RecursionError):  # see parse_line
            return None
        job_id = data.get("job_id") if isinstance(data, dict) else None
        if not isinstance(job_id, str) or self._known(job_id):
            return None
        return reply_id(job_id)

    def _known(self, job_id: str) -> bool:
        with self._cond:
            return job_id in self._running or any(r.job_id == job_id for r in self._queue)

    def _submit(self, request: Request) -> None:
        """Queue ``request``, or answer ``bad_message`` at once (not when its turn comes) when
        its fields are well-typed but make no sense (`protocol.validate`, the add-on's check)."""
        if self._known(request.job_id):
            self._send(Error(code="bad_message", message=f"job {request.job_id!r} is already "
                             f"queued or running; give each job its own job_id"))
            return
        try:
            validate(request)
        except ProtocolError as exc:
            self._send(Error(code="bad_message", message=str(exc), job_id=reply_id(request.job_id)))
            return
        with self._cond:
            self._queue.append(request)
            position = len(self._queue) + len(self._running) - 1
            self._cond.notify()
        log.info("job %s queued (%d ahead of it)", request.job_id, position)

    def _cancel_job(self, job_id: str) -> None:
        """Cancel a queued job at once, or ask the running one to stop at its next frame.

        A cancel for a job that is neither queued nor running is ignored: it has most likely
        just finished, and its reply is already on its way to the client.
        """
        with self._cond:
            if job_id in self._running:
                self._running[job_id].set()
                log.info("cancelling running job %s", job_id)
                return
            queued = [r for r in self._queue if r.job_id == job_id]
            for run in queued:
                self._queue.remove(run)
        if queued:
            log.info("cancelled queued job %s", job_id)
            self._send(Cancelled(job_id=job_id))
        else:
            log.info("cancel for job %s, which is not queued or running: ignored", job_id)

    # ---------------------------------------------------------------- the job thread

    def _work(self) -> None:
        from .execute import execute

        self._warm_up()
        while True:
            with self._cond:
                while not self._queue and not self._stopping:
                    self._cond.wait()
                if not self._queue:
                    return
                run = self._queue.popleft()
                cancel = self._running[run.job_id] = threading.Event()
            log.info("job %s started", run.job_id)
            reply = execute(run, cancel, self._send, self._cache, self._settings)
            with self._cond:
                # Cleared before the reply goes out, so that the client may reuse the job id
                # (to resume a cancelled job) as soon as it reads the reply.
                del self._running[run.job_id]
            self._send(reply)

    def _warm_up(self) -> None:
        """Import the transfer pipeline now, so the first job does not pay for it, and make
        the model cache the job threads share."""
        try:
            from backend.transfer.model_cache import ModelCache
        except Exception:  # noqa: BLE001 - the first job reports the real error
            log.exception("could not import the transfer pipeline")
            return
        with self._cond:
            if self._cache is None:
                self._cache = ModelCache()

    # ---------------------------------------------------------------- stopping

    def stop(self, reason: str) -> None:
        """Drop queued jobs, cancel the running one and wait for it to end."""
        with self._cond:
            self._stopping = True
            dropped = list(self._queue)
            self._queue.clear()
            for cancel in self._running.values():
                cancel.set()
            self._cond.notify_all()
        log.info("stopping (%s); %d queued job(s) dropped", reason, len(dropped))
        for run in dropped:
            self._send(Cancelled(job_id=run.job_id))
        for thread in self._threads:
            thread.join(STOP_JOIN_TIMEOUT_S)
            if thread.is_alive():
                log.warning("the running job did not stop within %.0f s", STOP_JOIN_TIMEOUT_S)

    def _send(self, message: Message) -> None:
        if isinstance(message, Error):  # a reply never echoes large input back
            message = replace(message, message=shorten(message.message))
        self._channel.send(message)


def reply_id(job_id: str) -> str | None:
    """The job id to put in a reply: None for one too long to be a client's (it is refused)."""
    return job_id if len(job_id) <= MAX_JOB_ID_CHARS else None


def serve(options: WorkerSettings = WorkerSettings(), stdin: BinaryIO | None = None) -> int:
    """Run the worker until ``shutdown`` or the end of stdin; returns the exit status."""
    channel = Channel(claim_stdout())  # first: nothing may reach the real stdout but protocol
    logging.basicConfig(stream=sys.stderr, level=options.log_level.upper(),
                        format="%(asctime)s %(levelname)s %(name)s [%(threadName)s] %(message)s")
    from .hello import make_hello, pick_device

    device = pick_device(options.device)
    hello = make_hello(device)
    log.info("worker %s started: %s", hello.pid, hello)
    channel.send(hello)
    slots = 1
    if options.cluster is not None:  # each node picks its own device for options.device
        from backend.cluster import connect

        cluster = connect(options.cluster)
        device, slots = options.device, cluster.slots
        log.info("jobs go to the Ray cluster at %s, %d at once", cluster.describe(), slots)
    worker = Worker(channel, replace(options, device=device), slots)
    worker.start()
    reason = "stdin closed"
    try:
        for line in read_lines(stdin if stdin is not None else sys.stdin.buffer):
            if not worker.handle_line(line):
                reason = "shutdown"
                break
    except KeyboardInterrupt:
        reason = "interrupted"
    worker.stop(reason)
    log.info("worker exits")
    return 0
