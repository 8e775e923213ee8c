"""Run one task: journal, run, verify its outputs, clean up after a failure, record.

The flow process calls ``begin`` before a backend runs a task and ``finish`` (or ``abort``) after;
whichever process runs the task calls ``run_checked``. Targets do their own I/O (``snapshot``,
``changed_since``, ``remove``), so nothing here assumes a local path.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from . import dynamic
from .decide import Context, Decision, records_for
from .errors import FlowError, TaskFailure, Terminated
from .events import Status, TaskResult
from .flowfile import user_traceback
from .target import LocalTarget
from .task import RUNNING, Task, is_external


@dataclass
class Attempt:
    """A task that has started: what to record, clean up or release when it ends."""

    task: Task
    decision: Decision
    outputs: list[Any]
    before: list[Any]  # each output's snapshot() before the run
    locks: list[str]
    journal: list[str]
    started: float
    yielded: list[Task] = field(default_factory=list)  # what a generator run() yielded

    @property
    def task_id(self) -> str:
        return self.task.task_id


def lock_names(task: Task, outputs: list[Any]) -> list[str]:
    """Lock what a task writes (two tasks may share an output path), or its id when phony."""
    keys = [k for k in (getattr(o, "key", None) for o in outputs) if k is not None]
    return keys or [task.task_id]


def begin(ctx: Context, task: Task, d: Decision, locks: list[str]) -> Attempt:
    """Journal that ``task`` starts writing its outputs, with what they look like now."""
    outputs = ctx.graph.outputs[task.task_id]
    before = snapshots(outputs)
    journal = {
        o.key: (o.key, snap)
        for o, snap in zip(outputs, before, strict=True)
        if getattr(o, "key", None) is not None
    }
    ctx.manifest.begin(task.task_id, journal)
    return Attempt(task, d, outputs, before, locks, list(journal), time.perf_counter())


def finish(
    ctx: Context,
    attempt: Attempt,
    error: str | None,
    output: str = "",
    seconds: float | None = None,
) -> TaskResult:
    """Record a task that worked, or clear the journal of one that failed; release its locks.

    ``seconds``: how long it ran, when the backend measured it (it may have waited in a queue
    after ``begin``); else the time since ``begin``."""
    tid = attempt.task_id
    duration = time.perf_counter() - attempt.started if seconds is None else seconds
    try:
        # Whatever ran may have changed any file (a clean step deletes another task's output):
        # decisions from now on look again rather than trust what this run saw before.
        ctx.fingerprints.forget_all()
        if not error:
            try:
                record(
                    ctx,
                    attempt.task,
                    attempt.decision,
                    attempt.journal,
                    attempt.yielded,
                    defer=True,
                )
                return TaskResult(tid, Status.RAN, attempt.decision, duration, output=output)
            except FlowError as exc:  # an output it wrote cannot be read back to record it
                remove_written(attempt.outputs, attempt.before)
                error = str(exc)
        ctx.manifest.end(attempt.journal)
        return TaskResult(tid, Status.FAILED, attempt.decision, duration, error, output)
    finally:
        ctx.manifest.release_when_saved(attempt.locks)


def abort(ctx: Context, attempt: Attempt) -> None:
    """Ctrl-C or SIGTERM while the task ran: remove what it wrote, clear its journal rows."""
    remove_written(attempt.outputs, attempt.before)
    for o in attempt.outputs:
        with contextlib.suppress(Exception):
            o.clean_temporaries()
    with contextlib.suppress(Exception):
        ctx.manifest.end(attempt.journal)
    ctx.manifest.locks.release(attempt.locks)


def record(
    ctx: Context,
    task: Task,
    d: Decision,
    finished: Iterable[str] = (),
    yielded: list[Task] | None = None,
    defer: bool = False,
) -> None:
    """Store the records of a task's outputs as they are now, and clear its journal rows.

    ``yielded``: the tasks its ``run()`` yielded this time (recorded, their outputs as inputs);
    None when it did not run (adopted), which keeps those the last run recorded. ``defer``:
    commit with the manifest's next write (``Manifest.save``).
    """
    tid = task.task_id
    if yielded is None:
        specs = dynamic.kept(ctx.graph, tid)
    else:
        if yielded or tid in ctx.graph.dynamic:
            d = dynamic.retrace(ctx, d, yielded)
        specs = [dynamic.spec_of(t) for t in dict((t.task_id, t) for t in yielded).values()]
    records = records_for(task, d, ctx.graph.outputs[tid], ctx.fingerprints, specs)
    ctx.manifest.save(records, ctx.fingerprints.updates, finished, defer=defer)
    ctx.fingerprints.updates = {}


def snapshots(outputs: list[Any]) -> list[Any]:
    """What each output looks like now (None: absent), to tell later what a run wrote."""
    return [_snapshot(o) for o in outputs]


def _snapshot(target: Any) -> Any:
    snapshot = getattr(target, "snapshot", None)
    if snapshot is None:  # a duck-typed target with only exists()
        return True if target.exists() else None
    return snapshot()


def remove_written(outputs: list[Any], before: list[Any]) -> None:
    """A failed task must not leave outputs it wrote directly: remove those that changed."""
    for o, snap in zip(outputs, before, strict=True):
        changed = getattr(o, "changed_since", None)
        remove = getattr(o, "remove", None)
        if changed is None or remove is None:
            continue
        with contextlib.suppress(Exception):  # a target that cannot say or remove: leave it
            if changed(snap):
                remove()


def run_checked(
    task: Task,
    outputs: list[Any],
    drive: Callable[[Task, Any], None] | None = None,
    before: list[Any] | None = None,
) -> str | None:
    """Call ``task.run()`` and check its outputs exist; on failure remove what it wrote.

    Returns None when it worked, else the failure text. Ctrl-C and SIGTERM propagate (after
    the clean-up), so the caller stops the whole run. The working directory is restored
    afterwards, so a ``run()`` that changes it cannot confuse the checks of later tasks.
    """
    tid = task.task_id
    if before is None:
        before = snapshots(outputs)
    cwd = os.getcwd()
    token = RUNNING.set(task)
    try:
        with _exit_is_failure():
            ret = task.run()  # type: ignore[func-returns-value]
            if drive is not None:
                drive(task, ret)
        os.chdir(cwd)
        missing = [getattr(o, "path", None) or repr(o) for o in outputs if not o.exists()]
        if missing:
            raise TaskFailure(
                f"{tid}.run() finished without creating its output {', '.join(missing)}; "
                "write it (e.g. with self.output().open('w')), or fix output()"
            )
    except BaseException as exc:
        os.chdir(cwd)
        remove_written(outputs, before)
        if isinstance(exc, (KeyboardInterrupt, Terminated)):
            raise  # the whole run stops; the caller reports it
        _call_hook(task.on_failure, exc)
        return failure_text(exc)
    finally:
        RUNNING.reset(token)
    _call_hook(task.on_success)
    return None


class _ExitCalled(TaskFailure):
    """``os._exit()`` inside ``run()``: fail the task instead of ending flow without a word."""


@contextlib.contextmanager
def _exit_is_failure() -> Iterator[None]:
    real_exit = os._exit
    me = os.getpid()

    def exit_in_task(status: int) -> Any:
        if os.getpid() != me:  # a child the task forked: it really exits
            real_exit(status)
        raise _ExitCalled(f"run() called os._exit({status})")

    os._exit = exit_in_task  # type: ignore[assignment]
    try:
        yield
    finally:
        os._exit = real_exit


def failure_text(exc: BaseException) -> str:
    """What a failed task shows: flow's own message, or the traceback of the user's code."""
    if isinstance(exc, (TaskFailure, FlowError)):
        return str(exc)
    if isinstance(exc, SystemExit):
        return f"run() called exit({exc.code!r})"
    return user_traceback(exc)


def _call_hook(hook: Any, *args: Any) -> None:
    try:
        hook(*args)
    except Exception:  # a broken notification hook must not change the build's outcome
        pass


def clean_interrupted(ctx: Context, warn: Callable[[str], None]) -> None:
    """Outputs an earlier run was writing when it died (SIGKILL, power loss) may be half-written:
    remove those that changed since that run started them, so that their task runs again.

    The journal is untrusted input (a ``.flow/`` may come from a tarball): only outputs of the
    current graph are ever touched, local ones only inside the project, and a row's own path is
    never followed.
    """
    unfinished = ctx.manifest.unfinished
    if not unfinished:
        return
    for tid, outputs in ctx.graph.outputs.items():
        if is_external(ctx.graph.tasks[tid]):
            continue  # flow never writes external data: a journal row for it is forged
        for target in outputs:
            key = getattr(target, "key", None)
            if key is None or key not in unfinished or not _inside_project(target):
                continue
            _, _, before = unfinished[key]
            try:
                if target.changed_since(before):
                    target.remove()
                    warn(
                        f"removed {key}: {tid} was writing it when an earlier flow run was "
                        "killed; it will run again"
                    )
                target.clean_temporaries()
            except Exception as exc:  # noqa: BLE001 - a target's own I/O failing
                warn(f"{key} may be half-written ({tid} was killed): {exc}")
                continue
            ctx.manifest.end([key])


def _inside_project(target: Any) -> bool:
    if not isinstance(target, LocalTarget):
        return True
    key = target.key
    return not (os.path.isabs(key) or key == ".." or key.startswith(".." + os.sep))
