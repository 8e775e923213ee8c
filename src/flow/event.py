"""Luigi's task events: ``@MyTask.event_handler(flow.Event.SUCCESS)`` handlers, and the build
subscriber that calls them in the flow process (also under ``-j N``: workers report, this calls)."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from .events import TaskResult
    from .plan import Plan


class Event:
    """The events a handler can subscribe to (Luigi's names and values)."""

    DEPENDENCY_DISCOVERED = "event.core.dependency.discovered"
    DEPENDENCY_MISSING = "event.core.dependency.missing"
    DEPENDENCY_PRESENT = "event.core.dependency.present"
    BROKEN_TASK = "event.core.task.broken"
    START = "event.core.start"
    PROGRESS = "event.core.progress"
    FAILURE = "event.core.failure"
    SUCCESS = "event.core.success"
    PROCESSING_TIME = "event.core.processing_time"
    TIMEOUT = "event.core.timeout"
    PROCESS_FAILURE = "event.core.process_failure"


# task class -> event -> handlers, in the order they were registered
_handlers: dict[type, dict[str, list[Callable[..., Any]]]] = {}


class TaskRunError(Exception):
    """The exception a FAILURE handler receives: the failure's last line as its message, the
    whole failure text (a traceback of the user's code) as ``traceback``."""

    def __init__(self, text: str) -> None:
        lines = [line for line in text.strip().splitlines() if line.strip()]
        super().__init__(lines[-1].strip() if lines else "failed")
        self.traceback = text


def add_handler(cls: type, event: str, callback: Callable[..., Any]) -> None:
    _handlers.setdefault(cls, {}).setdefault(event, []).append(callback)


def remove_handler(cls: type, event: str, callback: Callable[..., Any]) -> None:
    callbacks = _handlers.get(cls, {}).get(event, [])
    if callback in callbacks:
        callbacks.remove(callback)


def trigger(task: Any, event: str, *args: Any, **kwargs: Any) -> list[str]:
    """Call every handler of ``event`` registered on a class ``task`` is an instance of.

    A handler that raises does not stop the others; the failures come back as messages."""
    problems = []
    tid = getattr(task, "task_id", repr(task))
    for cls, events in list(_handlers.items()):
        if not isinstance(task, cls):
            continue
        for callback in list(events.get(event, ())):
            try:
                callback(*args, **kwargs)
            except Exception as exc:
                name = getattr(callback, "__name__", repr(callback))
                problems.append(
                    f"event handler {name} for {event.rsplit('.', 1)[-1]} of {tid} "
                    f"raised {type(exc).__name__}: {exc}"
                )
    return problems


class Handlers:
    """A build subscriber that turns task events into handler calls; a handler's exception
    becomes a warning, never a failure of the build."""

    def __init__(self, warn: Callable[[str], None]) -> None:
        self.warn = warn
        self.tasks: dict[str, Any] = {}

    def run_started(self, plan: Plan) -> None:
        self.tasks = plan.graph.tasks

    def task_started(self, tid: str, k: int, n: int) -> None:
        self._trigger(tid, Event.START)

    def task_finished(self, result: TaskResult, k: int, n: int) -> None:
        if result.status == "ran":
            # As in Luigi: the processing time of a task that worked, then its success.
            self._trigger(result.task_id, Event.PROCESSING_TIME, result.duration)
            self._trigger(result.task_id, Event.SUCCESS)
        elif result.status == "failed":
            self._trigger(result.task_id, Event.FAILURE, TaskRunError(result.error))

    def run_finished(self, results: dict[str, TaskResult], elapsed: float, missing: Any) -> None:
        for tid, result in results.items():
            if result.status == "missing-external":
                self._trigger(tid, Event.DEPENDENCY_MISSING)
            elif result.status == "external":
                self._trigger(tid, Event.DEPENDENCY_PRESENT)

    def _trigger(self, tid: str, event: str, *args: Any) -> None:
        task: Any = self.tasks.get(tid) or _find(tid)
        if task is None:
            return
        for problem in trigger(task, event, task, *args):
            self.warn(problem)


def _find(tid: str) -> Any:
    """A task not in the plan's graph (a dynamic dependency), found among those created."""
    from .task import Register

    for task in list(Register._instances.values()):
        if getattr(task, "task_id", None) == tid:
            return task
    return None


def subscribe(fanout: Any) -> None:
    """Add the handler subscriber to a build's events, when any handler is registered."""
    if _handlers:
        fanout.subscribe(Handlers(fanout.warning))
