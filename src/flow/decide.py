"""Decide whether a task is stale, and say why (SPEC §3's rule chain, as data)."""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .codehash import CodeHasher, code_changes
from .errors import EXIT_FAILED, FlowError, GraphError, TargetError
from .fingerprint import PRIVATE_PREFIX, UNKNOWN_PRIVATE, Fingerprinter, recorded_params
from .flowfile import user_traceback
from .graph import TaskGraph
from .store.records import Manifest, Record
from .target import LocalTarget
from .task import ExternalTask, Task, WrapperTask, is_external

# The stable reason keywords, in the order a plan picks the first of.
KINDS = (
    "forced",
    "phony",
    "missing-output",
    "no-record",
    "params-changed",
    "code-changed",
    "input-changed",
    "output-modified",
    "upstream",
)
_RANK = {k: i for i, k in enumerate(KINDS)}

# Reasons that do not make a task run by themselves: a hand-edited output is kept (as make and
# redo do), and "upstream" is only a dry-run's forecast.
PASSIVE = frozenset({"output-modified"})

_BUILTIN_COMPLETE = {Task.complete, WrapperTask.complete, ExternalTask.complete}


class _Empty(dict[str, Any]):
    """The shared default of Decision.params and .inputs: an empty dict that stays empty (JSON
    and comparisons see a dict)."""

    __hash__ = object.__hash__  # type: ignore[assignment]

    def _refuse(self, *args: Any, **kwargs: Any) -> Any:
        raise TypeError("a Decision's mappings are replaced, not changed in place")

    __setitem__ = __delitem__ = update = setdefault = pop = popitem = clear = _refuse  # type: ignore[assignment]


_NOTHING: Mapping[str, Any] = _Empty()


@dataclass(frozen=True, slots=True)
class Reason:
    """One reason a task would run: a stable keyword and a human detail."""

    kind: str
    detail: str = ""

    def __str__(self) -> str:
        return f"{self.kind}: {self.detail}" if self.detail else self.kind


@dataclass(slots=True)
class Decision:
    """The verdict on one task, with everything needed to record it after a run.

    Its sequences and mappings are replaced, never changed in place: the defaults are shared
    (a 100,000-task graph would otherwise hold 600,000 empty containers)."""

    task_id: str
    reasons: Sequence[Reason] = ()
    kind: str = "task"  # task | external | wrapper
    adopt: bool = False  # outputs exist without a record and nothing is newer: record them as built
    missing_external: Sequence[str] = ()
    params: Mapping[str, str] = _NOTHING
    code: str = ""
    inputs: Mapping[str, str | None] = _NOTHING
    modified: Sequence[str] = ()  # outputs edited since flow wrote them
    # Of those, the ones a task of this very run changed (not a person): rebuilt, not kept.
    overwritten: Sequence[str] = ()

    @property
    def stale(self) -> bool:
        return bool(self.overwritten) or any(r.kind not in PASSIVE for r in self.reasons)

    @property
    def reason(self) -> Reason | None:
        """The first reason in SPEC order: the one a plan shows."""
        return self.reasons[0] if self.reasons else None


@dataclass
class Context:
    """What deciding needs beyond the task: the graph, the store, and this run's hashers."""

    graph: TaskGraph
    manifest: Manifest
    fingerprints: Fingerprinter
    code: CodeHasher
    forced: set[str] = field(default_factory=set)


def decide(task: Task, ctx: Context) -> Decision:
    """Check one task against its records; all reasons are collected, in SPEC order."""
    tid = task.task_id
    d = Decision(tid)
    outputs = ctx.graph.outputs[tid]
    if is_external(task):
        return _decide_external(task, d, outputs, ctx)
    if isinstance(task, WrapperTask) and not outputs:
        d.kind = "wrapper"
        return d
    reasons: list[Reason] = []
    d.reasons = reasons
    add = reasons.append
    if tid in ctx.forced:
        add(Reason("forced", "-B/--force"))
    if type(task).complete not in _BUILTIN_COMPLETE:
        # A user's complete() is the authority on existence (Luigi's contract).
        if not _complete(task):
            add(Reason("missing-output", "complete() returned False"))
        return d
    if not outputs:
        add(Reason("phony", "no outputs: runs every time"))
        return d

    d.params = recorded_params(task, ctx.manifest.secret_key)
    d.code = ctx.code(type(task))
    d.inputs = _input_fingerprints(tid, ctx)
    missing = [_name(o) for o in outputs if not output_exists(tid, o, ctx)]
    if ctx.manifest.unfinished:  # a run died while writing these: never trust what is there
        missing += [
            f"{o.key} (left half-written by an interrupted run)"
            for o in outputs
            if getattr(o, "key", None) in ctx.manifest.unfinished and output_exists(tid, o, ctx)
        ]
    if missing:
        add(Reason("missing-output", ", ".join(missing)))
        return _sorted(d)

    keyed = [o for o in outputs if getattr(o, "key", None) is not None]
    records = {o.key: ctx.manifest.get(o.key) for o in keyed}
    unrecorded = [o for o in keyed if records[o.key] is None]
    if unrecorded:
        why = _not_adoptable(tid, d, unrecorded, ctx)
        if why:
            add(Reason("no-record", why))
        else:
            d.adopt = True  # recorded below if nothing else makes the task stale
    changed: dict[str, list[str]] = {}
    for out in keyed:
        rec = records[out.key]
        if rec is not None:
            _compare(rec, out, d, ctx, changed)
    if ctx.graph.lost and tid in ctx.graph.lost:  # recorded dynamic requirements now unknown
        changed.setdefault("input-changed", []).extend(ctx.graph.lost[tid])
    for kind, details in changed.items():
        add(Reason(kind, "; ".join(dict.fromkeys(details))))
    return _sorted(d)


def _decide_external(task: Task, d: Decision, outputs: list[Any], ctx: Context) -> Decision:
    """External data is never run: it is present, or a missing input named in the plan."""
    tid = task.task_id
    d.kind = "external"
    if type(task).complete not in _BUILTIN_COMPLETE:
        if not _complete(task):
            d.missing_external = [f"{tid} (its complete() returned False)"]
    elif not outputs:
        d.missing_external = [f"{tid} (an external task with no outputs is never complete)"]
    else:
        d.missing_external = [_name(o) for o in outputs if not output_exists(tid, o, ctx)]
    return d


def records_for(
    task: Task,
    d: Decision,
    outputs: list[Any],
    fingerprints: Fingerprinter,
    dynamic: list[dict[str, Any]] | None = None,
) -> list[Record]:
    """The records of a task's outputs as they are now, built from what ``d`` saw and, for a
    ``run()`` that yielded tasks, their plain specs (``dynamic``)."""
    return [
        Record(
            o.key,
            task.task_id,
            task.task_family,
            dict(d.params),
            d.code,
            dict(d.inputs),
            read_target(fingerprints, o, f"an output of {task.task_id}", after_run=True),
            dynamic=list(dynamic or ()),
        )
        for o in outputs
        if getattr(o, "key", None) is not None
    ]


def _compare(
    rec: Record, out: Any, d: Decision, ctx: Context, changed: dict[str, list[str]]
) -> None:
    if rec.params != d.params and (delta := _params_delta(rec.params, d.params)):
        changed.setdefault("params-changed", []).append(delta)
    if rec.code != d.code and (what := code_changes(rec.code, d.code)) is not None:
        family = ctx.graph.tasks[d.task_id].task_family
        if rec.family != family:
            what = [f"{out.key} was produced by {rec.family}"]
        changed.setdefault("code-changed", []).extend(what or [f"code of {family} changed"])
    if rec.inputs != d.inputs:
        keys = sorted(set(rec.inputs) | set(d.inputs))
        diff = [k for k in keys if rec.inputs.get(k, "∅") != d.inputs.get(k, "∅")]
        changed.setdefault("input-changed", []).extend(diff)
    if rec.hash is not None:
        current = read_target(ctx.fingerprints, out, f"an output of {d.task_id}")
        if current != rec.hash:
            changed.setdefault("output-modified", []).append(out.key)
            d.modified = [*d.modified, out.key]


class UnreadableError(FlowError):
    """A file flow must hash cannot be read: exit 2 while planning, 1 once a task has run."""


def read_target(
    fingerprints: Fingerprinter, target: Any, role: str, after_run: bool = False
) -> Any:
    """A target's fingerprint; a file that cannot be read is one line naming it, not a traceback."""
    try:
        return fingerprints.target(target)
    except OSError as exc:
        path = exc.filename or _name(target)
        error = UnreadableError(
            f"cannot read {path} ({role}): {exc.strerror or exc}; make it a readable file or "
            "directory"
        )
        if after_run:
            error.exit_status = EXIT_FAILED
        raise error from None


def _complete(task: Task) -> bool:
    """A user's ``complete()``: an exception in it is the Flowfile's bug, shown as such."""
    try:
        return bool(task.complete())
    except FlowError:
        raise
    except Exception as exc:
        raise GraphError(
            f"{task.task_id}.complete() raised an error:\n{user_traceback(exc)}"
        ) from None


def output_exists(tid: str, target: Any, ctx: Context) -> bool:
    """``exists()`` of an output; an exception in a user's target is shown as the user's bug."""
    try:
        return ctx.fingerprints.exists(target)
    except TargetError as exc:  # the fingerprinter cannot know whose output it looked at
        raise GraphError(f"{tid}: {exc}") from None


def _sorted(d: Decision) -> Decision:
    d.reasons = sorted(d.reasons, key=lambda r: _RANK[r.kind])
    return d


def _name(target: Any) -> str:
    return str(getattr(target, "key", None) or getattr(target, "path", None) or target)


def _input_fingerprints(tid: str, ctx: Context) -> dict[str, str | None]:
    """Fingerprints of every output of the task's direct requirements, by key."""
    fps: dict[str, str | None] = {}
    for up in ctx.graph.deps[tid]:
        for out in ctx.graph.outputs[up]:
            key = getattr(out, "key", None)
            if key is not None:
                fps[key] = read_target(ctx.fingerprints, out, f"an input of {tid}")
    return fps


def _not_adoptable(tid: str, d: Decision, unrecorded: list[Any], ctx: Context) -> str:
    """Why outputs flow has no record of must be rebuilt, or "" to adopt them as up to date.

    Adopt only when nothing is known to differ: make's rule (no input is newer), and two of
    flow's own, for the cases where make's rule adopts the wrong content.
    """
    first = unrecorded[0].key
    if ctx.manifest.recovered:
        # flow built these, and the records that said from what are gone.
        return f"{first}: the manifest was unreadable, so what built it is unknown"
    newer = _newer_input(tid, unrecorded, ctx)
    if newer:
        return newer
    for out in unrecorded:
        # Top(k=3) and Top(k=5) both write out/top.txt: its mere existence says nothing of k.
        unnamed = [n for n, v in d.params.items() if not _names(out.key, v)]
        if unnamed:
            which = ", ".join(unnamed)
            return (
                f"{out.key}: its path does not name {which}, so which {which} built it is unknown"
            )
    return ""


def _names(path: str, value: str) -> bool:
    """Does ``path`` spell ``value`` as a token of its own, not run on into more digits (for a
    number) or letters (for a word)? ``out/leaf10.txt`` names 10, and neither 1 nor 0."""
    start = path.find(value) if value else -1
    while start != -1:
        end = start + len(value)
        if (start == 0 or not _same_kind(path[start - 1], value[0])) and (
            end == len(path) or not _same_kind(path[end], value[-1])
        ):
            return True
        start = path.find(value, start + 1)
    return False


def _same_kind(a: str, b: str) -> bool:
    return (a.isdigit() and b.isdigit()) or (a.isalpha() and b.isalpha())


def _newer_input(tid: str, unrecorded: list[Any], ctx: Context) -> str:
    """make's rule for outputs flow has no record of: is any input file newer than the oldest?"""
    mtimes = [ctx.fingerprints.mtime_ns(o.path) for o in unrecorded if isinstance(o, LocalTarget)]
    known = [m for m in mtimes if m is not None]
    if not known:
        return ""
    oldest = min(known)
    for up in ctx.graph.deps[tid]:
        for out in ctx.graph.outputs[up]:
            if isinstance(out, LocalTarget) and not os.path.isdir(out.path):
                m = ctx.fingerprints.mtime_ns(out.path)
                if m is not None and m > oldest:
                    return f"{out.key} is newer than {unrecorded[0].key}"
    return ""


def _params_delta(old: Mapping[str, str], new: Mapping[str, str]) -> str:
    parts = []
    for name in sorted(set(old) | set(new), key=lambda n: (n not in new, n)):
        a, b = old.get(name), new.get(name)
        if b == UNKNOWN_PRIVATE:  # no key to hash it with (a dry run): unknown, not changed
            continue
        if a == b:
            continue
        if any(v and v.startswith(PRIVATE_PREFIX) for v in (a, b)):  # name it, never show it
            parts.append(f"{name} changed (private)")
        else:
            parts.append(f"{name} {'∅' if a is None else a} → {'∅' if b is None else b}")
    return ", ".join(parts)
