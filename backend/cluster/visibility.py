"""Checking that a node sees the job folder: a token file the caller writes beside it.

A task on a node that does not share the caller's storage would write its frames into a
folder of its own; the caller would never see them. So before submitting, the caller writes a
file with a random token into the job folder's parent (the job folder itself must stay empty
for a new job, see `backend.transfer.job`), and the task first reads it back: a node that
finds another token, or none, fails the job with that message and writes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from ..oserrors import writing


@dataclass(frozen=True)
class Token:
    path: Path  # beside the job folder: .NAME.cluster-XXXXXXXXXXXX
    value: str

    @staticmethod
    @contextmanager
    def beside(job_dir: Path) -> Iterator["Token"]:
        """Write a token file next to ``job_dir`` for as long as the job runs."""
        value = uuid.uuid4().hex
        job_dir.parent.mkdir(parents=True, exist_ok=True)
        path = job_dir.parent / f".{job_dir.name}.cluster-{value[:12]}"
        with writing(path):
            path.write_text(value, encoding="utf-8")
        try:
            yield Token(path, value)
        finally:
            path.unlink(missing_ok=True)

    def check(self, job_dir: Path, where: str) -> None:
        """Raise `InputError` unless this process sees the caller's token."""
        try:
            seen = self.path.read_text(encoding="utf-8")
        except OSError:
            seen = None
        if seen != self.value:
            raise InputError(job_dir, f"is not visible from {where}: the job folder must be on "
                                      f"storage every node of the cluster sees, at the same "
                                      f"path (a shared folder); nothing was written there")
