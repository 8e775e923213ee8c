"""The spine: tasks -> graph -> decisions -> plan -> execute -> record, and its result."""

from __future__ import annotations

import contextlib
import gc
import os
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from . import progress
from .attempt import clean_interrupted
from .backends import Backend, make_backend
from .codehash import CodeHasher
from .config import history_keep
from .decide import Context, output_exists, records_for
from .dynamic import add_recorded, kept
from .errors import EXIT_FAILED, EXIT_OK
from .event import subscribe as subscribe_handlers
from .events import Fanout, Status, TaskResult
from .executor import Executor
from .fingerprint import Fingerprinter
from .graph import TaskGraph, build_graph
from .history import Recorder
from .plan import Plan, make_plan
from .report import Reporter
from .store import store_dir
from .store.records import Manifest
from .task import Task, _class_overrides, is_external
from .timeline import active as profiling
from .timeline import phase

# Between these many tasks, read the whole manifest at once rather than a query per output:
# 10,000 records load in ~40 ms against ~150 ms of point queries. Past the upper bound the rows
# would cost more memory (about 1.3 KB each) than the queries cost time.
PRELOAD_AT = (500, 50_000)


@dataclass
class BuildResult:
    """The outcome of ``flow.build``: the plan, each task's result, and the exit status.

    It is truthy when everything requested is up to date or was built (Luigi's ``build()``).
    ``ran``, ``restored``, ``up_to_date``, ``failed`` and ``skipped`` list task ids by status.

    Attributes:
        plan: the plan: ``to_run`` (task ids in order), ``decisions[task_id].reasons`` and
            ``missing`` (missing external outputs and the tasks that need them).
        results: task id to ``TaskResult`` (``status``, ``decision``, ``duration``, ``error``);
            empty for a dry run.
        exit_status: what the ``flow`` command would exit with: 0 or 1.
    """

    plan: Plan | None
    results: dict[str, TaskResult] = field(default_factory=dict)
    exit_status: int = EXIT_OK

    def __bool__(self) -> bool:
        return self.exit_status == EXIT_OK

    def _with(self, status: str) -> list[str]:
        return [tid for tid, r in self.results.items() if r.status == status]

    @property
    def ran(self) -> list[str]:
        return self._with("ran")

    @property
    def failed(self) -> list[str]:
        return self._with("failed")

    @property
    def skipped(self) -> list[str]:
        return self._with("skipped")

    @property
    def restored(self) -> list[str]:
        return self._with("restored")

    @property
    def up_to_date(self) -> list[str]:
        return self._with("up-to-date")

    @property
    def scheduling_succeeded(self) -> bool:  # Luigi's LuigiRunResult attribute
        return bool(self)

    @property
    def status(self) -> Any:
        """Luigi's ``LuigiStatusCode`` for this build (``flow.LuigiStatusCode``)."""
        from .runstatus import status_of

        return status_of(self)


def build(
    tasks: Task | list[Task],
    jobs: int = 1,
    dry_run: bool = False,
    force: bool = False,
    keep_going: bool = False,
    check: bool = False,
    touch: bool = False,
    explain: bool = False,
    reporter: Any = None,
    backend: Backend | None = None,
    subscribers: tuple[Any, ...] = (),
    dask: str | None = None,
    cache: str | None = None,
    **luigi_options: Any,
) -> BuildResult:
    """Bring ``tasks`` up to date, running what is stale; the library entry point of the CLI.

    Args:
        tasks: a task or a list of tasks to build.
        jobs: how many tasks may run at once (``workers=`` is accepted as in Luigi).
        dry_run: plan and report only; nothing on disk changes.
        force: rebuild the tasks and everything upstream that flow can run.
        keep_going: after a failure, go on with the tasks that do not depend on it.
        check: like ``dry_run``, but the exit status is 1 when anything would run.
        touch: record the current outputs as up to date without running anything.
        explain: with ``dry_run``, give every reason and why up-to-date tasks are up to date.
        reporter: where output goes: task lines and a summary on stdout by default.
        backend: where tasks run (default: in this process for one job, a process pool for more).
        subscribers: more listeners to the build's events (see ``flow.events.Events``).
        dask: run the stale tasks on a Dask cluster: a scheduler address (``tcp://HOST:PORT``),
            or ``local`` / ``local:N`` for a local cluster of N worker processes.
        cache: a directory or fsspec URL of a shared artifact cache: stale tasks whose outputs
            it holds are restored from it instead of run, and what runs is stored in it.

    Returns:
        A BuildResult; a task failure is in it, never raised.
    """
    started = time.perf_counter()
    roots = [tasks] if isinstance(tasks, Task) else list(tasks)
    reporter = reporter if reporter is not None else Reporter()
    recorder = None if dry_run or check or touch else _recorder(reporter, jobs, luigi_options)
    events = Fanout(reporter, *subscribers, recorder, profiling())
    subscribe_handlers(events)  # @Task.event_handler functions, called in this process
    jobs = int(luigi_options.pop("workers", jobs) or 1)
    with _gc_paused(), phase("expand the graph"):
        graph = build_graph(roots)
    readonly = dry_run or check
    manifest = Manifest(store_dir(), readonly=readonly)
    try:
        with _gc_paused():
            ctx = _context(graph, manifest, force, events)
            plan = _plan(graph, ctx, events)
        # The graph, the records and the plan live until the build ends: keep the cyclic
        # collector from walking them again on every collection while tasks run.
        gc.freeze()
        store = _cache(cache, events) if plan.to_run else None  # a no-op never loads it
        if readonly:
            if store is not None and plan.to_run:
                plan.restorable = store.forecast(plan, ctx)
            events.planned(plan, explain)
            status = EXIT_FAILED if plan.missing or (check and plan.to_run) else EXIT_OK
            return BuildResult(plan, exit_status=status)
        if touch:
            return _touch(plan, ctx, reporter)
        if explain:  # like ninja's -d explain: say why before doing it
            events.planned(plan, True)
        if store is not None:
            store.forecast(plan, ctx, quiet=True)  # fetches ahead what the restores will read
        events.run_started(plan)
        if dask and backend is None:
            backend = make_backend(jobs, dict(_class_overrides), dask, events)
        previous = progress.listen(events.task_progress)
        try:
            results = _execute(plan, ctx, events, backend, jobs, keep_going, store)
        finally:
            progress.listen(previous)
        events.run_finished(results, time.perf_counter() - started, plan.missing)
        bad = any(r.status.blocks_downstream for r in results.values())
        return BuildResult(plan, results, EXIT_FAILED if bad or plan.missing else EXIT_OK)
    finally:
        gc.unfreeze()
        manifest.close()
        if recorder is not None:
            with phase("close the run history"):
                recorder.close()
            for message in recorder.warnings:
                reporter.warning(message)


def _recorder(reporter: Any, jobs: Any, options: dict[str, Any]) -> Recorder:
    """The run-history subscriber; it also gives the status line its ETA."""
    recorder = Recorder(store_dir(), history_keep(), int(options.get("workers", jobs) or 1))
    reporter.eta = recorder.eta
    return recorder


def _plan(graph: TaskGraph, ctx: Context, events: Fanout) -> Plan:
    """Decide every task; decide again if a damaged row turned up while deciding."""
    manifest = ctx.manifest
    recovered = manifest.recovered
    with _gc_paused(), phase("decide", tasks=len(graph.tasks)):
        plan = make_plan(graph, ctx)
    if manifest.recovered and not recovered:
        # The verdicts before the damaged row came from records now moved aside: decide again
        # from the empty store.
        ctx.fingerprints.forget_all()
        with _gc_paused():
            plan = make_plan(graph, ctx)
    _say_warnings(manifest, events)
    return plan


def _context(graph: TaskGraph, manifest: Manifest, force: bool, events: Fanout) -> Context:
    """What deciding needs; a writable run first cleans up after a killed one."""
    if PRELOAD_AT[0] <= len(graph.tasks) <= PRELOAD_AT[1]:
        with phase("read the manifest"):
            manifest.preload()
    # What run()s yielded last time joins the graph as requirements (one query when none did).
    add_recorded(graph, manifest.dynamic())
    _say_warnings(manifest, events)  # after the reads above: they may find a damaged row
    forced = {t for t, task in graph.tasks.items() if not is_external(task)} if force else set()
    ctx = Context(
        graph, manifest, Fingerprinter(manifest.get_stat), CodeHasher(os.getcwd()), forced
    )
    # Remote targets answer in batches (a listing per directory), not a request per object.
    ctx.fingerprints.prefetch(t for outs in graph.outputs.values() for t in outs)
    if not manifest.readonly:
        clean_interrupted(ctx, events.warning)
    return ctx


def _execute(
    plan: Plan,
    ctx: Context,
    events: Fanout,
    backend: Backend | None,
    jobs: int,
    keep_going: bool,
    cache: Any = None,
) -> dict[str, TaskResult]:
    """Run the plan's stale tasks (none when an external input is missing, unless -k)."""
    if plan.missing and not keep_going:
        return _not_started(plan)
    backend = backend or make_backend(jobs, dict(_class_overrides))
    try:
        with phase("execute", stale=len(plan.to_run)):
            results = Executor(plan, ctx, events, backend, keep_going, cache=cache).execute()
    except BaseException:
        if cache is not None:
            cache.close(interrupted=True)
        raise
    finally:
        backend.close()
    if cache is not None:
        cache.close()  # uploads still under way finish before the summary
    with phase("save the manifest"):
        ctx.manifest.save(stats=ctx.fingerprints.updates)
        ctx.manifest.flush()
    _say_warnings(ctx.manifest, events)
    return results


def _cache(location: str | None, events: Fanout) -> Any:
    """The artifact cache of this run, or None (its module is imported only when asked for)."""
    if not location:
        return None
    from .cache import Cache

    return Cache(location, events.warning)


def _say_warnings(manifest: Manifest, events: Fanout) -> None:
    for message in manifest.new_warnings():
        events.warning(message)


@contextlib.contextmanager
def _gc_paused() -> Iterator[None]:
    """Building a graph and a plan creates hundreds of thousands of long-lived objects and no
    garbage cycles worth collecting; the cyclic collector would walk them over and over (about
    a tenth of a 10,000-task no-op). Tasks run with it on."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def _not_started(plan: Plan) -> dict[str, TaskResult]:
    """Results for a run refused before it began because an external input is missing."""
    results = {}
    for tid in plan.graph.order:
        d = plan.decisions[tid]
        if d.missing_external:
            results[tid] = TaskResult(
                tid, Status.MISSING_EXTERNAL, d, error=", ".join(d.missing_external)
            )
        elif d.kind == "external":
            results[tid] = TaskResult(tid, Status.EXTERNAL, d)
        else:
            why = "not started: a missing external input (use -k to run what does not need it)"
            results[tid] = TaskResult(tid, Status.SKIPPED, d, error=why)
    return results


def _touch(plan: Plan, ctx: Context, reporter: Reporter) -> BuildResult:
    """make's -t: record every task whose outputs exist as built from the current inputs.

    One exception keeps -t's advice for a hand edit true: the edit is accepted as the output's
    content, and a task downstream that was built from the old content is left to rebuild from
    the edit (``input-changed`` on the next run), as it would have without -t.
    """
    records, missing = [], []
    edited: set[str] = set()  # outputs edited by hand, accepted here
    left: dict[str, list[str]] = {}  # task -> the edited inputs it was not built from
    for tid in plan.graph.order:
        d = plan.decisions[tid]
        task = plan.graph.tasks[tid]
        if d.kind != "task" or not plan.graph.outputs[tid]:
            continue
        outs = plan.graph.outputs[tid]
        if not all(output_exists(tid, o, ctx) for o in outs):
            missing.append(tid)
            continue
        stale = _built_from_before(d, outs, edited, ctx)
        if stale:
            left[tid] = stale
            continue
        edited.update(d.modified)
        for out in outs:
            if getattr(out, "key", None) is not None:
                ctx.fingerprints.forget(out.key)
        records += records_for(task, d, outs, ctx.fingerprints, kept(plan.graph, tid))
    ctx.manifest.save(records, ctx.fingerprints.updates)
    touched = list(dict.fromkeys(r.task_id for r in records))
    for tid in missing:
        reporter.warning(f"cannot mark {tid} up to date: an output is missing; run it instead")
    if reporter.json_mode:  # stdout carries the JSON document alone
        reporter.doc.update(touched=touched, left_to_rebuild=left, not_touched=missing)
        return BuildResult(plan, exit_status=EXIT_FAILED if missing else EXIT_OK)
    n = len(touched)
    reporter.text(f"flow: marked {n} task{'s' if n != 1 else ''} up to date without running")
    for tid, keys in left.items():
        reporter.text(
            f"flow: left {tid} to rebuild: it was built before {', '.join(keys)} was edited by "
            "hand; the next run rebuilds it from the edited copy"
        )
    return BuildResult(plan, exit_status=EXIT_FAILED if missing else EXIT_OK)


def _built_from_before(d: Any, outs: list[Any], edited: set[str], ctx: Context) -> list[str]:
    """The hand-edited inputs of a task whose records say it was built from their old content."""
    keys = [k for k in d.inputs if k in edited]
    if not keys:
        return []
    records = [ctx.manifest.get(o.key) for o in outs if getattr(o, "key", None) is not None]
    return [
        k for k in keys if any(r is not None and r.inputs.get(k) != d.inputs[k] for r in records)
    ]
