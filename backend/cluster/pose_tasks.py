"""Pose detection's chunks as tasks of the cluster, for a job that runs on it.

A long source's detection is split into chunks (`backend.pose.chunks`), each detected in a
process of its own (`backend.pose.processes`). A job running as a Ray task hands those chunks to
the cluster instead (`RayChunks`, installed by `remote.run_job` with
`processes.tasks_elsewhere`), so they spread over its nodes; the join is the same. A chunk's
progress arrives when it ends (its frames at once). Ray releases the job task's CPU while it
waits for its chunks.
"""

from __future__ import annotations

import functools
import traceback
from collections.abc import Callable, Sequence
from typing import Any

from ..errors import BackendError
from ..pose.processes import TaskFn
from .connect import require_ray

POLL_S = 0.25
MAX_RETRIES = 3  # a chunk whose worker process died is detected again


def detect_chunk(fn: TaskFn, task: Any) -> tuple[Any, int]:
    """``fn(task, tick)`` on a node; its result and how many items it ticked."""
    ticks = 0

    def tick(n: int = 1) -> None:
        nonlocal ticks
        ticks += n

    return fn(task, tick), ticks


@functools.cache
def _remote_detect_chunk() -> Any:
    return require_ray().remote(detect_chunk)


class RayChunks:
    """A `processes.Runner` that runs the tasks as Ray tasks; ``note(text)`` is told how many."""

    def __init__(self, note: Callable[[str], None]) -> None:
        self.note = note

    def __call__(self, fn: TaskFn, tasks: Sequence[Any],
                 on_tick: Callable[[int], None] | None) -> list[Any]:
        ray = require_ray()
        remote = _remote_detect_chunk()
        refs = [remote.options(num_cpus=1, max_retries=MAX_RETRIES,
                               name=f"pose chunk {k + 1} of {len(tasks)}").remote(fn, task)
                for k, task in enumerate(tasks)]
        self.note(f"pose detection: {len(tasks)} chunks as tasks of the Ray cluster")
        results: dict[int, Any] = {}
        try:
            while len(results) < len(refs):
                waiting = [ref for k, ref in enumerate(refs) if k not in results]
                ready, _ = ray.wait(waiting, num_returns=1, timeout=POLL_S)
                for ref in ready:
                    result, ticks = _get(ray, ref)
                    results[refs.index(ref)] = result
                    if on_tick is not None:
                        on_tick(ticks)
        finally:
            for k, ref in enumerate(refs):
                if k not in results:
                    ray.cancel(ref)
        return [results[k] for k in range(len(refs))]


def _get(ray: Any, ref: Any) -> Any:
    """A chunk's result; its failure as the project's own error (see `processes._portable`)."""
    from ray import exceptions

    try:
        return ray.get(ref)
    except exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, BackendError):
            raise cause from None
        text = "".join(traceback.format_exception(cause)) if cause is not None else str(exc)
        raise BackendError(f"a pose detection task failed on the cluster:\n{text}") from None
