"""Point standard file descriptors elsewhere for a while: a worker capturing a task's output,
``--json`` and ``--graph`` keeping stdout for their document, completion silencing a Flowfile."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator


@contextlib.contextmanager
def redirected(target_fd: int, fds: tuple[int, ...] = (1, 2)) -> Iterator[None]:
    """Make ``fds`` refer to ``target_fd`` (print, logging and child processes alike), then back."""
    _flush()
    saved = [os.dup(fd) for fd in fds]
    try:
        for fd in fds:
            os.dup2(target_fd, fd)
        yield
    finally:
        _flush()
        for fd, copy in zip(fds, saved, strict=True):
            os.dup2(copy, fd)
            os.close(copy)


def _flush() -> None:
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
