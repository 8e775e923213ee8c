"""``flow --report FILE``: one self-contained HTML page of a run (or a plan), critical path included.

The page is the visualiser's own (``static/``) with its script, styles and the vendored dagre
inlined, and the run embedded as JSON that HTML cannot end early: ``<``, ``>`` and ``&`` are
written as JSON escapes, so ``</script>`` in a parameter value stays text.
"""

from __future__ import annotations

import json
import os
import time
from typing import Any

from ..errors import FlowError
from ..history import graph_rows, task_status
from ..store import store_dir
from ..store.history import OUTPUT_TAIL, read_durations
from .server import STATIC


def run_document(result: Any, durations: dict[str, tuple[str, float]]) -> dict[str, Any]:
    """The run (or, without results, the plan) in the JSON API's shape, plus its critical path."""
    plan = result.plan
    results = result.results
    tasks = []
    for row in graph_rows(plan):
        tid = row["task"]
        r = results.get(tid)
        d = plan.decisions[tid]
        reason = d.reason
        status = task_status(r) if r else ("pending" if tid in plan.to_run else "up-to-date")
        output = ""
        if r is not None and r.status in ("failed", "missing-external", "skipped"):
            output = "\n".join(x for x in (r.output.rstrip("\n"), r.error) if x)[-OUTPUT_TAIL:]
        ran = r is not None and status in ("ran", "failed")
        tasks.append(
            {
                **row,
                "status": status,
                "reason": reason.kind if reason and (status != "up-to-date") else None,
                "detail": reason.detail if reason and (status != "up-to-date") else "",
                "duration": round(r.duration, 4) if ran and r else None,
                "estimate": durations.get(tid, ("", None))[1],
                "message": None,
                "progress": None,
                "output": output,
            }
        )
    planned = not results
    status = "planned" if planned else ("succeeded" if result.exit_status == 0 else "failed")
    run = {"id": "plan" if planned else "report", "status": status, "started": time.time(),
           "finished": None, "tasks": tasks}  # fmt: skip
    return {"run": run, "critical": critical_path(tasks, planned)}


def critical_path(tasks: list[dict[str, Any]], planned: bool) -> dict[str, Any]:
    """The chain of dependencies with the longest total duration (estimated for a plan)."""
    cost: dict[str, float] = {}
    best: dict[str, tuple[float, str | None]] = {}
    for t in tasks:  # in dependency order
        own = t["estimate"] if planned else t["duration"]
        if planned and t["status"] == "up-to-date":
            own = 0.0
        cost[t["task"]] = float(own or 0.0)
        up = max(((best[d][0], d) for d in t["deps"] if d in best), default=(0.0, None))
        best[t["task"]] = (up[0] + cost[t["task"]], up[1])
    if not best:
        return {"path": [], "seconds": 0.0}
    end = max(best, key=lambda k: best[k][0])
    path: list[str] = []
    node: str | None = end
    while node is not None:
        path.append(node)
        node = best[node][1]
    return {"path": path[::-1], "seconds": round(best[end][0], 4)}


def embed_json(data: Any) -> str:
    """JSON that is safe inside a ``<script>`` element (no ``</script>``, ``<!--``, entities)."""
    text = json.dumps(data)  # ASCII: a non-UTF-8 file name (a lone surrogate) is an escape
    for raw, escaped in (("<", "\\u003c"), (">", "\\u003e"), ("&", "\\u0026")):
        text = text.replace(raw, escaped)
    return text.replace("\u2028", "\\u2028").replace("\u2029", "\\u2029")


def render(document: dict[str, Any]) -> str:
    """The page with everything inline: it needs no server and no network."""

    def asset(name: str) -> str:
        with open(os.path.join(STATIC, name), encoding="utf-8") as f:
            return f.read()

    page = asset("index.html")
    script = asset("dagre.min.js") + "\n" + asset("app.js")
    # A script that contains "</script" (or "<!--") would end early: escape it as JS allows.
    script = script.replace("</script", "<\\/script").replace("<!--", "<\\!--")
    page = page.replace(
        '<link rel="stylesheet" href="/static/style.css">', f"<style>\n{asset('style.css')}</style>"
    )
    page = page.replace("<title>flow — runs</title>", "<title>flow — report</title>")
    page = page.replace(
        '<script src="/static/dagre.min.js"></script>\n<script src="/static/app.js"></script>',
        f'<script type="application/json" id="flow-data">{embed_json(document)}</script>\n'
        f"<script>\n{script}\n</script>",
    )
    return page


def write_report(path: str, result: Any) -> str:
    """Write the report of ``result`` (a BuildResult) to ``path``; return the path written."""
    if result.plan is None:
        raise FlowError("no report: the build stopped before it had a plan")
    document = run_document(result, read_durations(store_dir()))
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(render(document))
        os.replace(tmp, path)
    except OSError as exc:
        raise FlowError(f"cannot write the report {path}: {exc.strerror}") from None
    return path
