"""Backends run tasks for the executor: submit a job, wait for completions, kill, close.

A backend decides nothing and records nothing: the executor keeps scheduling, early cutoff,
keep-going and locks in one place, and ``attempt`` journals and records. In-process (``-j 1``,
with the terminal attached), a process pool (``-j N``) and Dask (``--dask``) ship here.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Protocol

from ..task import Task


@dataclass
class Job:
    """One task to run: the task, its outputs, their snapshots before the run, and (for the
    in-process backend) how to drive a ``run()`` that yields dynamic dependencies."""

    task: Task
    outputs: list[Any]
    before: list[Any]
    drive: Callable[[Task, Any], None] | None = None
    decision: Any = None  # why it runs, with its fingerprints (a Dask key is derived from them)

    @property
    def task_id(self) -> str:
        return self.task.task_id


@dataclass
class Completion:
    """A job that ended: its error text (None when it worked), what it printed, if captured, and
    how long it ran, if measured; or, ``withdrawn``, one a backend had queued and gave back
    unstarted (see ``withdraw``)."""

    task_id: str
    error: str | None
    output: str = ""
    withdrawn: bool = False
    seconds: float | None = None  # how long it ran, if the backend measured it


class Backend(Protocol):
    """Where tasks run. ``slots`` jobs may run at once."""

    slots: int

    def accepts(self, task: Task) -> bool:
        """Whether this backend can run ``task`` (else the executor runs it in-process)."""
        ...

    def submit(self, job: Job) -> None: ...

    def wait(self, timeout: float | None) -> list[Completion]:
        """Jobs that ended: at least one, unless ``timeout`` seconds passed first."""
        ...

    # Optional: ``depth`` (jobs per slot the executor may keep submitted: the extra ones wait
    # in the backend's queue) and ``withdraw()`` (take back the queued jobs not started; each
    # comes back from ``wait`` as a withdrawn completion).

    def kill(self) -> None:
        """Stop every running job now (Ctrl-C, SIGTERM), with the commands it started."""
        ...

    def close(self) -> None: ...


def queue_depth(backend: Backend, tasks: Iterable[Task]) -> int:
    """How many tasks per slot to keep submitted: a backend with a queue per worker (the process
    pool) takes the next task while it runs one. Not when a task has a ``worker_timeout``: its
    clock starts when it is submitted, so it must not wait in a queue."""
    depth = getattr(backend, "depth", 1)
    if depth > 1 and any(getattr(t, "worker_timeout", None) for t in tasks):
        return 1
    return int(depth)


def make_backend(
    jobs: int, overrides: dict[tuple[str, str], Any], dask: str | None = None, events: Any = None
) -> Backend:
    """Dask when asked for, else in-process for one job at a time and a process pool for more."""
    if dask:
        from .dask import DaskBackend

        return DaskBackend(dask, overrides, events)
    if jobs <= 1:
        from .inprocess import InProcess

        return InProcess()
    from .pool import ProcessPool

    return ProcessPool(jobs, overrides)
