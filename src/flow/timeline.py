"""``--profile FILE``: a run's phases and tasks as a Chrome trace (open it in Perfetto).

Phases (loading the Flowfile, expanding the graph, deciding, executing, saving) are spans on
the "flow" track; each task that ran is a span of its ``run()`` on a "slot" track, the first
slot free when it started, so a ``-j 4`` run shows about four lanes. When no profile was asked for, ``phase()`` costs
one global lookup: the spine may call it unconditionally.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from collections.abc import Iterator
from typing import Any

_active: Timeline | None = None
_SLACK_NS = 20_000_000  # how late a finished task may be heard of, for lanes


class Timeline:
    """Spans collected in this process, written once as Chrome's trace-event JSON."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.origin = time.perf_counter_ns()
        self.events: list[dict[str, Any]] = []
        self.open: dict[str, int] = {}  # task id -> when flow started it
        self.tasks: list[tuple[int, int, str, dict[str, Any]]] = []  # (start, end, id, args)
        self.lanes = 0

    def _us(self, ns: int) -> float:
        return (ns - self.origin) / 1000

    def span(self, name: str, start: int, end: int, tid: int, args: dict[str, Any]) -> None:
        event = {"name": name, "ph": "X", "pid": 1, "tid": tid, "ts": self._us(start)}
        event.update(dur=(end - start) / 1000, args=args)
        event["cat"] = "phase" if tid == 0 else "task"
        self.events.append(event)

    # -- events (a Fanout subscriber) ---------------------------------------------------------
    def task_started(self, tid: str, k: int, n: int) -> None:
        self.open[tid] = time.perf_counter_ns()

    def task_finished(self, result: Any, k: int, n: int) -> None:
        begun = self.open.pop(result.task_id, None)
        if begun is None:  # settled without starting: up to date, skipped, restored
            return
        end = time.perf_counter_ns()
        # A worker may hold a task in its queue before running it: the span is its run, which
        # ended when flow heard of it (a few milliseconds late at most).
        start = max(begun, end - int(result.duration * 1e9))
        args = {"status": str(result.status), "run_seconds": round(result.duration, 6)}
        if result.decision is not None and result.decision.reasons:
            args["reason"] = result.decision.reasons[0].kind
        self.tasks.append((start, end, result.task_id, args))

    def _lanes(self) -> None:
        """Put each task on the first lane free when it started (``-j 4``: about four lanes);
        a start a little before the lane's last end (a late report) moves to that end."""
        ends: list[int] = []
        for start, end, tid, args in sorted(self.tasks):
            lane = next((i for i, e in enumerate(ends) if e <= start + _SLACK_NS), None)
            if lane is None:
                lane = len(ends)
                ends.append(end)
            start = max(start, ends[lane])
            ends[lane] = max(end, start)
            self.span(tid, start, max(end, start), lane + 1, args)
        self.lanes = len(ends)

    def write(self) -> str:
        """Write the trace file (atomically); returns its path."""
        self._lanes()
        meta = [_thread_name(0, "flow")]
        meta += [_thread_name(i + 1, f"slot {i + 1}") for i in range(self.lanes)]
        meta.append({"name": "process_name", "ph": "M", "pid": 1, "args": {"name": "flow"}})
        doc = {"traceEvents": meta + self.events, "displayTimeUnit": "ms"}
        tmp = f"{self.path}.{os.getpid()}.tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(doc, f, separators=(",", ":"))
        os.replace(tmp, self.path)
        return self.path


def _thread_name(tid: int, name: str) -> dict[str, Any]:
    return {"name": "thread_name", "ph": "M", "pid": 1, "tid": tid, "args": {"name": name}}


def start(path: str) -> Timeline:
    """Begin collecting spans for a profile written to ``path``."""
    global _active
    _active = Timeline(path)
    return _active


def stop() -> Timeline | None:
    """Stop collecting; the timeline collected, if any."""
    global _active
    timeline, _active = _active, None
    return timeline


def active() -> Timeline | None:
    """The timeline being collected (a subscriber for the build's events), or None."""
    return _active


@contextlib.contextmanager
def phase(name: str, **args: Any) -> Iterator[None]:
    """A span on the "flow" track around the block, when a profile is being collected."""
    timeline = _active
    if timeline is None:
        yield
        return
    begun = time.perf_counter_ns()
    try:
        yield
    finally:
        timeline.span(name, begun, time.perf_counter_ns(), 0, args)
