"""The plan: every task's decision, the stale subset in order, and `upstream` cascades."""

from __future__ import annotations

from dataclasses import dataclass, field

from .decide import Context, Decision, Reason, decide
from .graph import TaskGraph


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
    for tid in graph.order:
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
            d.reasons.append(Reason("upstream", shown))
            will_run.add(tid)
        elif d.stale:
            will_run.add(tid)
        if tid in will_run and d.kind == "task":
            plan.to_run.append(tid)
    return plan
