"""Which ready task starts next: Luigi's ``priority``, ``resources`` within the totals of
``[resources]`` (luigi.cfg) or ``[tool.flow.resources]``, ``retry_count`` and ``worker_timeout``.

The executor asks; this module only keeps counts and deadlines. A resource no file names has a
total of 1, as in Luigi.
"""

from __future__ import annotations

import contextlib
import signal
import threading
import time
from collections import deque
from collections.abc import Iterator
from typing import Any

from .errors import ConfigError, TaskFailure
from .taskapi import TaskApi


class TimedOut(TaskFailure):
    """A task ran longer than its ``worker_timeout``."""


def totals_from_config() -> dict[str, int]:
    """Resource totals of this run: luigi.cfg's ``[resources]``, then ``[tool.flow.resources]``."""
    from . import config

    active = config._active
    if not active.sources and active.flow is None:
        return {}
    from .configfile import display

    entries = {}
    for source in active.sources:
        entries.update(source.sections.get("resources", {}))
    option = active.option("resources")
    if option is not None:
        if not isinstance(option.value, dict):
            raise ConfigError(
                f"{display(option.where)}: resources must be a table, e.g. "
                "[tool.flow.resources] with db = 1"
            )
        entries.update(
            {k: type(option)(v, option.path, option.line) for k, v in option.value.items()}
        )
    totals = {}
    for name, entry in entries.items():
        try:
            totals[name] = int(str(entry.value).strip())
        except ValueError:
            raise ConfigError(
                f"{display(entry.where)}: bad total {entry.value!r} for resource {name!r}: "
                "expected a whole number"
            ) from None
    return totals


class Admission:
    """Resource counts of the running tasks, retry attempts, and run deadlines."""

    def __init__(self, totals: dict[str, int] | None = None) -> None:
        self.totals = totals if totals is not None else totals_from_config()
        self.used: dict[str, int] = {}
        self.held: dict[str, dict[str, int]] = {}  # task id -> what it holds
        self.attempts: dict[str, int] = {}  # task id -> runs started so far
        self.deadlines: dict[str, float] = {}  # task id -> when a pool run times out
        self.priorities: dict[str, float] | None = None  # task id -> effective, when any is set

    # -- order and resources ----------------------------------------------------------------------
    def add_ready(
        self, ready: deque[str], tids: Any, tasks: dict[str, Any], down: dict[str, list[str]]
    ) -> None:
        """Add newly ready tasks, keeping higher priority first (ties: as they came). A task's
        priority is the highest of its own and those of the tasks waiting for it, as in Luigi:
        what an urgent task needs is urgent too."""
        ready.extend(tids)
        if self.priorities is None:
            self.priorities = _effective_priorities(tasks, down)
        if self.priorities:
            ordered = sorted(ready, key=lambda t: -self.priorities.get(t, 0.0))  # type: ignore[union-attr]
            ready.clear()
            ready.extend(ordered)

    def first_fit(self, ready: deque[str], tasks: dict[str, Any]) -> bool:
        """Bring the first ready task whose resources are free to the front; False if none is."""
        for tid in ready:
            if self._fits(_needs(tasks[tid])) or self.refusal(tasks[tid]):
                if ready[0] != tid:
                    ready.remove(tid)
                    ready.appendleft(tid)
                return True
        return False

    def _fits(self, needs: dict[str, int]) -> bool:
        return all(self.used.get(r, 0) + n <= self.totals.get(r, 1) for r, n in needs.items())

    def refusal(self, task: Any) -> str | None:
        """Why ``task`` can never run here (it needs more than a total), or None."""
        for r, n in _needs(task).items():
            total = self.totals.get(r, 1)
            if n > total:
                return (
                    f"{task.task_id} needs {n} of resource {r!r} but the total is {total}; "
                    f"raise it in [resources] (luigi.cfg) or [tool.flow.resources]: {r} = {n}"
                )
        return None

    def hold(self, task: Any) -> None:
        needs = _needs(task)
        self.held[task.task_id] = needs
        for r, n in needs.items():
            self.used[r] = self.used.get(r, 0) + n
        self.attempts[task.task_id] = self.attempts.get(task.task_id, 0) + 1
        if getattr(task, "worker_timeout", None):
            self.deadlines[task.task_id] = time.monotonic() + float(task.worker_timeout)

    def release(self, tid: str) -> None:
        for r, n in self.held.pop(tid, {}).items():
            self.used[r] -= n
        self.deadlines.pop(tid, None)

    # -- retries and timeouts ---------------------------------------------------------------------
    def may_retry(self, task: Any) -> bool:
        """True when a failed run of ``task`` has attempts left (``retry_count`` more runs)."""
        return self.attempts.get(task.task_id, 1) <= int(getattr(task, "retry_count", 0) or 0)

    def retry_message(self, task: Any, error: str) -> str:
        n = self.attempts.get(task.task_id, 1)
        total = int(task.retry_count) + 1
        last = error.strip().splitlines()[-1] if error.strip() else "failed"
        return f"{task.task_id} failed (attempt {n} of {total}: {last}); running it again"

    def wait_time(self, timeout: float | None) -> float | None:
        """How long the executor may wait for completions before a deadline passes."""
        if not self.deadlines:
            return timeout
        left = max(0.0, min(self.deadlines.values()) - time.monotonic())
        return left if timeout is None else min(left, timeout)

    def overdue(self) -> list[str]:
        if not self.deadlines:
            return []
        now = time.monotonic()
        return [tid for tid, when in self.deadlines.items() if when <= now]


def timeout_message(task: Any) -> str:
    return (
        f"{task.task_id} ran longer than its worker_timeout of {task.worker_timeout:g} s; "
        "it was stopped"
    )


@contextlib.contextmanager
def in_process_deadline(task: Any) -> Iterator[None]:
    """For a task run in this process: interrupt its ``run()`` when ``worker_timeout`` passes
    (a timer signal; only the main thread can take one)."""
    seconds = getattr(task, "worker_timeout", None)
    if not seconds or threading.current_thread() is not threading.main_thread():
        yield
        return

    def expire(signum: int, frame: Any) -> None:
        raise TimedOut(timeout_message(task))

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, float(seconds))
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def _effective_priorities(tasks: dict[str, Any], down: dict[str, list[str]]) -> dict[str, float]:
    """Each task's priority raised to its dependents' (empty when no task sets one)."""
    own = {tid: _priority(task) for tid, task in tasks.items()}
    if not any(own.values()):
        return {}
    memo: dict[str, float] = {}
    for start in tasks:
        stack = [start]
        while stack:  # iterative: a long chain must not hit the recursion limit
            tid = stack[-1]
            pending = [d for d in down.get(tid, ()) if d not in memo and d in own]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            memo[tid] = max([own[tid], *(memo[d] for d in down.get(tid, ()) if d in memo)])
    return memo


def _needs(task: Any) -> dict[str, int]:
    if getattr(type(task), "process_resources", None) is TaskApi.process_resources:
        needs = task.resources  # the common case, without a call: asked for every task
    else:
        process_resources = getattr(task, "process_resources", None)
        needs = process_resources() if process_resources else getattr(task, "resources", None)
    return {str(r): int(n) for r, n in needs.items() if n} if needs else {}


def _priority(task: Any) -> float:
    return float(getattr(task, "priority", 0) or 0)
