"""The event stream of a build: statuses, task results, and a fan-out to every subscriber.

The executor and the spine emit events; the terminal reporter, ``--json`` and later the web view
and the artifact cache subscribe. Nothing here prints.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .decide import Decision
    from .plan import Plan


class Status(StrEnum):
    """What happened to one task in a run (its string value is the stable keyword)."""

    RAN = "ran"
    RESTORED = "restored"  # its outputs came from the artifact cache instead of running it
    UP_TO_DATE = "up-to-date"
    FAILED = "failed"
    SKIPPED = "skipped"
    MISSING_EXTERNAL = "missing-external"
    EXTERNAL = "external"  # an external input that exists

    @property
    def blocks_downstream(self) -> bool:
        """True when tasks that need this one cannot run."""
        return self in _BLOCKING


_BLOCKING = frozenset({Status.FAILED, Status.SKIPPED, Status.MISSING_EXTERNAL})


@dataclass(slots=True)
class TaskResult:
    """What happened to one task in a run."""

    task_id: str
    status: Status
    decision: Decision | None = None
    duration: float = 0.0
    error: str = ""
    output: str = ""  # what it printed, captured when it ran in a worker process
    attempts: int = 1  # runs in this build (more than one with a task's retry_count)


class Events(Protocol):
    """What a build tells its subscribers, in order: ``run_started``, task events, ``run_finished``.

    A dry run sends ``planned`` instead of the task events. ``warning`` may come at any time.
    """

    def planned(self, plan: Plan, explain: bool) -> None: ...
    def run_started(self, plan: Plan) -> None: ...
    def task_started(self, tid: str, k: int, n: int) -> None: ...
    def task_waiting(self, tid: str) -> None: ...
    def task_progress(self, tid: str, message: str | None, percentage: float | None) -> None: ...
    def task_finished(self, result: TaskResult, k: int, n: int) -> None: ...
    def run_finished(
        self, results: dict[str, TaskResult], elapsed: float, missing: dict[str, list[str]]
    ) -> None: ...
    def warning(self, message: str) -> None: ...
    def info(self, message: str) -> None: ...
    def dashboard(self, url: str) -> None: ...


class Fanout:
    """Sends each event to every subscriber that handles it (a subscriber may handle only some)."""

    def __init__(self, *subscribers: Any) -> None:
        self.subscribers = [s for s in subscribers if s is not None]

    def subscribe(self, subscriber: Any) -> None:
        self.subscribers.append(subscriber)

    def _emit(self, name: str, *args: Any) -> None:
        for subscriber in self.subscribers:
            handler = getattr(subscriber, name, None)
            if handler is not None:
                handler(*args)

    def planned(self, plan: Plan, explain: bool) -> None:
        self._emit("planned", plan, explain)

    def run_started(self, plan: Plan) -> None:
        self._emit("run_started", plan)

    def task_started(self, tid: str, k: int, n: int) -> None:
        self._emit("task_started", tid, k, n)

    def task_waiting(self, tid: str) -> None:
        self._emit("task_waiting", tid)

    def task_progress(self, tid: str, message: str | None, percentage: float | None) -> None:
        self._emit("task_progress", tid, message, percentage)

    def task_finished(self, result: TaskResult, k: int, n: int) -> None:
        self._emit("task_finished", result, k, n)

    def run_finished(
        self, results: dict[str, TaskResult], elapsed: float, missing: dict[str, list[str]]
    ) -> None:
        self._emit("run_finished", results, elapsed, missing)

    def warning(self, message: str) -> None:
        self._emit("warning", message)

    def info(self, message: str) -> None:
        self._emit("info", message)

    def dashboard(self, url: str) -> None:
        """Where the run can be watched besides flow's page (a Dask cluster's dashboard)."""
        self._emit("dashboard", url)
