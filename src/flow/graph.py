"""Expand requires() into a task graph, deduplicated by task id, checked for cycles, ordered.

Everything here is iterative: a 10,000-deep chain of tasks must not touch the recursion limit.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .errors import FlowError, GraphError
from .flowfile import user_traceback
from .store import FLOW_DIR
from .target import LocalTarget
from .task import Task, flatten, is_external


@dataclass
class TaskGraph:
    """Tasks by id, their upstream ids, their flattened outputs, and a dependency order."""

    tasks: dict[str, Task] = field(default_factory=dict)
    deps: dict[str, list[str]] = field(default_factory=dict)
    outputs: dict[str, list[Any]] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    roots: list[str] = field(default_factory=list)
    # Dynamic requirements recorded by the last run, put back (``flow.dynamic``): task id -> the
    # ids it yielded (also in ``deps``), and -> why some recorded ones cannot be re-created.
    dynamic: dict[str, list[str]] = field(default_factory=dict)
    lost: dict[str, list[str]] = field(default_factory=dict)

    def dependents(self) -> dict[str, list[str]]:
        """Downstream ids of every task (the reverse of ``deps``)."""
        down: dict[str, list[str]] = {tid: [] for tid in self.tasks}
        for tid, ups in self.deps.items():
            for up in ups:
                down[up].append(tid)
        return down


def build_graph(roots: list[Task]) -> TaskGraph:
    """Expand the requirements of ``roots`` into a graph, checked and ordered."""
    graph = TaskGraph()
    graph.roots = list(dict.fromkeys(t.task_id for t in roots))
    expand(graph, roots)
    check(graph)
    return graph


def check(graph: TaskGraph) -> None:
    """Refuse outputs two tasks would write, and order the graph (refusing a cycle)."""
    _check_outputs(graph)
    graph.order = _order(graph)


def expand(graph: TaskGraph, roots: list[Task], known: TaskGraph | None = None) -> None:
    """Add ``roots`` and everything they require to ``graph``, but no task already in it or
    in ``known``; ``check`` it afterwards."""
    stack = list(reversed(roots))
    while stack:
        task = stack.pop()
        tid = task.task_id
        if tid in graph.tasks or (known is not None and tid in known.tasks):
            continue
        graph.tasks[tid] = task
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


def _check_outputs(graph: TaskGraph) -> None:
    """Refuse outputs that two tasks would both write: one path (however it is spelled, symlinks
    included), one inside another's directory, or flow's own ``.flow/`` or an ancestor of it.
    External data is only read, so overlapping inputs (``Files("src/*.c")`` and ``src/a.c``) are
    fine.

    Linear in the outputs: each is looked up by its real place; the directories above are
    looked up once per distinct parent directory.
    """
    root = os.path.realpath(os.getcwd())
    store = os.path.join(root, FLOW_DIR)
    real_dirs: dict[str, str] = {"": root}
    owner: dict[str, tuple[str, str]] = {}  # real place -> (task id, key as declared)
    nested: list[tuple[str, str, str, str]] = []  # (parent, place, task id, key) with a hierarchy
    for tid, outs in graph.outputs.items():
        task = graph.tasks.get(tid)
        if task is not None and is_external(task):
            continue  # read, never written: two patterns may match one file, a file may lie in a tree
        for out in outs:
            key = getattr(out, "key", None)
            if key is None:
                continue
            if isinstance(out, LocalTarget) or key == FLOW_DIR or key.startswith(FLOW_DIR + "/"):
                parent, place = _real_place(key, root, real_dirs)
                if place.startswith(store) or store.startswith(place):  # cheap filter first
                    _check_not_the_store(tid, key, place, store)
            else:
                place = key
                parent = _parent(key) if "://" in key else ""
            other = owner.setdefault(place, (tid, key))
            if other[0] != tid:
                alias = "" if other[1] == key else f" (as {other[1]} and {key}: one file)"
                raise GraphError(
                    f"two tasks declare the output {other[1]}: {other[0]} and {tid}{alias}; give "
                    "each task its own output path (include the parameters that differ in it)"
                )
            if parent:
                nested.append((parent, place, tid, key))
    above: dict[str, list[tuple[str, str]]] = {}  # directory -> outputs it is, or lies inside
    for parent, _place, tid, key in nested:
        owners = above.get(parent)
        if owners is None:
            owners = above[parent] = [owner[d] for d in _dirs_up(parent, root) if d in owner]
        for other_tid, other_key in owners:
            # A task may declare a directory and files inside it: it writes both itself.
            if other_tid != tid:
                raise GraphError(
                    f"{tid} declares the output {key}, inside {other_key}, the output of "
                    f"{other_tid}: both would write it, and rebuilding {other_tid} would remove "
                    f"it; write it outside {other_key}, or let {other_tid} produce it"
                )


def _real_place(key: str, root: str, real_dirs: dict[str, str]) -> tuple[str, str]:
    """Where a local output really lives, as (real parent directory, real place): the parent
    resolved through symlinks once per directory. ``key`` is canonical (normalized, relative
    when inside the project)."""
    head, _, name = key.rpartition("/")
    if name in ("", ".", ".."):
        head, name = os.path.split(os.path.normpath(os.path.join(root, key)))
    real = real_dirs.get(head)
    if real is None:
        real = real_dirs[head] = os.path.realpath(os.path.join(root, head))
    if not name:  # the file system's root
        return "", real
    return real, f"{real.rstrip('/')}/{name}"


def _parent(place: str) -> str:
    """``/p/a/b`` -> ``/p/a``, ``s3://bucket/a`` -> ``s3://bucket``; "" at the top."""
    cut = place.rfind("/")
    return "" if cut <= 0 or place[cut - 1] == "/" else place[:cut]


def _dirs_up(directory: str, root: str) -> Iterator[str]:
    """``directory`` and those above it, stopping at the project: outputs that are the project
    or an ancestor of it are refused anyway."""
    while directory and directory != root and not root.startswith(directory + "/"):
        yield directory
        directory = _parent(directory)


def _check_not_the_store(tid: str, key: str, place: str, store: str) -> None:
    if place == store or place.startswith(store + "/"):
        raise GraphError(
            f"{tid} declares the output {key}, inside {FLOW_DIR}/, flow's own store; "
            "write it somewhere else"
        )
    if store.startswith(place.rstrip("/") + "/"):
        what = "the project directory" if place == os.path.dirname(store) else "a directory"
        raise GraphError(
            f"{tid} declares the output {key}, {what} that holds {FLOW_DIR}/, flow's own store "
            "(rebuilding it would remove flow's records, -B would back the project up into "
            "itself); declare a file or a subdirectory instead"
        )


def _order(graph: TaskGraph) -> list[str]:
    """Every task after the tasks it requires: an iterative depth-first post-order from the
    first task added (make's order), refusing a cycle with its path as requires() reads."""
    deps = graph.deps
    done: set[str] = set()
    on_path: set[str] = set()
    order: list[str] = []
    for root in deps:
        if root in done:
            continue
        stack = [(root, iter(deps[root]))]
        on_path.add(root)
        while stack:
            tid, ups = stack[-1]
            for up in ups:
                if up in done:
                    continue
                if up in on_path:
                    _cycle([t for t, _ in stack], up)
                on_path.add(up)
                stack.append((up, iter(deps.get(up, ()))))
                break
            else:
                stack.pop()
                on_path.discard(tid)
                done.add(tid)
                order.append(tid)
    return order


def _cycle(path: list[str], back_to: str) -> None:
    """Raise the error of a cycle: ``path`` is the chain of requires() that led back to ``back_to``."""
    loop = path[path.index(back_to) :] + [back_to]
    raise GraphError(
        f"dependency cycle: {' -> '.join(loop)}; break it by removing one of these requires()"
    )
