"""Running a function on several tasks, each in its own spawned process, with progress.

Pose detection of one video is split into chunks that run side by side (see `chunked`).
Each task runs in a new interpreter ("spawn", never "fork": MediaPipe's graphs and their
threads do not survive a fork, and a forked worker process would copy the parent's memory
at the time). The children send ``("tick", task, n)`` while they work and one
``("done", task, result)`` or ``("error", task, exception)`` at the end over one queue, which
the parent reads until every task is done. Whatever stops the parent (an error in a child,
``on_tick`` raising `JobCancelled`, Ctrl-C) stops every child still running. Inside
`tasks_elsewhere(runner)` the tasks go to ``runner`` instead (a job on a Ray cluster sends
them to the cluster's nodes, see backend/cluster/pose_tasks.py).
"""

from __future__ import annotations

import multiprocessing
import queue as queue_module
import traceback
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, Callable, Sequence

from ..errors import BackendError

# A task function: ``fn(task, tick)`` where ``tick(n)`` says n more items are done.
TaskFn = Callable[[Any, Callable[[int], None]], Any]
POLL_S = 0.5  # how often the parent looks for children that died without a word
# ``runner(fn, tasks, on_tick)``: what runs the tasks instead of local processes, while set.
Runner = Callable[[TaskFn, Sequence[Any], Callable[[int], None] | None], list[Any]]
_elsewhere: ContextVar[Runner | None] = ContextVar("tasks_elsewhere", default=None)


@contextmanager
def tasks_elsewhere(runner: Runner) -> Iterator[None]:
    """`run_in_processes` calls in this thread hand their tasks to ``runner``."""
    token = _elsewhere.set(runner)
    try:
        yield
    finally:
        _elsewhere.reset(token)


def run_in_processes(fn: TaskFn, tasks: Sequence[Any],
                     on_tick: Callable[[int], None] | None = None) -> list[Any]:
    """``[fn(task, tick) for task in tasks]``, each call in its own spawned process.

    ``fn`` and the tasks must be picklable (``fn`` a module-level function). ``on_tick(n)``
    is called in this process as the children report progress. An exception in a child is
    raised here (the project's own errors as they are, any other as a `BackendError` with its
    traceback).
    """
    runner = _elsewhere.get()
    if runner is not None:
        return runner(fn, tasks, on_tick)
    context = multiprocessing.get_context("spawn")
    messages = context.Queue()
    children = [context.Process(target=_child, args=(fn, i, task, messages), daemon=True)
                for i, task in enumerate(tasks)]
    try:
        for child in children:
            child.start()
        return _collect(messages, children, on_tick)
    finally:
        for child in children:
            if child.is_alive():
                child.terminate()
            child.join()
        messages.close()


def _collect(messages: Any, children: list[Any], on_tick: Callable[[int], None] | None) -> list[Any]:
    results: dict[int, Any] = {}
    suspect = False  # a child was seen ended without its result at the last quiet poll
    while len(results) < len(children):
        try:
            kind, index, value = messages.get(timeout=POLL_S)
        except queue_module.Empty:
            # A child flushes its messages before it exits, so a child that had ended at
            # the previous quiet poll and still sent nothing died without a word.
            ended = [i for i, c in enumerate(children) if c.exitcode is not None and i not in results]
            if ended and suspect:
                i = ended[0]
                raise BackendError(f"a worker process (task {i + 1} of {len(children)}) "
                                   f"stopped without a result (exit code {children[i].exitcode})")
            suspect = bool(ended)
            continue
        if kind == "tick":
            if on_tick is not None:
                on_tick(value)
        elif kind == "done":
            results[index] = value
        else:
            raise value
    return [results[i] for i in range(len(children))]


def _child(fn: TaskFn, index: int, task: Any, messages: Any) -> None:
    def tick(n: int = 1) -> None:
        messages.put(("tick", index, n))

    try:
        messages.put(("done", index, fn(task, tick)))
    except BaseException as exc:  # noqa: BLE001 - every failure is reported to the parent
        messages.put(("error", index, _portable(exc)))


def _portable(exc: BaseException) -> BaseException:
    """What of ``exc`` crosses to the parent: the project's own errors as they are (each can be
    rebuilt from its fields, see backend/errors.py), anything else as a `BackendError` carrying
    its traceback (another library's exception may not survive pickling)."""
    if isinstance(exc, BackendError):
        return exc
    text = "".join(traceback.format_exception(exc))
    return BackendError(f"a worker process failed:\n{text}")
