"""The only terminal writer: task lines with a [k/N] counter, plans, summaries, listings, JSON."""

from __future__ import annotations

import json
import os
import sys
from typing import IO, Any

from .events import TaskResult
from .plan import Plan

_UP_TO_DATE_WHY = {
    "task": "outputs exist; parameters, code and inputs match the record",
    "adopted": "outputs exist with no record and no input is newer: adopted as up to date",
    "unrecorded": "outputs exist (no content record for this kind of target)",
    "wrapper": "a wrapper: complete when what it requires is",
    "external": "external data: present",
}


def _fmt_duration(seconds: float) -> str:
    if seconds < 10:
        return f"{seconds:.2f}s"
    if seconds < 120:
        return f"{seconds:.1f}s"
    return f"{int(seconds // 60)}m{int(seconds % 60):02d}s"


class Reporter:
    """Prints what a run does. ``json_mode`` collects a document printed once by ``finish()``."""

    def __init__(
        self,
        quiet: bool = False,
        verbose: bool = False,
        json_mode: bool = False,
        out: IO[str] | None = None,
        err: IO[str] | None = None,
    ) -> None:
        self.out = out or sys.stdout
        self.err = err or sys.stderr
        self.quiet = quiet
        self.verbose = verbose
        self.json_mode = json_mode
        self.tty = _isatty(self.err)
        self.color = self.tty and not os.environ.get("NO_COLOR")
        self.doc: dict[str, Any] = {}
        self._status_shown = False
        self._running: dict[str, int] = {}  # task id -> its [k/N] number, in start order
        self._n = 0
        self._progress: dict[str, tuple[str, str]] = {}  # task id -> (message, "40%")
        self.eta: Any = None  # () -> seconds left or None; set by the run history

    # -- low level --------------------------------------------------------------------------------
    def _paint(self, text: str, code: str) -> str:
        return f"\x1b[{code}m{text}\x1b[0m" if self.color else text

    def _line(self, text: str, stream: IO[str] | None = None) -> None:
        self._clear_status()
        stream = stream or self.out
        try:
            try:
                stream.write(text + "\n")
            except UnicodeEncodeError:  # a non-UTF-8 file name on a strict console: escape it
                encoding = getattr(stream, "encoding", None) or "utf-8"
                stream.write((text + "\n").encode(encoding, "backslashreplace").decode(encoding))
            stream.flush()
        except BrokenPipeError:
            _reader_left(stream)

    def _clear_status(self) -> None:
        if self._status_shown:
            self.err.write("\r\x1b[K")
            self._status_shown = False

    def warning(self, message: str) -> None:
        self._line(f"flow: {self._paint('warning', '33')}: {message}", self.err)

    def info(self, message: str) -> None:
        """A note about the run itself (where it runs, a dashboard's address), on stderr."""
        if not self.quiet:
            self._line(f"flow: {message}", self.err)

    def error(self, message: str) -> None:
        self._line(f"flow: {self._paint('error', '31')}: {message}", self.err)

    # -- a run --------------------------------------------------------------------------------
    def task_started(self, tid: str, k: int, n: int) -> None:
        self._running[tid] = k
        self._n = n
        if self.json_mode or self.quiet:
            return
        if self.verbose:
            self._line(f"[{k}/{n}] start {tid}")
        else:
            self._status()

    def task_waiting(self, tid: str) -> None:
        if not (self.json_mode or self.quiet):
            self._line(f"flow: waiting for another flow process to finish {tid}", self.err)

    def _status(self) -> None:
        """The live line on a terminal: what is running now."""
        if not self.tty or not self._running:
            return
        names = list(self._running)
        shown = ", ".join(
            f"{n} ({' '.join(x for x in self._progress[n] if x)})" if n in self._progress else n
            for n in names[:3]
        ) + (f" and {len(names) - 3} more" if len(names) > 3 else "")
        eta = self.eta() if self.eta is not None else None
        left = f"  ETA {_fmt_duration(eta)}" if eta is not None else ""
        line = f"[{min(self._running.values())}/{self._n}] running {shown} …{left}"
        width = _width(self.err)
        if len(line) > width:  # one terminal row, or \r cannot erase it
            line = line[: width - 2] + "…"
        self._clear_status()
        self.err.write(line)
        self.err.flush()
        self._status_shown = True

    def task_progress(self, tid: str, message: str | None, percentage: float | None) -> None:
        """A running task said what it is doing: refresh the status line."""
        text, pct = self._progress.get(tid, ("", ""))
        if message is not None:
            text = " ".join(message.split())[:60]
        if percentage is not None:
            pct = f"{percentage:.0f}%"
        self._progress[tid] = (text, pct)
        if not (self.json_mode or self.quiet or self.verbose):
            self._status()

    def task_finished(self, result: TaskResult, k: int, n: int) -> None:
        self._running.pop(result.task_id, None)
        self._progress.pop(result.task_id, None)
        if result.status == "failed":
            self._line(
                f"[{k}/{n}] {self._paint('FAILED', '31')} {result.task_id}  {_fmt_duration(result.duration)}",
                self.err,
            )
            self._captured(result, self.err)
            self._line(result.error, self.err)
            self._status()
            return
        if self.json_mode or self.quiet:
            return
        reason = result.decision.reason if result.decision else None
        why = f"  ({reason.kind})" if reason else ""
        if result.status == "restored":
            why = f"  restored from the cache{why}"
        self._line(f"[{k}/{n}] {result.task_id}  {_fmt_duration(result.duration)}{why}")
        if self.verbose:
            self._captured(result, self.out)
        self._status()

    def _captured(self, result: TaskResult, stream: IO[str]) -> None:
        """Output a worker captured, shown in one piece so parallel tasks never interleave."""
        if result.output:
            body = result.output.rstrip("\n")
            self._line("\n".join(f"  | {line}" for line in body.split("\n")), stream)

    def run_finished(
        self, results: dict[str, TaskResult], elapsed: float, missing: dict[str, list[str]]
    ) -> None:
        """The closing summary: how many ran, were up to date, failed or were skipped."""
        # Externals and wrappers have nothing of their own to run: they are not counted as tasks.
        results = {
            t: r
            for t, r in results.items()
            if r.status != "external"
            and not (r.decision is not None and r.decision.kind == "wrapper")
        }
        counts = _count(results)
        self.missing(missing)
        adopted = [
            t for t, r in results.items() if r.status == "up-to-date" and _adopted(r.decision)
        ]
        if adopted:
            self.warning(
                f"adopted the existing outputs of {_some(adopted)} without running "
                f"{'it' if len(adopted) == 1 else 'them'}: no record in .flow/, and nothing says "
                "they are stale (run with -B to rebuild instead)"
            )
        if self.json_mode:
            self.doc["tasks"] = [_result_json(r) for r in results.values()]
            self.doc["summary"] = counts | {"adopted": len(adopted), "seconds": round(elapsed, 4)}
            return
        if not (
            counts["ran"]
            or counts["restored"]
            or counts["failed"]
            or counts["skipped"]
            or counts["missing_external"]
        ):
            if not self.quiet:
                self._line(f"flow: everything is up to date ({_plural(counts['total'], 'task')})")
            return
        if self.quiet and not (counts["failed"] or counts["skipped"] or counts["missing_external"]):
            return
        parts = [f"{counts['ran']} ran", f"{counts['up_to_date']} up to date"]
        if counts["restored"]:
            parts.insert(1, f"{counts['restored']} restored from the cache")
        if counts["failed"]:
            parts.append(f"{counts['failed']} failed")
        if counts["missing_external"]:
            parts.append(f"{counts['missing_external']} missing external")
        if counts["skipped"]:
            parts.append(f"{counts['skipped']} skipped")
        self._line(
            f"flow: {_plural(counts['total'], 'task')}: {', '.join(parts)} in {_fmt_duration(elapsed)}"
        )
        for status, label in (("failed", "failed"), ("skipped", "skipped")):
            for r in results.values():
                if r.status == status:
                    extra = f" ({r.error})" if status == "skipped" and r.error else ""
                    self._line(f"  {label}: {r.task_id}{extra}")

    def missing(self, missing: dict[str, list[str]]) -> None:
        if not missing:
            return
        if self.json_mode:
            self.doc["missing_external"] = [
                {"output": k, "needed_by": v} for k, v in missing.items()
            ]
            return
        for key, needed in missing.items():
            # The first few: a fan-in's hundreds of dependents would fill the screen (--json
            # has them all).
            shown = ", ".join(needed[:3]) + (f" and {len(needed) - 3} more" if len(needed) > 3 else "")
            self._line(
                f"flow: {self._paint('error', '31')}: missing external input: {key} (needed by {shown}); create it, or fix the task that declares it",
                self.err,
            )

    # -- plans --------------------------------------------------------------------------------
    def planned(self, plan: Plan, explain: bool = False) -> None:
        """A dry run: what would run, in order, each with its reason (all reasons with ``explain``)."""
        self.missing(plan.missing)
        if self.json_mode:
            run = set(plan.to_run)
            self.doc["plan"] = [_decision_json(plan, tid, tid in run) for tid in plan.graph.order]
            self.doc["would_run"] = list(plan.to_run)
            self.doc["would_restore"] = [t for t in plan.to_run if t in plan.restorable]
            return
        for tid in plan.graph.order:
            for key in plan.decisions[tid].modified:
                if not plan.decisions[tid].stale:
                    self.warning(
                        f"{key} was modified by hand since {tid} wrote it; flow keeps it (-t accepts it, -B rebuilds)"
                    )
        n_tasks = sum(1 for d in plan.decisions.values() if d.kind == "task")
        if not plan.to_run:
            self._line(
                f"flow: nothing to do: everything is up to date ({_plural(n_tasks, 'task')})"
            )
        else:
            restoring = len(plan.restorable)
            cached = f" ({restoring} from the cache)" if restoring else ""
            self._line(f"flow: {len(plan.to_run)} of {_plural(n_tasks, 'task')} would run{cached}:")
            width = min(max(len(t) for t in plan.to_run), 60)
            for tid in plan.to_run:
                d = plan.decisions[tid]
                reasons = d.reasons if explain else d.reasons[:1]
                first, *rest = reasons
                cached = "  (the cache would restore it)" if tid in plan.restorable else ""
                self._line(f"  {tid:<{width}}  {first}{cached}")
                for r in rest:
                    self._line(f"  {'':<{width}}  {r}")
        adopt = [t for t in plan.graph.order if _adopted(plan.decisions[t])]
        if adopt and not explain:  # --explain says "adopted" among the up-to-date tasks
            self._line(
                f"flow: would adopt the existing outputs of {_plural(len(adopt), 'task')} as up to "
                "date (no record, nothing says they are stale; -B rebuilds them):"
            )
            for tid in adopt:
                self._line(f"  {tid}")
        if explain:
            run = set(plan.to_run)
            up = [t for t in plan.graph.order if t not in run]
            if up:
                self._line("up to date:")
                width = min(max(len(t) for t in up), 60)
                for tid in up:
                    self._line(f"  {tid:<{width}}  {_why_up_to_date(plan, tid)}")

    def finish(self, **extra: Any) -> None:
        """Print the collected JSON document (``--json``)."""
        if self.json_mode:
            self.doc.update(extra)
            self._line(json.dumps(self.doc, indent=2, ensure_ascii=False))

    def text(self, text: str) -> None:
        """Plain output (listings, graphs), unaffected by --quiet."""
        self._line(text)


def _why_up_to_date(plan: Plan, tid: str) -> str:
    d = plan.decisions[tid]
    if d.kind != "task":
        return _UP_TO_DATE_WHY[d.kind]
    if d.adopt:
        return _UP_TO_DATE_WHY["adopted"]
    if all(getattr(o, "key", None) is None for o in plan.graph.outputs[tid]):
        return _UP_TO_DATE_WHY["unrecorded"]
    if d.modified:
        return f"output-modified: {', '.join(d.modified)} (kept; not a reason to rerun)"
    if not d.params and not d.code:
        return "complete() returned True"
    return _UP_TO_DATE_WHY["task"]


def _adopted(d: Any) -> bool:
    """Outputs adopted without a run (recorded as they are); a hand edit is never adopted."""
    return d is not None and d.kind == "task" and d.adopt and not d.stale and not d.modified


def _some(tids: list[str]) -> str:
    shown = ", ".join(tids[:3]) + (f" and {len(tids) - 3} more" if len(tids) > 3 else "")
    return f"{len(tids)} tasks ({shown})" if len(tids) > 1 else shown


def _count(results: dict[str, TaskResult]) -> dict[str, int]:
    counts = {
        "total": 0,
        "ran": 0,
        "restored": 0,
        "up_to_date": 0,
        "failed": 0,
        "skipped": 0,
        "missing_external": 0,
    }
    for r in results.values():
        counts["total"] += 1
        counts[r.status.replace("-", "_")] += 1
    return counts


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" + ("" if n == 1 else "s")


def _reasons_json(d: Any) -> list[dict[str, str]]:
    return [{"kind": r.kind, "detail": r.detail} for r in d.reasons] if d else []


def _decision_json(plan: Plan, tid: str, would_run: bool) -> dict[str, Any]:
    d = plan.decisions[tid]
    task = plan.graph.tasks[tid]
    return {
        "task": tid,
        "family": task.task_family,
        "params": task.to_str_params(),
        "kind": d.kind,
        "would_run": would_run,
        "would_restore": tid in plan.restorable,
        "adopt": _adopted(d),
        "reasons": _reasons_json(d),
        "deps": plan.graph.deps[tid],
        # recorded by its last run(): also in deps, and decided like them before it runs
        "dynamic": plan.graph.dynamic.get(tid, []),
    }


def _result_json(r: TaskResult) -> dict[str, Any]:
    return {
        "task": r.task_id,
        "status": r.status,
        "reasons": _reasons_json(r.decision),
        "seconds": round(r.duration, 4),
        **({"adopted": True} if r.status == "up-to-date" and _adopted(r.decision) else {}),
        **({"attempts": r.attempts} if r.attempts > 1 else {}),  # a task's retry_count
        **({"error": r.error} if r.error else {}),
    }


def _reader_left(stream: IO[str]) -> None:
    """`flow ... | head -1`: the reader went away. The build goes on; its output goes nowhere."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, stream.fileno())
    except (OSError, ValueError):
        pass
    finally:
        os.close(devnull)


def _width(stream: IO[str]) -> int:
    import shutil

    return max(20, shutil.get_terminal_size((100, 24)).columns - 1)


def _isatty(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False
