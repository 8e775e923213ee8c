"""The plan: every task's decision, the stale subset in order, and `upstream` cascades."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

from .decide import Context, Decision, Reason, decide
from .graph import TaskGraph
from .task import is_external


@dataclass
class Plan:
    """Decisions for every task of the graph, and which would run, in dependency order."""

    graph: TaskGraph
    decisions: dict[str, Decision] = field(default_factory=dict)
    to_run: list[str] = field(default_factory=list)
    # key of a missing external output -> the tasks that directly need it
    missing: dict[str, list[str]] = field(default_factory=dict)
    blocked: set[str] = field(default_factory=set)  # tasks downstream of a missing external
    restorable: set[str] = field(default_factory=set)  # dry run: the artifact cache has them


def make_plan(graph: TaskGraph, ctx: Context) -> Plan:
    """Decide every task in dependency order; a task below one that will run is marked `upstream`."""
    plan = Plan(graph)
    will_run: set[str] = set()
    down = graph.dependents()
    for tid in _reading_ahead(graph, ctx):
        d = decide(graph.tasks[tid], ctx)
        plan.decisions[tid] = d
        if d.missing_external:
            for key in d.missing_external:
                plan.missing[key] = sorted(down[tid]) or [tid]
            plan.blocked.add(tid)
        ups = graph.deps[tid]
        if any(u in plan.blocked for u in ups):
            plan.blocked.add(tid)
        running_ups = [u for u in ups if u in will_run]
        if running_ups and d.kind != "external":
            shown = ", ".join(running_ups[:3]) + (
                f" and {len(running_ups) - 3} more" if len(running_ups) > 3 else ""
            )
            d.reasons = [*d.reasons, Reason("upstream", shown)]
            will_run.add(tid)
        elif d.stale:
            will_run.add(tid)
        if tid in will_run and d.kind == "task":
            plan.to_run.append(tid)
    return plan


# Tasks whose records the manifest reads at once, when it has not read them all (``preload``).
WINDOW = 2000


def _reading_ahead(graph: TaskGraph, ctx: Context) -> Iterator[str]:
    """The graph's order, the manifest reading ahead the rows of each window of tasks: the
    records and stat-cache entries of their outputs."""
    order, tasks = graph.order, graph.tasks
    for start in range(0, len(order), WINDOW):
        window = order[start : start + WINDOW]
        # Records only of what flow writes: external data has none, and a key that is not
        # there can cost a read of a large neighbouring row (a fan-in's input fingerprints).
        own = [k for t in window if not is_external(tasks[t]) for k in _keys(graph, t)]
        # Inputs are outputs of tasks decided before (in this window or an earlier one), whose
        # fingerprints the run remembers: only the window's own outputs are read.
        ctx.manifest.read_ahead(own, [k for t in window for k in _keys(graph, t)])
        yield from window


def _keys(graph: TaskGraph, tid: str) -> list[str]:
    return [k for o in graph.outputs[tid] if isinstance(k := getattr(o, "key", None), str)]
