"""Listings and graphs as text: ``--list`` and ``--graph`` (``report.Reporter.text`` prints them)."""

from __future__ import annotations

import json

# typing is not imported at run time: --list answers from the index without it (quick.py).
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from .plan import Plan


def render_list(flowfile: Any, names: list[str], json_mode: bool = False) -> str:
    """The Flowfile's tasks with their parameters and first docstring line (``flow --list``);
    with ``names``, those tasks in full: whole docstring and each parameter's description."""
    return format_list(list_entries(flowfile, names), bool(names), json_mode)


def list_entries(flowfile: Any, names: list[str]) -> list[dict[str, Any]]:
    """What ``--list`` shows of each task (all public tasks, or those ``names``), as plain data
    (the completion index keeps them, so an unchanged project lists without importing)."""
    from .config import active_defaults
    from .flowfile import find_task

    classes = (
        [find_task(flowfile, n) for n in names]
        if names
        else [c for c in flowfile.tasks if not c.__name__.startswith("_")]
    )
    default = flowfile.default_task
    configured = active_defaults(classes)
    return [describe_task(c, configured) | {"default_task": c is default} for c in classes]


def format_list(entries: list[dict[str, Any]], details: bool, json_mode: bool = False) -> str:
    """The text of ``--list`` from :func:`list_entries` (``details``: docstrings in full)."""
    if json_mode:
        return json.dumps({"tasks": entries}, indent=2, ensure_ascii=False)
    if not entries:
        return "flow: the Flowfile defines no tasks"
    signatures = [" ".join(_param_word(p) for p in e["params"]) for e in entries]
    width = max(len(e["name"]) for e in entries)
    sig_width = min(max(len(s) for s in signatures), 50)
    lines = []
    for e, sig in zip(entries, signatures, strict=True):
        line = f"{e['name']:<{width}}  {sig:<{sig_width}}"
        if e["doc"]:
            line += f"  # {e['doc']}"
        lines.append(line.rstrip())
        if details:
            lines += _task_details(e)
    return "\n".join(lines)


def _param_word(p: dict[str, Any]) -> str:
    """``n:int=10`` (a default), ``src:path`` (required), as ``just --list`` shows recipes."""
    word = f"{p['name']}:{p['type']}"
    return word if p["required"] else f"{word}={p['default'] if p['default'] is not None else ''}"


def _task_details(e: dict[str, Any]) -> list[str]:
    """The full docstring and a table of parameters, for ``flow --list TASK``."""
    lines = ["    " + ln if ln else "" for ln in e["full_doc"].splitlines()]
    if not e["params"]:
        return lines
    lines += ["", "    Parameters:"]
    width = max(len(p["name"]) for p in e["params"])
    for p in e["params"]:
        default = "required" if p["required"] else f"default: {p['default'] or '(none)'}"
        extras = [p["type"], default]
        if p["choices"] and p["type"] != "bool":
            extras.append("one of " + ", ".join(p["choices"]))
        desc = f"  {p['description']}" if p["description"] else ""
        lines.append(f"      {p['name']:<{width}}  ({'; '.join(extras)}){desc}")
    return lines


def describe_task(cls: Any, defaults: dict[tuple[str, str], Any] | None = None) -> dict[str, Any]:
    """A task class as plain data: name, docstrings, parameters (type, default, choices).
    ``defaults`` are configured values (luigi.cfg, [tool.flow.tasks]), shown as the defaults."""
    import inspect

    from .parameter import BoolParameter, ChoiceParameter, EnumParameter

    doc = inspect.getdoc(cls) if cls.__doc__ else ""
    params = []
    for name, p in cls.get_params():
        if p.visibility:  # hidden and private parameters are left out of listings and completion
            continue
        configured = (defaults or {}).get((cls.task_family, name), p._default)
        has_default = p.has_default or (cls.task_family, name) in (defaults or {})
        value = p.normalize(configured) if has_default and configured is not None else None
        default = p.serialize(value) if value is not None else None
        choices: list[str] = []
        if isinstance(p, BoolParameter):
            choices = ["true", "false"]
        elif isinstance(p, ChoiceParameter):
            choices = [str(c) for c in p.choices]
        elif isinstance(p, EnumParameter):
            choices = [m.name for m in p.enum]
        params.append(
            {
                "name": name,
                "type": p.type_name(),
                "default": default,
                "required": not has_default,
                "choices": choices,
                "description": p.description,
            }
        )
    return {
        "name": cls.task_family,
        "doc": (doc or "").split("\n", 1)[0],
        "full_doc": doc or "",
        "params": params,
    }


def render_graph(plan: Plan | None, fmt: str) -> str:
    """The task graph with each task's status, as dot, mermaid or json.

    A status is ``up to date``, ``stale: <reason keyword>``, ``external`` or ``missing external``.
    """
    assert plan is not None
    run = set(plan.to_run)

    def status(tid: str) -> str:
        d = plan.decisions[tid]
        if d.kind == "external":
            return "missing external" if d.missing_external else "external"
        if d.kind == "wrapper":
            return "stale: upstream" if d.reasons else "up to date"
        if tid in run:
            return f"stale: {d.reasons[0].kind}" if d.reasons else "stale"
        return "up to date"

    order = plan.graph.order
    deps = plan.graph.deps
    # Recorded dynamic requirements (yielded by run() last time) are drawn dashed.
    dynamic = {(u, t) for t, us in plan.graph.dynamic.items() for u in us}
    if fmt == "json":
        nodes = []
        for t in order:
            d = plan.decisions[t]
            reason = d.reasons[0] if t in run and d.reasons else None
            nodes.append(
                {
                    "task": t,
                    "status": status(t),
                    "reason": {"kind": reason.kind, "detail": reason.detail} if reason else None,
                    "deps": deps[t],
                    "dynamic": plan.graph.dynamic.get(t, []),
                }
            )
        return json.dumps({"nodes": nodes}, indent=2, ensure_ascii=False)
    if fmt == "mermaid":
        ids = {tid: f"t{i}" for i, tid in enumerate(order)}
        lines = ["graph TD"]
        lines += [f'    {ids[t]}["{_mermaid(t)}<br/>{status(t)}"]' for t in order]
        lines += [
            f"    {ids[u]} {'-.->' if (u, t) in dynamic else '-->'} {ids[t]}"
            for t in order
            for u in deps[t]
        ]
        return "\n".join(lines)
    lines = ["digraph flow {", "  rankdir=LR;", "  node [shape=box];"]
    for t in order:
        s = status(t)
        color = (
            "green"
            if s == "up to date"
            else "gray"
            if s == "external"
            else "red"
            if s == "missing external"
            else "orange"
        )
        label = _dot_escape(t) + "\\n" + _dot_escape(s)
        lines.append(f'  "{_dot_escape(t)}" [label="{label}", color={color}];')
    lines += [
        f'  "{_dot_escape(u)}" -> "{_dot_escape(t)}"{" [style=dashed]" if (u, t) in dynamic else ""};'
        for t in order
        for u in deps[t]
    ]
    lines.append("}")
    return "\n".join(lines)


def _dot_escape(text: str) -> str:
    """Text for a DOT double-quoted string: backslashes and quotes escaped, no raw newlines."""
    return text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _mermaid(text: str) -> str:
    """Text for a mermaid quoted label: quotes as entity codes."""
    return text.replace('"', "#quot;")
