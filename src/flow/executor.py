"""Run a plan: a ready-queue loop in dependency order that re-decides each task just before it runs.

Re-deciding (rather than trusting the plan) gives early cutoff: a task whose upstream reran but
produced byte-identical outputs finds its input fingerprints unchanged and does not run. How a
task runs is the backend's business; journaling and recording are ``attempt``'s.
"""

from __future__ import annotations

import graphlib
import inspect
import os
import time
from collections import deque
from dataclasses import dataclass, field, replace
from typing import Any

from . import attempt, dynamic
from .admission import Admission, in_process_deadline, timeout_message
from .attempt import Attempt
from .backends import Backend, Completion, Job, queue_depth
from .backends.inprocess import InProcess
from .decide import Context, Decision, decide
from .errors import FlowError, TaskFailure
from .events import Events, Status, TaskResult
from .graph import build_graph
from .plan import Plan, make_plan
from .task import DynamicRequirements, Task, flatten, map_structure

# A task that ended with these wrote its outputs: tasks below it decide again before running.
_WROTE = (Status.RAN, Status.RESTORED)


@dataclass
class Progress:
    """The ``[k/N]`` counter: k counts finished runs (as ninja does); N grows when dynamic
    dependencies add work."""

    done: int = 0
    total: int = 0


@dataclass
class _Schedule:
    """The loop's state: what is ready, what will not run and why, and whether to stop."""

    sorter: graphlib.TopologicalSorter[str]
    down: dict[str, list[str]]
    ready: deque[str] = field(default_factory=deque)
    parked: list[str] = field(default_factory=list)  # stale tasks another flow process holds
    skip: dict[str, str] = field(default_factory=dict)  # task id -> why it will not run
    stop: bool = False


class Executor:
    """Runs a plan's stale tasks: up to ``backend.slots`` at once, each as soon as its upstream
    is done. Tasks the backend cannot take (a generator ``run()``, say) run in this process."""

    def __init__(
        self,
        plan: Plan,
        ctx: Context,
        events: Events,
        backend: Backend | None = None,
        keep_going: bool = False,
        progress: Progress | None = None,
        cache: Any = None,
    ) -> None:
        self.plan = plan
        self.ctx = ctx
        self.events = events
        self.backend: Backend = backend or InProcess()
        self.local = (
            self.backend if isinstance(self.backend, InProcess) else InProcess(parallel=True)
        )
        self.keep_going = keep_going
        self.cache = cache  # the artifact cache (flow.cache.Cache), or None
        self.root = os.getcwd()
        self.progress = progress or Progress(total=len(plan.to_run))
        self.results: dict[str, TaskResult] = {}
        self.running: dict[str, Attempt] = {}
        self._waiting_said: set[str] = set()
        self._early: list[TaskResult] = []  # finished while a parent waited for them (dynamic)
        self.admission = Admission()  # priority, resources, retries, timeouts (Luigi's)
        self._stopping = False  # the backend's queued tasks were withdrawn after a failure

    def execute(self) -> dict[str, TaskResult]:
        try:
            self._loop()
        except BaseException:
            self._abort()  # Ctrl-C, SIGTERM: stop workers, remove partial outputs
            raise
        return self.results

    # -- the loop -------------------------------------------------------------------------------
    def _loop(self) -> None:
        graph, decisions = self.plan.graph, self.plan.decisions
        # Only what may run (stale tasks, everything below them, and missing externals with
        # what they block) goes through the scheduler: a task the plan found up to date, with
        # nothing stale upstream, is settled at once, so one edited source in a 10,000-task
        # graph costs a few scheduler steps, not 10,000.
        active = {t for t, d in decisions.items() if (d.reasons and d.stale) or d.missing_external}
        active |= self.plan.blocked
        results = self.results
        for tid in graph.order:
            if tid in active:
                continue
            d = decisions[tid]
            if d.reasons or d.adopt or d.overwritten:  # kept hand edits, adoptions: say, record
                self._settle(graph.tasks[tid], d)
            else:  # the common case of a no-op, without the checks of _settle
                status = Status.EXTERNAL if d.kind == "external" else Status.UP_TO_DATE
                results[tid] = TaskResult(tid, status, d)
        if not active:
            return  # the no-op: the plan's verdicts stood; adopted outputs are recorded
        sorter = graphlib.TopologicalSorter(
            {t: [u for u in graph.deps[t] if u in active] for t in graph.order if t in active}
        )
        sorter.prepare()
        s = _Schedule(sorter, graph.dependents())
        slots = self.backend.slots * queue_depth(self.backend, graph.tasks.values())
        admit = self.admission
        while sorter.is_active():
            admit.add_ready(s.ready, sorter.get_ready(), graph.tasks, s.down)
            while s.ready and len(self.running) < slots and admit.first_fit(s.ready, graph.tasks):
                self._start_next(s)
            starved = bool(s.ready) and len(self.running) < slots  # waiting for resources
            if self.running and (not s.ready or len(self.running) >= slots or starved):
                for result in self._collect(timeout=0.1 if s.parked else None):
                    self._done(result, s)
            elif s.parked and not s.ready:
                self.ctx.manifest.flush()  # another flow may be waiting for our locks
                time.sleep(0.05)
            if s.parked and not s.ready and len(self.running) < slots:
                s.ready.extend(s.parked)  # try their locks again
                s.parked.clear()

    def _start_next(self, s: _Schedule) -> None:
        tid = s.ready.popleft()
        if tid in s.skip or s.stop:
            why = s.skip.get(tid, "not started: an earlier task failed (use -k to keep going)")
            decision = self.plan.decisions[tid]
            self._done(self._set(TaskResult(tid, Status.SKIPPED, decision, error=why)), s)
            return
        settled = self._begin(tid)
        if settled is not None:
            self._done(settled, s)
        elif tid not in self.running:
            s.parked.append(tid)
        for result in self._early:  # tasks a dynamic parent waited for
            self._done(result, s)
        self._early.clear()

    def _done(self, result: TaskResult, s: _Schedule) -> None:
        """Mark a task finished for the scheduler; after a failure, maybe stop starting more."""
        tid = result.task_id
        if result.status.blocks_downstream:
            for child in s.down[tid]:
                s.skip.setdefault(child, f"upstream {tid} {result.status.replace('-', ' ')}")
        s.sorter.done(tid)
        if result.status is Status.FAILED and not self.keep_going:
            s.stop = True
            self._withdraw()

    # -- one task -------------------------------------------------------------------------------
    def _begin(self, tid: str) -> TaskResult | None:
        """Settle a task or start it. None: it started, or its lock is busy."""
        task = self.plan.graph.tasks[tid]
        if any(self.results[u].status in _WROTE for u in self.plan.graph.deps[tid]):
            try:
                d = decide(task, self.ctx)  # an input may have changed since planning
            except FlowError as exc:  # a user's exists() or complete() failed, or a read did
                return self._failed_before_start(tid, str(exc))
            # An output that changed since planning was changed by a task of this run (a step
            # that writes where it should not), not by hand: rebuild it rather than keep it.
            planned = self.plan.decisions[tid].modified
            d.overwritten = [k for k in d.modified if k not in planned]
        else:
            # Nothing upstream ran, so the plan's verdict stands (its forecast aside).
            d = self.plan.decisions[tid]
            if any(r.kind == "upstream" for r in d.reasons):
                d = replace(d, reasons=[r for r in d.reasons if r.kind != "upstream"])
        if d.kind == "external" or not d.stale:
            return self._settle(task, d)
        locks = attempt.lock_names(task, self.plan.graph.outputs[tid])
        if not self.ctx.manifest.locks.acquire(locks):
            if tid not in self._waiting_said:
                self._waiting_said.add(tid)
                self.events.task_waiting(tid)
            return None
        try:
            # Another flow process may have built it since we planned: look again, afresh
            # (needless when no other process has written the manifest since we opened it).
            if self.ctx.manifest.others_committed():
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
        fresh = decide(task, self.ctx)
        fresh.overwritten = [k for k in fresh.modified if k in d.overwritten]
        return fresh

    def _settle(self, task: Task, d: Decision, locks: list[str] | None = None) -> TaskResult | None:
        """Act on a decision: report an external, keep an up-to-date task, or run a stale one."""
        tid = task.task_id
        if d.kind == "external":
            status = Status.MISSING_EXTERNAL if d.missing_external else Status.EXTERNAL
            return self._set(TaskResult(tid, status, d, error=", ".join(d.missing_external)))
        if not d.stale:
            for key in d.modified:
                self.events.warning(
                    f"{key} was modified by hand since {tid} wrote it; keeping your copy "
                    f"(run with -B to rebuild it, or -t to accept it)"
                )
            if d.adopt and not d.modified:  # never adopt a hand edit behind the user's back
                attempt.record(self.ctx, task, d)
            return self._set(TaskResult(tid, Status.UP_TO_DATE, d))
        outputs = {getattr(o, "key", None): o for o in self.plan.graph.outputs[tid]}
        for key in d.modified:
            try:
                saved = self.ctx.manifest.backup(key, outputs.get(key))
            except (OSError, FlowError) as exc:  # never rebuild over an edit that was not saved
                self.ctx.manifest.locks.release(locks or [])
                why = f"cannot save the modified {key} before rebuilding it: {exc}"
                return self._failed_before_start(tid, why)
            by = "by another task of this run" if key in d.overwritten else "by hand"
            self.events.warning(
                f"{key} was modified {by}; saved that copy as {saved} before rebuilding"
            )
        refused = self.admission.refusal(task)
        if refused:  # it needs more of a resource than there is
            self.ctx.manifest.locks.release(locks or [])
            return self._failed_before_start(tid, refused)
        return self._start(task, d, locks or [])

    def _failed_before_start(self, tid: str, error: str) -> TaskResult:
        result = self._set(TaskResult(tid, Status.FAILED, self.plan.decisions[tid], error=error))
        self._count_finished(result)
        return result

    def _set(self, result: TaskResult) -> TaskResult:
        self.results[result.task_id] = result
        return result

    def _start(self, task: Task, d: Decision, locks: list[str]) -> TaskResult | None:
        """Start a stale task (None), or settle it from the artifact cache."""
        tid = task.task_id
        run = attempt.begin(self.ctx, task, d, locks)
        self.running[tid] = run
        # A restored task never started: subscribers hear only that it finished, restored.
        if self.cache is not None and (restored := self.cache.restore(self.ctx, run)):
            del self.running[tid]
            self._count_finished(self._set(restored))
            return restored
        p = self.progress
        self.events.task_started(tid, p.done + 1, max(p.total, p.done + 1))
        self._submit(run)
        return None

    def _submit(self, run: Attempt) -> None:
        task = run.task
        self.admission.hold(task)
        job = Job(task, run.outputs, run.before, self._drive, run.decision)
        backend = self.backend if self.backend.accepts(task) else self.local
        if isinstance(backend, InProcess):
            with in_process_deadline(task):
                backend.submit(job)
        else:
            backend.submit(job)

    def _collect(self, timeout: float | None) -> list[TaskResult]:
        """Wait for at least one running task to end (or ``timeout``); settle what ended."""
        done = self.local.wait(0) if self.local is not self.backend else []
        if not done:
            self.ctx.manifest.flush()  # about to wait: commit what finished, release its locks
            done = self.backend.wait(self.admission.wait_time(timeout))
        done += self._timed_out()
        return [r for c in done if (r := self._finish(c)) is not None]

    def _timed_out(self) -> list[Completion]:
        """Stop the worker runs past their ``worker_timeout`` (the backend kills the process
        group); each becomes a failure."""
        out = []
        for tid in self.admission.overdue():
            self.admission.deadlines.pop(tid, None)
            cancel = getattr(self.backend, "cancel", None)
            if cancel is not None and cancel(tid):
                run = self.running[tid]
                for o in run.outputs:
                    o.clean_temporaries()
                out.append(Completion(tid, timeout_message(run.task)))
        return out

    def _finish(self, c: Completion) -> TaskResult | None:
        run = self.running[c.task_id]
        if c.withdrawn:  # it waited in a worker's queue when the build stopped: never started
            del self.running[c.task_id]
            self.admission.release(c.task_id)
            attempt.abort(self.ctx, run)
            why = "not started: an earlier task failed (use -k to keep going)"
            result = self._set(TaskResult(c.task_id, Status.SKIPPED, run.decision, error=why))
            self._count_finished(result)
            return result
        if c.error and self.admission.may_retry(run.task):  # retry_count: run it again
            attempt.remove_written(run.outputs, run.before)
            self.events.warning(self.admission.retry_message(run.task, c.error))
            self.admission.release(c.task_id)
            self._submit(run)
            return None
        del self.running[c.task_id]
        self.admission.release(c.task_id)
        if c.error:
            attempt.remove_written(run.outputs, run.before)  # the worker did; make sure
        result = self._set(attempt.finish(self.ctx, run, c.error, c.output, c.seconds))
        if result.status is Status.FAILED and not self.keep_going:
            self._withdraw()  # now, not when the loop takes it in: a dynamic parent may wait
        result.attempts = self.admission.attempts.get(c.task_id, 1)
        if self.cache is not None and result.status is Status.RAN:
            self.cache.store(self.ctx, run)
        self._count_finished(result)
        return result

    def _withdraw(self) -> None:
        """The build stops: what waits in a worker's queue has not started, and never will."""
        withdraw = getattr(self.backend, "withdraw", None)
        if withdraw is not None and not self._stopping:
            self._stopping = True
            withdraw()

    def _count_finished(self, result: TaskResult) -> None:
        p = self.progress
        p.done += 1
        p.total = max(p.total, p.done)
        self.events.task_finished(result, p.done, p.total)

    def _abort(self) -> None:
        """Stop what is running: workers killed, partial outputs removed, journal cleared."""
        self.backend.kill()
        for run in list(self.running.values()):
            attempt.abort(self.ctx, run)
        self.running.clear()

    # -- dynamic dependencies -------------------------------------------------------------------
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
            self.running[task.task_id].yielded += dynamic.yielded_tasks(yielded)
            if isinstance(yielded, DynamicRequirements):
                # Luigi's custom_complete lets a task vouch for many requirements at once.
                if yielded.custom_complete is None or not yielded.complete():
                    self._build_dynamic(task, yielded.flat_requirements)
            else:
                self._build_dynamic(task, flatten(yielded))
            value = map_structure(lambda t: t.output(), getattr(yielded, "requirements", yielded))

    def _build_dynamic(self, parent: Task, reqs: list[Task]) -> None:
        # The parent's run() may have changed directory before it yielded: its requirements are
        # planned, run, checked and recorded from the project's directory, like every task.
        here = os.getcwd()
        os.chdir(self.root)
        try:
            self._build_dynamic_here(parent, reqs)
        finally:
            os.chdir(here)

    def _build_dynamic_here(self, parent: Task, reqs: list[Task]) -> None:
        graph = build_graph(reqs)
        # What these were built with last time counts too: their own recorded dynamic needs.
        dynamic.add_recorded(graph, self.ctx.manifest.dynamic())
        # A yielded task this run already started in a worker is waited for, never run twice.
        others = graph.tasks.keys() - {parent.task_id}
        while self.backend is not self.local and others & self.running.keys():
            done = [self._finish(c) for c in self.backend.wait(None)]
            self._early += [r for r in done if r is not None]
        sub_ctx = Context(graph, self.ctx.manifest, self.ctx.fingerprints, self.ctx.code)
        sub_plan = make_plan(graph, sub_ctx)
        self.progress.total += len(sub_plan.to_run)
        # The parent holds its locks while it waits: its dynamic dependencies run here, in order.
        sub = Executor(
            sub_plan, sub_ctx, self.events, InProcess(), self.keep_going, self.progress, self.cache
        )
        results = sub.execute()
        for tid, r in results.items():
            self.results.setdefault(tid, r)
        bad = [tid for tid, r in results.items() if r.status.blocks_downstream]
        if bad:
            raise TaskFailure(
                f"dynamic dependencies of {parent.task_id} did not complete: {', '.join(bad)}"
            )
