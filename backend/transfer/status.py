"""What a running job tells the world: status.json, how long each stage took, and the
caller's hooks (progress reports, cancelling)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from .job import JobFolder

STATUS_INTERVAL_S = 1.0  # status.json is rewritten at most this often while frames are made
Report = Callable[[str, int, int], None]  # (stage, done, total)


class StatusWriter:
    """status.json: the fields so far, rewritten atomically (at most once a second unless forced)."""

    def __init__(self, folder: JobFolder, fields: dict) -> None:
        self.folder = folder
        self.fields = dict(fields)
        self.last = 0.0
        self.set(force=True)

    def set(self, force: bool = False, **fields) -> None:
        self.fields.update(fields)
        now = time.monotonic()
        if force or now - self.last >= STATUS_INTERVAL_S:
            self.folder.write_status(self.fields)
            self.last = now


class StageTimes:
    """Wall-clock seconds each stage spent on its own work, and the frames it did.

    Stages "labels", "generate" and "write" run in three threads at once, so each one's
    seconds count only the time inside its own calls; frames / seconds is the rate at which
    that stage alone could go. Thread-safe: each stage is timed from one thread.
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds: dict[str, float] = {}
        self._frames: dict[str, int] = {}

    def add(self, stage: str, seconds: float, frames: int = 1) -> None:
        with self._lock:
            self._seconds[stage] = self._seconds.get(stage, 0.0) + seconds
            self._frames[stage] = self._frames.get(stage, 0) + frames

    @contextmanager
    def timing(self, stage: str, frames: int = 1) -> Iterator[None]:
        began = time.perf_counter()
        try:
            yield
        finally:
            self.add(stage, time.perf_counter() - began, frames)

    def to_dict(self) -> dict[str, dict[str, float]]:
        """{stage: {"frames", "seconds", "fps"}} (for status.json)."""
        with self._lock:
            return {stage: {"frames": self._frames[stage], "seconds": round(seconds, 4),
                            "fps": round(self._frames[stage] / max(seconds, 1e-9), 3)}
                    for stage, seconds in self._seconds.items()}

    def describe(self) -> str:
        return ", ".join(f"{stage} {t['fps']:.2f} fps" for stage, t in self.to_dict().items())


@dataclass
class Hooks:
    """How the caller follows a run: ``report(stage, done, total)`` as work advances (stages
    "poses", "generate", "finish"), ``cancel`` to stop it, ``progress`` bars on stderr."""

    report: Report | None = None
    cancel: threading.Event = field(default_factory=threading.Event)
    progress: bool = False

    def reporter(self, stage: str, status: StatusWriter) -> Callable[[int, int], None]:
        """A (done, total) callback for ``stage`` that updates the status file too."""
        def call(done: int, total: int) -> None:
            status.set(stage=stage, done=done, total=total)
            if self.report is not None:
                self.report(stage, done, total)
        return call
