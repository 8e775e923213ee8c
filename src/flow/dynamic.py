"""Dynamic requirements across runs: yielded tasks as plain specs to record, and recorded specs
re-created and put back into the graph, so that their outputs are inputs of the task that
yielded them (``input-changed``, early cutoff) before its ``run()`` says so again.
"""

from __future__ import annotations

import os
import sys
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from .errors import FlowError, GraphError
from .graph import TaskGraph, check, expand
from .task import Task, flatten, is_external

if TYPE_CHECKING:
    from .decide import Context, Decision

Spec = dict[str, Any]


def spec_of(task: Task) -> Spec:
    """A plain spec to re-create ``task`` from: module reference, class name, parameter strings.

    Private parameter values are left out (they never go to ``.flow/``): a re-created task takes
    their default or configured value. A task flow cannot name again (a class defined inside a
    function) gets no module, so that re-creating it fails with a reason.
    """
    from .backends.pool import module_ref

    cls = type(task)
    ref = None if "<locals>" in cls.__qualname__ else module_ref(sys.modules.get(cls.__module__))
    params: dict[str, str | None] = {}
    try:
        for name, param in cls.get_params():  # type: ignore[attr-defined]
            if not param.private:
                value = task.param_kwargs[name]
                params[name] = None if value is None else param.serialize(value)
    except Exception:  # a value its own parameter cannot write out
        ref = None
    return {
        "module": _portable(ref),
        "qualname": cls.__qualname__,
        "params": params,
        "tid": task.task_id,
    }


def revive(spec: Spec, modules: dict[tuple[str, str], Any]) -> Task | str:
    """The task a spec names, re-created from the classes loaded in this run, or why not.

    Nothing is imported: a class is found only in a module this run has loaded already.
    """
    ref, qualname = spec["module"], spec["qualname"]
    if ref is None:
        return "flow could not name its class to re-create it"
    module = modules.get(_absolute(ref))
    if module is None:
        return f"{ref[1]} is not loaded in this run (import it in the Flowfile)"
    cls: Any = module
    for part in qualname.split("."):
        cls = getattr(cls, part, None)
    if not (isinstance(cls, type) and issubclass(cls, Task)):
        return f"{os.path.basename(ref[1])} has no task class {qualname} any more"
    params = dict(cls.get_params())  # type: ignore[attr-defined]
    private = [name for name, p in params.items() if p.private]
    if private:
        # Its value is never recorded, and a default or configured value would make another
        # task than the one run() yields: let run() yield it again instead.
        return f"{qualname} has a private parameter ({private[0]}), whose value flow never records"
    unknown = [name for name in spec["params"] if name not in params]
    if unknown:
        return f"{qualname} has no parameter {unknown[0]} any more"
    try:
        values = {n: None if t is None else params[n].parse(t) for n, t in spec["params"].items()}
        task = cls(**values)
    except FlowError as exc:
        return str(exc)
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    if task.task_id != spec["tid"]:
        return f"it is re-created as {task.task_id}"
    return task  # type: ignore[no-any-return]


def add_recorded(graph: TaskGraph, recorded: dict[str, dict[str, list[Spec]]]) -> None:
    """Put back into ``graph`` the dynamic requirements recorded for its tasks (and theirs, and
    so on), as requirements; note in ``graph.lost`` those that cannot be re-created.

    ``recorded``: task id -> output key -> specs, as ``Manifest.dynamic()`` gives them.
    """
    if not recorded:  # the common case: one query found nothing, and the graph is left as it was
        return
    smaller = recorded if len(recorded) < len(graph.tasks) else graph.tasks
    todo = [t for t in smaller if t in recorded and t in graph.tasks]
    before = {tid: list(graph.deps[tid]) for tid in todo}
    added: list[str] = []
    modules: dict[tuple[str, str], Any] = {}  # indexed on first use (watch mode reloads them)
    while todo:
        new: list[str] = []
        for parent in todo:
            specs = _recorded(graph, parent, recorded[parent])
            if specs and not modules:
                modules = _loaded_modules()
            new += _put_back(graph, parent, specs, modules)
        added += new
        todo = [t for t in new if t in recorded]
    if not added and not graph.dynamic:
        return  # nothing was added: the graph is as checked
    try:
        check(graph)
    except GraphError as exc:
        # A record that no longer fits (a cycle, an output another task now declares): drop
        # them all rather than refuse to run; the tasks that yielded them are stale.
        for tid in added:
            del graph.tasks[tid], graph.deps[tid], graph.outputs[tid]
        graph.deps.update(before)
        for parent in before.keys() & graph.dynamic.keys():
            graph.lost[parent] = [f"its recorded dynamic requirements no longer fit: {exc}"]
        graph.dynamic.clear()
        check(graph)


def _recorded(graph: TaskGraph, tid: str, by_key: dict[str, list[Spec]]) -> list[Spec]:
    """The specs recorded with the outputs ``tid`` declares now, each task once."""
    keys = {getattr(o, "key", None) for o in graph.outputs[tid]}
    specs: dict[str, Spec] = {}
    for key, found in by_key.items():
        if key in keys:
            for spec in found:
                specs.setdefault(spec["tid"], spec)
    return list(specs.values())


def _put_back(
    graph: TaskGraph, parent: str, specs: list[Spec], modules: dict[tuple[str, str], Any]
) -> list[str]:
    """Add the tasks of ``specs`` (and what they require) as requirements of ``parent``;
    return the ids new to the graph."""
    new: list[str] = []
    ids: list[str] = []
    for spec in specs:
        task = revive(spec, modules)
        sub = TaskGraph()
        why = f"cannot be re-created: {task}" if isinstance(task, str) else ""
        if isinstance(task, Task):
            try:
                expand(sub, [task], known=graph)
                why = _missing_external(sub)
            except FlowError as exc:
                why = f"cannot be re-created: {exc}"
        if why or not isinstance(task, Task):
            graph.lost.setdefault(parent, []).append(
                f"{spec['tid']} (yielded by its last run) {why}"
            )
            continue
        graph.tasks.update(sub.tasks)
        graph.deps.update(sub.deps)
        graph.outputs.update(sub.outputs)
        new += sub.tasks
        if task.task_id not in graph.deps[parent]:
            ids.append(task.task_id)
    if ids:
        graph.dynamic[parent] = ids
        graph.deps[parent] = [*graph.deps[parent], *ids]
    return new


def _missing_external(sub: TaskGraph) -> str:
    """Why a recorded requirement cannot be built first: external data it needs is missing.

    Then the task that yielded it runs without it rather than wait for it (its run() may not
    yield it again); if it does, that build reports the missing data.
    """
    for tid, task in sub.tasks.items():
        if is_external(task):
            try:
                present = task.complete()
            except Exception:  # a user's complete(): the plan would report it; here, just stale
                present = False
            if not present:
                return f"needs {tid}, which is missing (not built first)"
    return ""


def kept(graph: TaskGraph, tid: str) -> list[Spec]:
    """The specs of a task's recorded dynamic requirements, for a record made without running
    it (adopted, ``-t``)."""
    return [spec_of(graph.tasks[t]) for t in graph.dynamic.get(tid, ())]


def retrace(ctx: Context, d: Decision, yielded: list[Task]) -> Decision:
    """``d`` with the inputs of a run that just ended: those of ``requires()``, and the outputs
    of what ``run()`` yielded this time (read now: they were built during the run)."""
    from .decide import read_target

    tid = d.task_id
    graph = ctx.graph
    old = set(graph.dynamic.get(tid, ()))
    static = {
        getattr(o, "key", None)
        for up in graph.deps[tid]
        if up not in old
        for o in graph.outputs[up]
    }
    inputs = {k: v for k, v in d.inputs.items() if k in static}
    for task in yielded:
        for out in flatten(task.output()):
            key = getattr(out, "key", None)
            if key is not None:
                inputs[key] = read_target(ctx.fingerprints, out, f"an input of {tid}", True)
    return replace(d, inputs=inputs)


def yielded_tasks(value: Any) -> list[Task]:
    """The tasks in what a ``run()`` yielded: a task, a structure of them, DynamicRequirements."""
    flat = getattr(value, "flat_requirements", None)
    return [t for t in (flat if flat is not None else flatten(value)) if isinstance(t, Task)]


def _loaded_modules() -> dict[tuple[str, str], Any]:
    """Every module this run has loaded, by the reference a spec names it with."""
    from .backends.pool import module_ref

    found: dict[tuple[str, str], Any] = {}
    for module in list(sys.modules.values()):
        try:
            ref = module_ref(module)
        except Exception:  # an odd module object that will not say
            continue
        if ref is not None:
            found.setdefault((ref[0], ref[1]), module)
    return found


def _portable(ref: tuple[str, str] | None) -> list[str] | None:
    """A file inside the project is named relative to it, so a moved checkout still matches."""
    if ref is None:
        return None
    kind, where = ref
    if kind == "file":
        rel = os.path.relpath(where)
        if not rel.startswith(".."):
            where = rel
    return [kind, where]


def _absolute(ref: list[str]) -> tuple[str, str]:
    kind, where = ref
    return (kind, os.path.abspath(where) if kind == "file" else where)
