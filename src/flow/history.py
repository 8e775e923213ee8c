"""Record a build in the run history: an events subscriber whose rows the store writes.

Rows are kept in memory and written in batches by one background thread (at most every
``FLUSH_EVERY`` seconds, and once at the end), so a 10,000-task build pays a few dozen short
commits rather than one per event, and a no-op pays one run row. The history is a log: when it
cannot be written, the build goes on with a warning.
"""

from __future__ import annotations

import os
import sqlite3
import threading
import time
from collections import Counter
from typing import TYPE_CHECKING, Any

from .events import Status, TaskResult

if TYPE_CHECKING:
    from .plan import Plan
    from .store.history import HistoryWriter

FLUSH_EVERY = 0.3  # seconds between batched writes while a run is live
_STATUS = {Status.MISSING_EXTERNAL: "failed", Status.EXTERNAL: "up-to-date"}


def graph_rows(plan: Plan) -> list[dict[str, Any]]:
    """The graph as the visualiser shows it: id, family, public parameters, upstream ids."""
    g = plan.graph
    return [
        {
            "task": tid,
            "family": g.tasks[tid].task_family,
            "params": g.tasks[tid].to_str_params(only_significant=False),
            "deps": g.deps[tid],
        }
        for tid in g.order
    ]


def graph_signature(plan: Plan) -> str:
    """A hash of the graph's ids, each task's upstream ids and its insignificant parameter
    values (the significant ones are in its id): a rerun of the same graph reuses the stored
    one, a rewired graph or a new insignificant value does not. A few ms at 20,000 tasks."""
    import xxhash

    g = plan.graph
    deps, tasks = g.deps, g.tasks
    parts = []
    for tid in g.order:
        parts.append(tid)
        parts.append("\1".join(deps[tid]))
        names = _insignificant(type(tasks[tid]))
        if names:
            kwargs = tasks[tid].param_kwargs
            parts.append("\2".join(repr(kwargs.get(n)) for n in names))
    text = "\0".join(parts).encode("utf-8", "surrogateescape")
    return str(xxhash.xxh3_128_hexdigest(text))


_INSIGNIFICANT: dict[type, tuple[str, ...]] = {}


def _insignificant(cls: type) -> tuple[str, ...]:
    """The names of a task class's insignificant, non-private parameters (asked once per class)."""
    names = _INSIGNIFICANT.get(cls)
    if names is None:
        params = cls.get_params()  # type: ignore[attr-defined]
        names = _INSIGNIFICANT[cls] = tuple(
            n for n, p in params if not p.significant and not getattr(p, "private", False)
        )
    return names


def task_status(result: TaskResult) -> str:
    return _STATUS.get(result.status, str(result.status))


class Recorder:
    """Subscribes to a build's events and records the run; ``eta()`` feeds the status line."""

    def __init__(self, directory: str, keep: int, jobs: int = 1) -> None:
        # Absolute: a task's run() may change directory while the writer thread opens the file.
        self.directory = os.path.abspath(directory)
        self.keep = keep
        self.jobs = max(1, jobs)
        self.writer: HistoryWriter | None = None
        self.run = 0
        self.started = 0.0
        self.sig = ""
        self.plan: Plan | None = None
        self._dashboard: str | None = None
        self.rows: dict[str, list[Any]] = {}
        self.dirty: set[str] = set()
        self.finished = False
        self.warnings: list[str] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        # The ETA: estimated seconds of the tasks still to finish, and how many have no estimate.
        self._est: dict[str, float | None] = {}
        self._left = 0.0
        self._unknown = 0
        self._done_secs: list[float] = []

    # -- events ---------------------------------------------------------------------------------
    def run_started(self, plan: Plan) -> None:
        self.started = time.time()
        # Tasks get rows as they start: until then the reader shows a live run's tasks pending.
        self.plan = plan
        self._open(plan)
        if self.writer is None or not plan.to_run:  # a no-op: one run row, and done
            return
        # Storing a new graph (20,000 tasks: a fraction of a second) overlaps the first tasks.
        self._thread = threading.Thread(
            target=self._writer_thread, args=(plan,), name="flow-history", daemon=True
        )
        self._thread.start()

    def _open(self, plan: Plan) -> None:
        """Open the history and insert the run row, at once: a run killed early still shows."""
        from .store.history import HistoryWriter

        try:
            self.writer = HistoryWriter(self.directory, self.keep)
            self.warnings += self.writer.warnings
            self.sig = graph_signature(plan)
            self.run = self.writer.start(self.started, list(plan.graph.roots), self.sig)
            if not plan.to_run:
                self.writer.store_graph(self.sig, lambda: graph_rows(plan))
        except (sqlite3.Error, OSError) as exc:
            self._give_up(exc)

    def _writer_thread(self, plan: Plan) -> None:
        try:
            assert self.writer is not None
            self.writer.store_graph(self.sig, lambda: graph_rows(plan))
            self._estimate(plan, self.writer.durations())
        except (sqlite3.Error, OSError) as exc:
            self._give_up(exc)
            return
        while not self._stop.wait(FLUSH_EVERY):
            self._flush()

    def dashboard(self, url: str) -> None:
        """The run's Dask dashboard, linked from the page (written with the next batch)."""
        with self._lock:
            self._dashboard = url

    def task_started(self, tid: str, k: int, n: int) -> None:
        with self._lock:
            row = self.rows.get(tid)
            if row is None:
                row = self.rows[tid] = self._new_row(tid, "pending")
            row[1], row[4] = "running", time.time()
            self.dirty.add(tid)

    def task_progress(self, tid: str, message: str | None, percentage: float | None) -> None:
        with self._lock:
            row = self.rows.get(tid)
            if row is None:
                return
            if message is not None:
                row[6] = message
            if percentage is not None:
                row[7] = percentage
            self.dirty.add(tid)

    def task_finished(self, result: TaskResult, k: int, n: int) -> None:
        with self._lock:
            self._row_of(result)
            if result.task_id in self._est:
                est = self._est.pop(result.task_id)
                if est is None:
                    self._unknown -= 1
                else:
                    self._left -= est
        if result.status is Status.RAN:
            self._done_secs.append(result.duration)

    def run_finished(
        self, results: dict[str, TaskResult], elapsed: float, missing: dict[str, list[str]]
    ) -> None:
        counts: dict[str, int] = {}
        for status, n in Counter(r.status for r in results.values()).items():
            name = _STATUS.get(status, str(status))
            counts[name] = counts.get(name, 0) + n
        if counts.get("up-to-date", 0) < len(results) or self.rows:  # a no-op has no rows
            with self._lock:
                for result in results.values():
                    if result.task_id in self.rows or task_status(result) != "up-to-date":
                        self._row_of(result)
        bad = counts.get("failed", 0) + counts.get("skipped", 0)
        self._close("failed" if bad or missing else "succeeded", counts)

    def close(self) -> None:
        """The build ended without ``run_finished`` (Ctrl-C, SIGTERM, an error): interrupted."""
        if self.finished:
            return
        self._join()
        if self.writer is not None:
            with self._lock:
                for tid in self.plan.to_run if self.plan else ():
                    if tid not in self.rows:  # not reached
                        self.rows[tid] = self._new_row(tid, "pending")
                        self.dirty.add(tid)
                for row in self.rows.values():
                    if row[1] == "running":
                        row[1], row[5] = "failed", time.time()
                        row[8] = row[8] or "interrupted"
                        self.dirty.add(row[0])
            self._close("interrupted", None)

    # -- writing --------------------------------------------------------------------------------
    def _new_row(self, tid: str, status: str) -> list[Any]:
        """A task row in ``TASK_COLUMNS`` order: id, status, reason keyword, detail, started,
        finished, message, progress, output."""
        d = self.plan.decisions.get(tid) if self.plan is not None else None
        r = d.reason if d is not None else None
        return [tid, status, r and r.kind, r and r.detail, None, None, None, None, ""]

    def _row_of(self, result: TaskResult) -> None:
        tid = result.task_id
        row = self.rows.get(tid)
        if row is None:
            row = self.rows[tid] = self._new_row(tid, "")
        row[1] = task_status(result)
        if row[1] not in ("up-to-date", "skipped") and row[5] is None:
            now = row[5] = time.time()
            if row[4] is None:
                row[4] = now - result.duration
        if row[1] == "ran" and row[7] is not None:
            row[7] = 100.0
        if result.status is not Status.RAN and (result.error or result.output):
            from .store.history import OUTPUT_TAIL

            text = "\n".join(x for x in (result.output.rstrip("\n"), result.error) if x)
            row[8] = text[-OUTPUT_TAIL:]
        self.dirty.add(tid)

    def _flush(self, finish: tuple[str, float, dict[str, int]] | None = None) -> None:
        if self.writer is None:
            return
        with self._lock:
            rows = [tuple(self.rows[t]) for t in self.dirty]
            self.dirty.clear()
            dashboard, self._dashboard = self._dashboard, None
        if not rows and finish is None and dashboard is None:
            return
        try:
            self.writer.write(self.run, rows, finish, dashboard)
        except (sqlite3.Error, OSError) as exc:
            self._give_up(exc)

    def _join(self) -> None:
        """Stop the writer thread (it may still be opening the file: wait for that too)."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _close(self, status: str, counts: dict[str, int] | None) -> None:
        if self.finished:
            return
        self.finished = True
        self._join()
        if self.writer is None:
            return
        if counts is None:
            counts = {}
            for row in self.rows.values():
                counts[row[1]] = counts.get(row[1], 0) + 1
        self._flush((status, time.time(), counts))
        if self.writer is not None:
            self.writer.close()

    def _give_up(self, exc: BaseException) -> None:
        self.warnings.append(f"cannot record this run in the history: {exc}; the build goes on")
        if self.writer is not None:
            self.writer.close()
        self.writer = None

    # -- the ETA --------------------------------------------------------------------------------
    def _estimate(self, plan: Plan, known: dict[str, tuple[str, float]]) -> None:
        by_family: dict[str, list[float]] = {}
        for family, secs in known.values():
            by_family.setdefault(family, []).append(secs)
        means = {f: sum(v) / len(v) for f, v in by_family.items()}
        with self._lock:  # tasks that finished meanwhile have nothing left to estimate
            for tid in plan.to_run:
                row = self.rows.get(tid)
                if row is not None and row[1] not in ("pending", "running"):
                    continue
                got = known.get(tid)
                est = got[1] if got else means.get(plan.graph.tasks[tid].task_family)
                self._est[tid] = est
                if est is None:
                    self._unknown += 1
                else:
                    self._left += est

    def eta(self) -> float | None:
        """Seconds until the run ends, from recorded durations; None when there is no basis."""
        left = max(0.0, self._left)
        if self._unknown:
            if not self._done_secs:
                return None
            left += self._unknown * sum(self._done_secs) / len(self._done_secs)
        return left / self.jobs
