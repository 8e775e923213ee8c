"""Run a plan: a ready-queue loop in dependency order that re-decides each task just before it runs.

Re-deciding (rather than trusting the plan) gives early cutoff: a task whose upstream reran but
produced byte-identical outputs finds its input fingerprints unchanged and does not run.
"""

from __future__ import annotations

import graphlib
import inspect
import os
import time
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from .decide import Context, Decision, decide, records_for
from .errors import FlowError, TaskFailure, Terminated
from .flowfile import user_traceback
from .graph import build_graph
from .plan import Plan, make_plan
from .task import RUNNING, DynamicRequirements, Task, flatten, map_structure


@dataclass
class TaskResult:
    """What happened to one task in a run."""

    task_id: str
    status: str  # ran | up-to-date | failed | skipped | missing-external | external
    decision: Decision | None = None
    duration: float = 0.0
    error: str = ""


class Events(Protocol):
    """What the executor tells the reporter; the reporter alone prints."""

    def task_started(self, tid: str, k: int, n: int) -> None: ...
    def task_finished(self, result: TaskResult, k: int, n: int) -> None: ...
    def warning(self, message: str) -> None: ...


@dataclass
class Progress:
    """The ``[k/N]`` counter: k counts finished runs (as ninja does); N grows when dynamic
    dependencies add work."""

    done: int = 0
    total: int = 0


@dataclass
class Executor:
    """Runs a plan's stale tasks, one at a time, in the main process (``-j 1``)."""

    plan: Plan
    ctx: Context
    events: Events
    keep_going: bool = False
    results: dict[str, TaskResult] = field(default_factory=dict)
    progress: Progress | None = None

    def __post_init__(self) -> None:
        if self.progress is None:
            self.progress = Progress(total=len(self.plan.to_run))

    def execute(self) -> dict[str, TaskResult]:
        if not self.plan.to_run and not self.plan.blocked:
            return self._nothing_to_run()
        graph = self.plan.graph
        down = graph.dependents()
        skip: dict[str, str] = {}  # task id -> why it will not run
        stop = False
        sorter = graphlib.TopologicalSorter(graph.deps)
        sorter.prepare()
        while sorter.is_active():
            for tid in sorter.get_ready():
                if tid in skip or stop:
                    why = skip.get(
                        tid, "not started: an earlier task failed (use -k to keep going)"
                    )
                    self.results[tid] = TaskResult(
                        tid, "skipped", self.plan.decisions[tid], error=why
                    )
                    result = self.results[tid]
                else:
                    result = self._one(tid)
                if result.status in ("failed", "skipped", "missing-external"):
                    for child in down[tid]:
                        skip.setdefault(child, f"upstream {tid} {result.status.replace('-', ' ')}")
                    if result.status == "failed" and not self.keep_going:
                        stop = True
                sorter.done(tid)
        return self.results

    def _nothing_to_run(self) -> dict[str, TaskResult]:
        """The no-op path: the plan's verdicts stand; only adopted outputs need recording."""
        for tid in self.plan.graph.order:
            self._settle(self.plan.graph.tasks[tid], self.plan.decisions[tid])
        return self.results

    def _one(self, tid: str) -> TaskResult:
        task = self.plan.graph.tasks[tid]
        if any(self.results[u].status == "ran" for u in self.plan.graph.deps[tid]):
            d = decide(task, self.ctx)  # an input may have changed since planning
        else:
            # Nothing upstream ran, so the plan's verdict stands (its forecast aside).
            planned = self.plan.decisions[tid]
            d = replace(planned, reasons=[r for r in planned.reasons if r.kind != "upstream"])
        return self._settle(task, d)

    def _settle(self, task: Task, d: Decision) -> TaskResult:
        """Act on a decision: report an external, keep an up-to-date task, or run a stale one."""
        tid = task.task_id
        if d.kind == "external":
            status = "missing-external" if d.missing_external else "external"
            return self._set(TaskResult(tid, status, d, error=", ".join(d.missing_external)))
        for key in d.modified:
            if not d.stale:
                self.events.warning(
                    f"{key} was modified by hand since {tid} wrote it; keeping your copy "
                    f"(run with -B to rebuild it, or -t to accept it)"
                )
        if not d.stale:
            if d.adopt and not d.modified:  # never adopt a hand edit behind the user's back
                self._record(task, d)
            return self._set(TaskResult(tid, "up-to-date", d))
        for key in d.modified:
            saved = self.ctx.manifest.backup(key)
            self.events.warning(
                f"{key} was modified by hand; saved your copy as {saved} before rebuilding"
            )
        return self._set(self._run(task, d))

    def _set(self, result: TaskResult) -> TaskResult:
        self.results[result.task_id] = result
        return result

    def _run(self, task: Task, d: Decision) -> TaskResult:
        tid = task.task_id
        progress = self.progress
        assert progress is not None
        self.events.task_started(tid, progress.done + 1, max(progress.total, progress.done + 1))
        outputs = self.plan.graph.outputs[tid]
        before = {o.path: _stat(o.path) for o in outputs if hasattr(o, "path")}
        start = time.perf_counter()
        try:
            self._call_run(task)
            missing = [getattr(o, "path", repr(o)) for o in outputs if not o.exists()]
            if missing:
                raise TaskFailure(
                    f"{tid}.run() finished without creating its output {', '.join(missing)}; "
                    "write it (e.g. with self.output().open('w')), or fix output()"
                )
        except BaseException as exc:
            _remove_written(outputs, before)
            if isinstance(exc, (KeyboardInterrupt, Terminated)):
                raise  # the whole run stops; the caller reports it
            result = TaskResult(tid, "failed", d, time.perf_counter() - start, _failure_text(exc))
            self._finished(result)
            _call_hook(task.on_failure, exc)
            return result
        result = TaskResult(tid, "ran", d, time.perf_counter() - start)
        for o in outputs:
            key = getattr(o, "key", None)
            if key is not None:
                self.ctx.fingerprints.forget(key)
        self._record(task, d)
        self._finished(result)
        _call_hook(task.on_success)
        return result

    def _call_run(self, task: Task) -> None:
        """Call run(); a generator's yielded tasks are built first, then sent their outputs."""
        token = RUNNING.set(task)
        try:
            self._drive(task, task.run())  # type: ignore[func-returns-value]
        finally:
            RUNNING.reset(token)

    def _drive(self, task: Task, ret: Any) -> None:
        if not inspect.isgenerator(ret):
            return
        value: Any = None
        while True:
            try:
                yielded = ret.send(value)
            except StopIteration:
                return
            if isinstance(yielded, DynamicRequirements):
                # Luigi's custom_complete lets a task vouch for many requirements at once.
                if yielded.custom_complete is None or not yielded.complete():
                    self._build_dynamic(task, yielded.flat_requirements)
            else:
                self._build_dynamic(task, flatten(yielded))
            value = map_structure(lambda t: t.output(), getattr(yielded, "requirements", yielded))

    def _build_dynamic(self, parent: Task, reqs: list[Task]) -> None:
        graph = build_graph(reqs)
        sub_ctx = Context(graph, self.ctx.manifest, self.ctx.fingerprints, self.ctx.code)
        sub_plan = make_plan(graph, sub_ctx)
        assert self.progress is not None
        self.progress.total += len(sub_plan.to_run)
        sub = Executor(sub_plan, sub_ctx, self.events, self.keep_going, progress=self.progress)
        results = sub.execute()
        for tid, r in results.items():
            self.results.setdefault(tid, r)
        bad = [
            tid
            for tid, r in results.items()
            if r.status in ("failed", "missing-external", "skipped")
        ]
        if bad:
            raise TaskFailure(
                f"dynamic dependencies of {parent.task_id} did not complete: {', '.join(bad)}"
            )

    def _finished(self, result: TaskResult) -> None:
        progress = self.progress
        assert progress is not None
        progress.done += 1
        progress.total = max(progress.total, progress.done)
        self.events.task_finished(result, progress.done, progress.total)

    def _record(self, task: Task, d: Decision) -> None:
        records = records_for(task, d, self.plan.graph.outputs[task.task_id], self.ctx.fingerprints)
        self.ctx.manifest.save(records, self.ctx.fingerprints.updates)
        self.ctx.fingerprints.updates = {}


def _stat(path: str) -> tuple[int, int, int] | None:
    try:
        st = os.stat(path)
    except OSError:
        return None
    return (st.st_mtime_ns, st.st_size, st.st_ino)


def _remove_written(outputs: list[Any], before: dict[str, Any]) -> None:
    """A failed task must not leave outputs it wrote directly: remove those that changed."""
    for o in outputs:
        path = getattr(o, "path", None)
        if path is None or not hasattr(o, "remove"):
            continue
        now = _stat(path)
        if now is not None and now != before.get(path):
            try:
                o.remove()
            except OSError:
                pass


def _failure_text(exc: BaseException) -> str:
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
