"""Run a plan: a ready-queue loop in dependency order that re-decides each task just before it runs.

Re-deciding (rather than trusting the plan) gives early cutoff: a task whose upstream reran but
produced byte-identical outputs finds its input fingerprints unchanged and does not run.
"""

from __future__ import annotations

import contextlib
import graphlib
import inspect
import os
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from .decide import Context, Decision, decide, records_for
from .errors import FlowError, TaskFailure, Terminated
from .flowfile import user_traceback
from .graph import build_graph
from .plan import Plan, make_plan
from .target import TMP_SUFFIX
from .task import PARALLEL, RUNNING, DynamicRequirements, Task, flatten, map_structure


@dataclass
class TaskResult:
    """What happened to one task in a run."""

    task_id: str
    status: str  # ran | up-to-date | failed | skipped | missing-external | external
    decision: Decision | None = None
    duration: float = 0.0
    error: str = ""
    output: str = ""  # what it printed, captured when it ran in a worker process


class Events(Protocol):
    """What the executor tells the reporter; the reporter alone prints."""

    def task_started(self, tid: str, k: int, n: int) -> None: ...
    def task_finished(self, result: TaskResult, k: int, n: int) -> None: ...
    def task_waiting(self, tid: str) -> None: ...
    def warning(self, message: str) -> None: ...


@dataclass
class Progress:
    """The ``[k/N]`` counter: k counts finished runs (as ninja does); N grows when dynamic
    dependencies add work."""

    done: int = 0
    total: int = 0


@dataclass
class _Running:
    """A task that has started: what to record, clean up or release when it ends."""

    task: Task
    decision: Decision
    outputs: list[Any]
    before: dict[str, Any]
    locks: list[str]
    journal: list[str]
    started: float
    future: Any = None


@dataclass
class Executor:
    """Runs a plan's stale tasks: up to ``jobs`` at once, each as soon as its upstream is done.

    With ``jobs == 1`` tasks run here, with the terminal attached; with more, in worker
    processes (tasks that cannot be described to a worker still run here).
    """

    plan: Plan
    ctx: Context
    events: Events
    keep_going: bool = False
    jobs: int = 1
    results: dict[str, TaskResult] = field(default_factory=dict)
    progress: Progress | None = None
    overrides: dict[tuple[str, str], Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.progress is None:
            self.progress = Progress(total=len(self.plan.to_run))
        self.running: dict[str, _Running] = {}
        self._pool: Any = None
        self._waiting_said: set[str] = set()

    def execute(self) -> dict[str, TaskResult]:
        try:
            self._loop()
        except BaseException:
            self._abort()  # Ctrl-C, SIGTERM: stop workers, remove partial outputs
            raise
        finally:
            if self._pool is not None:
                self._pool.close()
        return self.results

    def _loop(self) -> None:
        graph = self.plan.graph
        # Only what may run (stale tasks, everything below them, and missing externals with
        # what they block) goes through the scheduler: a task the plan found up to date, with
        # nothing stale upstream, is settled at once, so one edited source in a 10,000-task
        # graph costs a few scheduler steps, not 10,000.
        decisions = self.plan.decisions
        active = {t for t, d in decisions.items() if d.stale or d.missing_external}
        active |= self.plan.blocked
        for tid in graph.order:
            if tid not in active:
                self._settle(graph.tasks[tid], decisions[tid])
        if not active:
            return  # the no-op: the plan's verdicts stood; adopted outputs are recorded
        down = graph.dependents()
        skip: dict[str, str] = {}  # task id -> why it will not run
        stop = False
        sorter = graphlib.TopologicalSorter(
            {t: [u for u in graph.deps[t] if u in active] for t in graph.order if t in active}
        )
        sorter.prepare()
        ready: deque[str] = deque()
        parked: list[str] = []  # stale tasks whose lock another flow process holds
        while sorter.is_active():
            ready.extend(sorter.get_ready())
            while ready and len(self.running) < self.jobs:
                tid = ready.popleft()
                if tid in skip or stop:
                    why = skip.get(
                        tid, "not started: an earlier task failed (use -k to keep going)"
                    )
                    began = self._set(
                        TaskResult(tid, "skipped", self.plan.decisions[tid], error=why)
                    )
                else:
                    settled = self._begin(tid)
                    if settled is None:
                        if tid not in self.running:
                            parked.append(tid)
                        continue
                    began = settled
                stop = self._done(began, sorter, down, skip) or stop
            if self.running and (not ready or len(self.running) >= self.jobs):
                for result in self._wait(timeout=0.1 if parked else None):
                    stop = self._done(result, sorter, down, skip) or stop
            elif parked and not ready:
                time.sleep(0.05)
            if parked and not ready and len(self.running) < self.jobs:
                ready.extend(parked)  # try their locks again
                parked.clear()

    def _done(
        self,
        result: TaskResult,
        sorter: graphlib.TopologicalSorter[str],
        down: dict[str, list[str]],
        skip: dict[str, str],
    ) -> bool:
        """Mark a task finished for the scheduler; True when no new task may start."""
        tid = result.task_id
        if result.status in ("failed", "skipped", "missing-external"):
            for child in down[tid]:
                skip.setdefault(child, f"upstream {tid} {result.status.replace('-', ' ')}")
        sorter.done(tid)
        return result.status == "failed" and not self.keep_going

    def _begin(self, tid: str) -> TaskResult | None:
        """Settle a task or start it. None: it started in a worker, or its lock is busy."""
        task = self.plan.graph.tasks[tid]
        if any(self.results[u].status == "ran" for u in self.plan.graph.deps[tid]):
            try:
                d = decide(task, self.ctx)  # an input may have changed since planning
            except FlowError as exc:  # a user's exists() or complete() failed, or a read did
                failed = TaskResult(tid, "failed", self.plan.decisions[tid], error=str(exc))
                self._finished(failed)
                return self._set(failed)
        else:
            # Nothing upstream ran, so the plan's verdict stands (its forecast aside).
            d = self.plan.decisions[tid]
            if any(r.kind == "upstream" for r in d.reasons):
                d = replace(d, reasons=[r for r in d.reasons if r.kind != "upstream"])
        if d.kind == "external" or not d.stale:
            return self._settle(task, d)
        locks = _lock_names(task, self.plan.graph.outputs[tid])
        if not self.ctx.manifest.locks.acquire(locks):
            if tid not in self._waiting_said:
                self._waiting_said.add(tid)
                self.events.task_waiting(tid)
            return None
        try:
            # Another flow process may have built it since we planned: look again, afresh.
            d = self._recheck(task, d)
            if not d.stale:
                self.ctx.manifest.locks.release(locks)
                return self._settle(task, d)
            return self._settle(task, d, locks)
        except BaseException:
            if tid not in self.running:
                self.ctx.manifest.locks.release(locks)
            raise

    def _recheck(self, task: Task, d: Decision) -> Decision:
        if any(r.kind in ("forced", "phony") for r in d.reasons):
            return d
        graph = self.plan.graph
        keys = [getattr(o, "key", None) for o in graph.outputs[task.task_id]]
        for dep in graph.deps[task.task_id]:
            keys += [getattr(o, "key", None) for o in graph.outputs[dep]]
        known = [k for k in keys if k is not None]
        for key in known:
            self.ctx.fingerprints.forget(key)
        self.ctx.manifest.refresh(known)  # read what another process may have written
        return decide(task, self.ctx)

    def _settle(self, task: Task, d: Decision, locks: list[str] | None = None) -> TaskResult | None:
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
        return self._start(task, d, locks or [])

    def _set(self, result: TaskResult) -> TaskResult:
        self.results[result.task_id] = result
        return result

    def _start(self, task: Task, d: Decision, locks: list[str]) -> TaskResult | None:
        tid = task.task_id
        progress = self.progress
        assert progress is not None
        outputs = self.plan.graph.outputs[tid]
        before = _states(outputs)
        journal = {
            o.key: (o.path, before[o.path])
            for o in outputs
            if getattr(o, "key", None) is not None and o.path in before
        }
        self.ctx.manifest.begin(tid, journal)
        run = _Running(task, d, outputs, before, locks, list(journal), time.perf_counter())
        self.running[tid] = run
        self.events.task_started(tid, progress.done + 1, max(progress.total, progress.done + 1))
        spec = describe_for_worker(task) if self.jobs > 1 else None
        if spec is not None:
            if self._pool is None:
                from .worker import Pool

                self._pool = Pool(self.jobs, self.overrides)
            run.future = self._pool.submit(spec)
            return None
        token = PARALLEL.set(self.jobs > 1)
        try:
            error = run_checked(task, outputs, self._drive, before)
        finally:
            PARALLEL.reset(token)
        return self._finish(run, error, "")

    def _wait(self, timeout: float | None) -> list[TaskResult]:
        """Wait for at least one worker to finish (or ``timeout``); settle what finished."""
        from concurrent.futures import FIRST_COMPLETED, wait
        from concurrent.futures.process import BrokenProcessPool

        futures = {r.future: tid for tid, r in self.running.items() if r.future is not None}
        done, _ = wait(futures, timeout=timeout, return_when=FIRST_COMPLETED)
        results = []
        for future in done:
            run = self.running[futures[future]]
            assert self._pool is not None
            try:
                reply = future.result()
                self._pool.release(future)
            except BrokenProcessPool:
                self._pool.release(future, broken=True)
                reply = {"error": "its worker process died (killed, or the interpreter crashed)"}
            except Exception as exc:  # a reply that could not be sent back, and the like
                self._pool.release(future, broken=True)
                reply = {"error": f"its worker process failed: {exc!r}"}
            if reply["error"]:
                _remove_written(run.outputs, run.before)  # the worker did; make sure
            results.append(self._finish(run, reply["error"], reply.get("output", "")))
        return results

    def _finish(self, run: _Running, error: str | None, output: str) -> TaskResult:
        task, d = run.task, run.decision
        tid = task.task_id
        del self.running[tid]
        duration = time.perf_counter() - run.started
        try:
            if not error:
                for o in run.outputs:
                    key = getattr(o, "key", None)
                    if key is not None:
                        self.ctx.fingerprints.forget(key)
                try:
                    self._record(task, d, run.journal)
                except FlowError as exc:  # an output it wrote cannot be read back to record it
                    _remove_written(run.outputs, run.before)
                    error = str(exc)
            if error:
                self.ctx.manifest.end(run.journal)
                result = TaskResult(tid, "failed", d, duration, error, output)
                self._finished(result)
                return self._set(result)
            result = TaskResult(tid, "ran", d, duration, output=output)
            self._finished(result)
            return self._set(result)
        finally:
            self.ctx.manifest.locks.release(run.locks)

    def _abort(self) -> None:
        """Stop what is running: workers killed, partial outputs removed, journal cleared."""
        if self._pool is not None:
            self._pool.kill()
            self._pool = None
        for run in list(self.running.values()):
            _remove_written(run.outputs, run.before)
            _remove_temporaries(list(run.before))
            with contextlib.suppress(Exception):
                self.ctx.manifest.end(run.journal)
            self.ctx.manifest.locks.release(run.locks)
        self.running.clear()

    def _drive(self, task: Task, ret: Any) -> None:
        """Drive a generator ``run()``: yielded tasks are built first, then sent their outputs."""
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
        # The parent holds its locks while it waits: its dynamic dependencies run here, in order.
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

    def _record(self, task: Task, d: Decision, finished: Iterable[str] = ()) -> None:
        records = records_for(task, d, self.plan.graph.outputs[task.task_id], self.ctx.fingerprints)
        self.ctx.manifest.save(records, self.ctx.fingerprints.updates, finished)
        self.ctx.fingerprints.updates = {}


def run_checked(
    task: Task, outputs: list[Any], drive: Any, before: dict[str, Any] | None = None
) -> str | None:
    """Call ``task.run()`` and check its outputs exist; on failure remove what it wrote.

    Returns None when it worked, else the failure text. Ctrl-C and SIGTERM propagate (after
    the clean-up), so the caller stops the whole run.
    """
    tid = task.task_id
    if before is None:
        before = _states(outputs)
    token = RUNNING.set(task)
    try:
        drive(task, task.run())  # type: ignore[func-returns-value]
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
        _call_hook(task.on_failure, exc)
        return _failure_text(exc)
    finally:
        RUNNING.reset(token)
    _call_hook(task.on_success)
    return None


def describe_for_worker(task: Task) -> dict[str, Any] | None:
    from .worker import describe

    return describe(task)


def _lock_names(task: Task, outputs: list[Any]) -> list[str]:
    """Lock what a task writes (two tasks may share an output path), or its id when phony."""
    keys = [k for k in (getattr(o, "key", None) for o in outputs) if k is not None]
    return keys or [task.task_id]


def _states(outputs: list[Any]) -> dict[str, Any]:
    """What each local output looks like now (None: absent), to tell later what a run wrote."""
    return {o.path: _stat(o.path) for o in outputs if isinstance(getattr(o, "path", None), str)}


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


def clean_interrupted(manifest: Any, events: Events) -> None:
    """Outputs an earlier run was writing when it died (SIGKILL, power loss) may be half-written:
    remove those that changed since that run started them, so that their task runs again."""
    for key, (task_id, path, before) in list(manifest.unfinished.items()):
        if path:
            now = _stat(path)
            if now is not None and list(now) != before:
                try:
                    os.remove(path)
                    events.warning(
                        f"removed {path}: {task_id} was writing it when an earlier flow run "
                        "was killed; it will run again"
                    )
                except OSError as exc:
                    events.warning(f"{path} may be half-written ({task_id} was killed): {exc}")
            _remove_temporaries([path])
        manifest.end([key])


def _remove_temporaries(paths: list[Any]) -> None:
    """Atomic-write temporaries (``.name.<hex>.flow-tmp``) a killed task left beside outputs."""
    import glob  # only after an interrupted run: keep it off every start

    for path in paths:
        if not isinstance(path, str):
            continue
        head, tail = os.path.split(path)
        for tmp in glob.glob(os.path.join(head, f".{glob.escape(tail)}.*{TMP_SUFFIX}")):
            with contextlib.suppress(OSError):
                os.remove(tmp)
