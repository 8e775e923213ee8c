"""Expand requires() into a task graph, deduplicated by task id, checked for cycles, ordered.

Everything here is iterative: a 10,000-deep chain of tasks must not touch the recursion limit.
"""

from __future__ import annotations

import graphlib
from dataclasses import dataclass, field
from typing import Any

from .errors import FlowError, GraphError
from .flowfile import user_traceback
from .store import FLOW_DIR, in_store
from .task import Task, flatten


@dataclass
class TaskGraph:
    """Tasks by id, their upstream ids, their flattened outputs, and a dependency order."""

    tasks: dict[str, Task] = field(default_factory=dict)
    deps: dict[str, list[str]] = field(default_factory=dict)
    outputs: dict[str, list[Any]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    roots: list[str] = field(default_factory=list)

    def dependents(self) -> dict[str, list[str]]:
        """Downstream ids of every task (the reverse of ``deps``)."""
        down: dict[str, list[str]] = {tid: [] for tid in self.tasks}
        for tid, ups in self.deps.items():
            for up in ups:
                down[up].append(tid)
        return down


def build_graph(roots: list[Task], known: TaskGraph | None = None) -> TaskGraph:
    """Expand the requirements of ``roots``; tasks already in ``known`` are not expanded again."""
    graph = TaskGraph()
    graph.roots = list(dict.fromkeys(t.task_id for t in roots))
    stack = list(reversed(roots))
    while stack:
        task = stack.pop()
        tid = task.task_id
        if tid in graph.tasks:
            continue
        graph.tasks[tid] = task
        if known is not None and tid in known.tasks:
            graph.deps[tid] = []
            graph.outputs[tid] = known.outputs[tid]
            continue
        reqs = _call(task, "requires")
        for req in reqs:
            if not isinstance(req, Task):
                raise GraphError(
                    f"{tid}.requires() returned {req!r}, which is not a task; return task "
                    "instances (e.g. Other(n=1)), or a list or dict of them"
                )
        graph.deps[tid] = list(dict.fromkeys(r.task_id for r in reqs))
        for req in reversed(reqs):
            if req.task_id not in graph.tasks:
                stack.append(req)
        outs = _call(task, "output")
        for out in outs:
            if not callable(getattr(out, "exists", None)):
                raise GraphError(
                    f"{tid}.output() returned {out!r}, which is not a target; return a "
                    "flow.LocalTarget (or another object with exists()), or a list or dict of them"
                )
        graph.outputs[tid] = outs
    _check_outputs_unique(graph)
    graph.order = _order(graph)
    return graph


def _call(task: Task, method: str) -> list[Any]:
    try:
        return flatten(getattr(task, method)())
    except FlowError as exc:
        # Say where: a bad parameter inside requires() is the Flowfile's bug, not the command's.
        raise type(exc)(f"in {task.task_id}.{method}(): {exc}") from None
    except Exception as exc:
        raise GraphError(
            f"{task.task_id}.{method}() raised an error:\n{user_traceback(exc)}"
        ) from None


def _check_outputs_unique(graph: TaskGraph) -> None:
    owner: dict[str, str] = {}
    for tid, outs in graph.outputs.items():
        for out in outs:
            key = getattr(out, "key", None)
            if key is None:
                continue
            if in_store(key):
                raise GraphError(
                    f"{tid} declares the output {key}, inside {FLOW_DIR}/, flow's own store; "
                    "write it somewhere else"
                )
            other = owner.setdefault(key, tid)
            if other != tid:
                raise GraphError(
                    f"two tasks declare the output {key}: {other} and {tid}; give each task its own "
                    "output path (include the parameters that differ in it)"
                )


def _order(graph: TaskGraph) -> list[str]:
    sorter = graphlib.TopologicalSorter(graph.deps)
    try:
        return list(sorter.static_order())
    except graphlib.CycleError as exc:
        cycle = list(exc.args[1])
        # graphlib reports the cycle in successor order; print it the way requires() reads.
        path = " -> ".join(reversed(cycle))
        raise GraphError(
            f"dependency cycle: {path}; break it by removing one of these requires()"
        ) from None
