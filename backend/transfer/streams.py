"""Two small threads that keep the generator busy: one reads ahead, one writes behind.

``Prefetch`` runs an iterator (label drawing, decoding, PNG reading) in a thread, a few
items ahead of the consumer; ``BackgroundSink`` hands items to a function (PNG and H.264
encoding) in a thread, in order, a few items behind. Both queues are bounded, so memory
stays flat however long the video is, and an error in either thread is raised in the
caller at its next call. PyTorch, OpenCV and FFmpeg release the GIL while they work, so
the three stages really run at the same time.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator
from typing import Generic, TypeVar

T = TypeVar("T")
_END = object()
_POLL_S = 0.1


class Prefetch(Generic[T]):
    """Iterate ``items`` in a daemon thread, up to ``depth`` items ahead; ``close`` to stop."""

    def __init__(self, items: Iterable[T], depth: int = 4, name: str = "prefetch") -> None:
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(items,), name=name, daemon=True)
        self._thread.start()

    def _run(self, items: Iterable[T]) -> None:
        iterator = iter(items)
        try:
            for item in iterator:
                if not self._put(item):
                    return
            self._put(_END)
        except BaseException as exc:  # handed over to the consumer, raised there
            self._put(_Failure(exc))
        finally:
            close = getattr(iterator, "close", None)
            if close is not None:
                close()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=_POLL_S)
                return True
            except queue.Full:
                continue
        return False

    def __iter__(self) -> Iterator[T]:
        return self

    def __next__(self) -> T:
        item = self._queue.get()
        if item is _END:
            self._queue.put(_END)  # keep answering StopIteration
            raise StopIteration
        if isinstance(item, _Failure):
            raise item.exc
        return item

    def close(self) -> None:
        """Stop the thread (it finishes the item in hand) and wait for it."""
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> "Prefetch[T]":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BackgroundSink(Generic[T]):
    """Call ``consume(item)`` for every ``put`` item, in order, in a daemon thread."""

    def __init__(self, consume: Callable[[T], None], depth: int = 4, name: str = "sink") -> None:
        self._consume = consume
        self._queue: queue.Queue = queue.Queue(maxsize=depth)
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _END:
                return
            if self._error is None:
                try:
                    self._consume(item)
                except BaseException as exc:  # raised in the caller at its next call
                    self._error = exc

    def put(self, item: T) -> None:
        self._raise_error()
        self._queue.put(item)

    def close(self) -> None:
        """Wait until every item is consumed; raise the first error the thread met."""
        if self._thread.is_alive():
            self._queue.put(_END)
            self._thread.join()
        self._raise_error()

    def _raise_error(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error


class _Failure:
    def __init__(self, exc: BaseException) -> None:
        self.exc = exc
