"""Watch mode: build, then re-plan and rebuild whenever an input, the Flowfile or a module changes.

What is watched comes from the graph in one pass over its tasks: the outputs of external tasks
(``flow.Files`` matches among them) are inputs; the outputs of tasks flow runs are its own writes
and never a reason to run. Directories are watched, not files, so an editor's save-rename dance
and files that do not exist yet are seen, with one OS watch per directory.
"""

from __future__ import annotations

import contextlib
import fnmatch
import glob
import os
import queue
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from .config import active_files, refresh
from .errors import FlowError
from .flowfile import Flowfile, project_modules, reload_flowfile, user_traceback
from .graph import TaskGraph
from .shell import Files
from .spine import build
from .store import in_store
from .target import TMP_SUFFIX, LocalTarget
from .task import Task, is_external

QUIET = 0.2  # seconds without a relevant event that end a burst (a save, a `git checkout`)
MAX_WAIT = 2.0  # a burst that never goes quiet still rebuilds this long after it began
POLL_INTERVAL = 0.5  # seconds between scans when polling
POLLING_ENV = "FLOW_WATCH_POLLING"  # set to 1 to poll (network filesystems, some containers)

# Reading a file (flow hashing its inputs) opens and closes it; touching it changes only its
# attributes. Neither changes content, and flow decides by content.
_IGNORED_EVENTS = frozenset({"opened", "closed", "closed_no_write", "attrib"})


@dataclass
class WatchSet:
    """What one graph makes flow watch, and the judge of whether a changed path matters."""

    root: str
    exclude: tuple[str, ...] = ()
    files: set[str] = field(default_factory=set)  # inputs, the Flowfile, project modules
    sources: set[str] = field(default_factory=set)  # the Flowfile and project modules
    trees: set[str] = field(default_factory=set)  # input directories: anything below counts
    globs: list[tuple[str, list[str]]] = field(default_factory=list)  # (base dir, segments)
    produced: set[str] = field(default_factory=set)  # outputs flow writes
    awaited: set[str] = field(default_factory=set)  # missing directories of inputs
    dirs: dict[str, bool] = field(default_factory=dict)  # directory -> recursive

    def add_input(self, path: str) -> None:
        if os.path.isdir(path):
            self.trees.add(path)
            self._watch_dir(path, recursive=True)
        else:
            self.files.add(path)
            self._watch_dir(os.path.dirname(path), recursive=False)

    def add_glob(self, pattern: str) -> None:
        """A ``flow.Files`` pattern: new matches anywhere below its fixed part count."""
        segments = os.path.normpath(os.path.join(self.root, pattern)).split(os.sep)
        magic = [i for i, s in enumerate(segments) if glob.has_magic(s)]
        if not magic:
            self.add_input(os.sep.join(segments))
            return
        base = os.sep.join(segments[: magic[0]]) or os.sep
        rest = segments[magic[0] :]
        self.globs.append((base, rest))
        self._watch_dir(base, recursive=len(rest) > 1)

    def _watch_dir(self, path: str, recursive: bool) -> None:
        # A directory that does not exist yet: watch the nearest one that does for its creation.
        while not os.path.isdir(path):
            self.awaited.add(path)
            parent = os.path.dirname(path)
            if parent == path:
                return
            path, recursive = parent, False
        self.dirs[path] = self.dirs.get(path, False) or recursive

    def ignored(self, path: str) -> bool:
        """flow's own writes (outputs, ``.flow/``, temporaries, bytecode) and excluded paths."""
        rel = os.path.relpath(path, self.root)
        parts = rel.split(os.sep)
        if in_store(rel) or "__pycache__" in parts:
            return True
        if any(p.endswith(TMP_SUFFIX) for p in parts):
            return True
        if self.exclude and _excluded(rel, self.exclude):
            return True
        return any(p in self.produced for p in _self_and_parents(path))

    def wants(self, path: str) -> bool:
        """Whether a change at ``path`` calls for a re-plan."""
        if self.ignored(path):
            return False
        if path in self.files or path in self.awaited:
            return True
        if self.trees and any(p in self.trees for p in _self_and_parents(path)):
            return True
        for base, segments in self.globs:
            if path.startswith(base.rstrip(os.sep) + os.sep):
                rel = path[len(base.rstrip(os.sep)) + 1 :]
                if match_segments(segments, rel.split(os.sep)):
                    return True
        return False


def collect(
    root: str, graph: TaskGraph | None, sources: Iterable[str], exclude: tuple[str, ...]
) -> WatchSet:
    """The watch set of a graph: one pass over its tasks, no walk along its edges."""
    ws = WatchSet(root, exclude)
    for path in sources:
        ws.sources.add(path)
        ws.add_input(path)
    if graph is None:
        return ws
    for tid, task in graph.tasks.items():
        external = is_external(task)
        if isinstance(task, Files):
            ws.add_glob(task.pattern)
        for out in graph.outputs[tid]:
            if isinstance(out, LocalTarget):  # remote and custom targets are not watched
                path = os.path.abspath(out.path)
                if external:
                    ws.add_input(path)
                else:
                    ws.produced.add(path)
    return ws


def _self_and_parents(path: str) -> Iterable[str]:
    while True:
        yield path
        parent = os.path.dirname(path)
        if parent == path:
            return
        path = parent


def _excluded(rel: str, patterns: tuple[str, ...]) -> bool:
    """``--watch-exclude``: a glob against the path relative to the Flowfile, one of its parent
    directories, or the file name."""
    candidates = [rel, os.path.basename(rel)]
    head = os.path.dirname(rel)
    while head:
        candidates.append(head)
        head = os.path.dirname(head)
    return any(fnmatch.fnmatchcase(c, p.rstrip("/")) for c in candidates for p in patterns)


def match_segments(pattern: list[str], parts: list[str]) -> bool:
    """``glob.glob(recursive=True)`` semantics on path segments: ``**`` spans any number of
    directories, and wildcards do not match names starting with a dot."""

    def close(states: set[int]) -> set[int]:  # a ** may also match no segment at all
        out, stack = set(states), list(states)
        while stack:
            i = stack.pop()
            if i < len(pattern) and pattern[i] == "**" and i + 1 not in out:
                out.add(i + 1)
                stack.append(i + 1)
        return out

    states = close({0})
    for part in parts:
        nxt = set()
        for i in states:
            if i == len(pattern):
                continue
            seg = pattern[i]
            if part.startswith(".") and not seg.startswith("."):
                continue
            if seg == "**":
                nxt.add(i)
            elif fnmatch.fnmatchcase(part, seg):
                nxt.add(i + 1)
        states = close(nxt)
        if not states:
            return False
    return len(pattern) in states


class _Handler:
    """Receives watchdog's events (on its thread) and queues the paths that may matter."""

    def __init__(self, events: queue.SimpleQueue[str]) -> None:
        self.events = events

    def dispatch(self, event: Any) -> None:
        if event.event_type in _IGNORED_EVENTS:
            return
        if event.is_directory and event.event_type == "modified":
            return  # a file in it changed: that file's own event says which
        self.events.put(os.fsdecode(event.src_path))
        if getattr(event, "dest_path", ""):
            self.events.put(os.fsdecode(event.dest_path))


class Observer:
    """watchdog's native observer, or the polling one, over a set of directories that changes
    from build to build. Changed paths arrive in ``events``."""

    def __init__(self, reporter: Any, polling: bool = False) -> None:
        self.reporter = reporter
        self.polling = polling
        self.events: queue.SimpleQueue[str] = queue.SimpleQueue()
        self._handler = _Handler(self.events)
        self._observer: Any = None
        self._watches: dict[str, tuple[Any, bool, int]] = {}  # dir -> (watch, recursive, inode)

    def watch(self, dirs: dict[str, bool]) -> None:
        """Watch exactly ``dirs`` (directory -> recursive); fall back to polling if need be."""
        try:
            self._update(dirs)
        except OSError as exc:
            if self.polling:
                raise
            # Typically the inotify limits (fs.inotify.max_user_watches / max_user_instances).
            self.reporter.warning(
                f"native file watching failed ({exc.strerror or exc}); "
                f"polling every {POLL_INTERVAL:g}s instead"
            )
            self.stop()
            self.polling = True
            self._update(dirs)

    def _update(self, dirs: dict[str, bool]) -> None:
        if self._observer is None:
            if self.polling:
                from watchdog.observers.polling import PollingObserver

                self._observer = PollingObserver(timeout=POLL_INTERVAL)
            else:
                from watchdog.observers import Observer as NativeObserver

                self._observer = NativeObserver()
            self._observer.start()
        for path, (watch, recursive, inode) in list(self._watches.items()):
            # A directory deleted and made again is a new one: its old watch sees nothing.
            if dirs.get(path) != recursive or _inode(path) != inode:
                with contextlib.suppress(Exception):
                    self._observer.unschedule(watch)
                del self._watches[path]
        for path, recursive in dirs.items():
            found = _inode(path)
            if path in self._watches or found is None:
                continue
            try:
                watch = self._observer.schedule(self._handler, path, recursive=recursive)
            except OSError:
                if os.path.isdir(path):
                    raise
                continue  # gone since the graph was read: the next re-plan sees why
            self._watches[path] = (watch, recursive, found)

    def stop(self) -> None:
        if self._observer is not None:
            with contextlib.suppress(Exception):
                self._observer.stop()
                self._observer.join(timeout=2)
        self._observer = None
        self._watches.clear()


def _inode(path: str) -> int | None:
    try:
        return os.stat(path).st_ino
    except OSError:
        return None


def wait_for_changes(events: queue.SimpleQueue[str], wanted: Callable[[str], bool]) -> list[str]:
    """Block until a path that matters changes, then gather the burst it begins: until QUIET
    seconds pass without another, or MAX_WAIT after the first."""
    changed: dict[str, None] = {}
    while not changed:
        try:
            path = events.get(timeout=1.0)  # a timeout keeps Ctrl-C prompt
        except queue.Empty:
            continue
        if wanted(path):
            changed[path] = None
    now = time.monotonic()
    deadline, quiet_until = now + MAX_WAIT, now + QUIET
    while (wait := min(quiet_until, deadline) - time.monotonic()) > 0:
        try:
            path = events.get(timeout=wait)
        except queue.Empty:
            break
        if wanted(path):
            changed[path] = None
            quiet_until = time.monotonic() + QUIET
    return list(changed)


class Session:
    """The state of one ``flow -w``: the last good Flowfile and roots, and what to watch."""

    def __init__(
        self,
        flowfile: Flowfile,
        tokens: list[str],
        roots: list[Task],
        options: dict[str, Any],
        reporter: Any,
        exclude: tuple[str, ...] = (),
    ) -> None:
        self.flowfile = flowfile
        self.tokens = tokens
        self.roots = roots
        self.options = options
        self.reporter = reporter
        self.exclude = exclude
        self.root = os.path.abspath(flowfile.root)
        self.graph: TaskGraph | None = None
        self.broken = False  # the Flowfile on disk fails to import: rebuild nothing until fixed
        self.ws = WatchSet(self.root, exclude)

    def wants(self, path: str) -> bool:
        if self.ws.wants(path):
            return True
        # A broken Flowfile may be waiting for a module that does not exist yet.
        return (
            self.broken
            and path.endswith(".py")
            and os.path.dirname(path) in {os.path.dirname(s) for s in self.ws.sources}
            and not self.ws.ignored(path)
        )

    def build(self, first: bool = False) -> None:
        """One build of the roots; errors are printed, never raised (the watch goes on)."""
        options = self.options if first else {**self.options, "force": False, "touch": False}
        status = 0
        try:
            result = build(self.roots, reporter=self.reporter, **options)
            status = result.exit_status
            if result.plan is not None:
                self.graph = result.plan.graph
        except FlowError as exc:
            self.reporter.error(str(exc))
            status = exc.exit_status
        except Exception as exc:  # the user's code, e.g. a complete() that raises
            self.reporter.error(f"the build stopped with an error:\n{user_traceback(exc)}")
            status = 1
        if self.reporter.json_mode:  # one JSON document per build
            self.reporter.finish(exit_status=status)
            self.reporter.doc.clear()
        # The configuration files count as code: an edit re-reads them and re-plans.
        sources = [*project_modules(self.flowfile).values(), *active_files()]
        self.ws = collect(self.root, self.graph, sources, self.exclude)

    def rebuild(self, changed: list[str]) -> None:
        """React to changed paths: reload the Flowfile if its code changed, then build."""
        self._say(_changed_line(changed, self.root))
        if self.broken or any(p in self.ws.sources for p in changed):
            if not self.reload():
                return
        self.build()

    def reload(self) -> bool:
        from .args import parse_tokens

        try:
            refresh()
            flowfile = reload_flowfile(self.flowfile)
            roots = parse_tokens(self.tokens, flowfile)
        except FlowError as exc:
            self.reporter.error(str(exc))
            self.broken = True
            return False
        self.flowfile, self.roots, self.broken = flowfile, roots, False
        return True

    def status(self, polling: bool) -> None:
        n = len(self.ws.files | self.ws.trees)
        how = "polling; " if polling else ""
        self._say(f"flow: watching {n} file{'' if n == 1 else 's'} ({how}Ctrl-C to stop)")

    def _say(self, line: str) -> None:
        if not (self.reporter.quiet or self.reporter.json_mode):
            self.reporter.text(line)


def _changed_line(changed: list[str], root: str) -> str:
    first = os.path.relpath(changed[0], root)
    more = f" and {len(changed) - 1} more" if len(changed) > 1 else ""
    return f"flow: {first}{more} changed"


def watch(
    flowfile: Flowfile,
    tokens: list[str],
    roots: list[Task],
    options: dict[str, Any],
    reporter: Any,
    exclude: Iterable[str] = (),
) -> int:
    """``flow -w``: build, then rebuild on every change that matters until Ctrl-C (status 0).

    ``options`` are ``flow.spine.build``'s keywords; ``-B`` and ``-t`` apply to the first build.
    """
    session = Session(flowfile, tokens, roots, options, reporter, tuple(exclude))
    observer = Observer(reporter, polling=os.environ.get(POLLING_ENV, "") not in ("", "0"))
    try:
        session.build(first=True)
        while True:
            observer.watch(session.ws.dirs)
            session.status(observer.polling)
            session.rebuild(wait_for_changes(observer.events, session.wants))
    except KeyboardInterrupt:
        return 0
    finally:
        observer.stop()
