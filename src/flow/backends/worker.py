"""The worker side of the process pool: set a worker up, rebuild a task from its spec, run it.

Each worker imports the Flowfile once, runs in its own process group (so stopping it stops the
commands it started too), and dies with the flow process.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import signal
import sys
import tempfile
import time
from collections.abc import Iterator
from typing import Any

from ..fds import redirected
from ..task import PARALLEL, Task, flatten, set_class_overrides
from .pool import override_param

# Module reference -> imported module, per worker process.
_modules: dict[tuple[str, str], Any] = {}
# True while this worker imports a Flowfile or script: a `flow.run()` at its top level (no
# `if __name__ == "__main__"` guard) must fail rather than start a second flow here.
importing = False


def initialize(spec: dict[str, Any], reports: Any = None) -> None:
    """Pool initializer: the flow process alone decides when to stop, so ignore Ctrl-C here.

    ``reports`` is the queue that carries tasks' status messages and progress to the flow process.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Its own process group, so that stopping this worker also stops the commands it started.
    # First: from here on, killing "our group" can only mean this worker and its commands.
    os.setpgrp()
    _die_with_parent(spec["parent"])
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.chdir(spec["cwd"])
    sys.path[:] = spec["sys_path"]
    PARALLEL.set(True)
    if reports is not None:
        from .. import progress

        # A worker must be able to exit with reports still unsent (a burst of status messages
        # fills the pipe while flow is shutting the pool down): progress may be lost, a build
        # must never hang on it.
        reports.cancel_join_thread()
        progress.listen(lambda *report: reports.put(report))
    _pending_overrides[:] = spec["overrides"]


_pending_overrides: list[tuple[str, str, str | None]] = []


def _die_with_parent(parent: int) -> None:
    """On Linux, a worker dies with its flow process (even by SIGKILL), and takes the commands it
    started with it: an orphan must not go on writing an output the next run will rebuild."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    # SIGTERM rather than SIGKILL, so that the handler can kill the whole process group.
    signal.signal(signal.SIGTERM, _kill_group)
    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the line above took effect
            _kill_group(signal.SIGTERM, None)


def _kill_group(signum: int, frame: Any) -> None:
    """This worker and every command it started (they share its process group) end now."""
    os.killpg(0, signal.SIGKILL)


def serve(conn: Any, spec: dict[str, Any]) -> None:
    """A process-pool worker's life: set up once, then run the task specs the flow process sends,
    in order, answering each with ``("done", task id, error, output, seconds it ran)``.

    Messages in: a list of specs (queued behind those not yet run), ``"drop"`` (answer each queued
    spec with ``("dropped", task id)`` instead of running it), ``"go"`` (go on after a failure),
    None (stop). After a task fails the worker starts nothing more until told "go" or "drop": the
    flow process decides whether the build goes on. Progress goes out on the same pipe as
    ``("progress", task id, message, percentage)``.
    """
    import threading
    from collections import deque

    lock = threading.Lock()  # a task's own threads may report progress while it runs

    def send(message: tuple[Any, ...]) -> None:
        with lock:
            conn.send(message)

    initialize(spec, None)
    from .. import progress

    progress.listen(lambda *report: send(("progress", *report)))
    queued: deque[dict[str, Any]] = deque()
    held = False
    while True:
        # Read what has arrived (a "drop" must be seen before the next task starts); wait for
        # a message only when there is nothing to run.
        while held or not queued or conn.poll():
            try:
                message = conn.recv()
            except (EOFError, OSError):  # the flow process is gone
                return
            if message is None:
                return
            if message == "drop":
                for one in queued:
                    send(("dropped", one["tid"]))
                queued.clear()
            if isinstance(message, str):
                held = False
            else:
                queued.extend(message)
        one = queued.popleft()
        start = time.perf_counter()
        reply = work(one)
        seconds = time.perf_counter() - start
        send(("done", one["tid"], reply["error"], reply["output"], seconds))
        held = bool(reply["error"])


def work(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one task in this worker; return plain data: error text (empty when it worked) and
    captured output."""
    from ..attempt import run_checked

    with _capture() as captured:
        try:
            task = _rebuild(spec)
            error = run_checked(task, flatten(task.output()))
        except Exception as exc:  # the Flowfile failed to import here, or the task did not
            from ..flowfile import user_traceback

            error = f"{spec['tid']} could not be set up in a worker process:\n{user_traceback(exc)}"
    return {"error": error, "output": captured[0]}


def _rebuild(spec: dict[str, Any]) -> Task:
    module = _import(tuple(spec["module"]))  # type: ignore[arg-type]
    if _pending_overrides:
        _apply_overrides()
    cls: Any = module
    for part in spec["qualname"].split("."):
        cls = getattr(cls, part)
    params = dict(cls.get_params())
    values = {
        name: None if text is None else params[name].parse(text)
        for name, text in spec["params"].items()
    }
    task = cls(**values)
    if task.task_id != spec["tid"]:
        raise RuntimeError(f"re-created as {task.task_id}, not {spec['tid']}")
    return task  # type: ignore[no-any-return]


def _import(ref: tuple[str, str]) -> Any:
    global importing
    if ref not in _modules:
        kind, where = ref
        importing = True
        try:
            if kind == "file":
                from ..flowfile import load_flowfile

                _modules[ref] = load_flowfile(where).module
            else:
                _modules[ref] = importlib.import_module(where)
        finally:
            importing = False
    return _modules[ref]


def _apply_overrides() -> None:
    overrides: dict[tuple[str, str], Any] = {}
    for family, name, text in _pending_overrides:
        param = override_param(family, name)
        if param is not None:
            overrides[(family, name)] = None if text is None else param.parse(text)
    set_class_overrides(overrides)
    _pending_overrides.clear()


_capture_file: Any = None  # one per worker, emptied for each task (creating files is slow)


@contextlib.contextmanager
def _capture() -> Iterator[list[str]]:
    """Send file descriptors 1 and 2 (print, logging, child commands) to a file for one task."""
    global _capture_file
    if _capture_file is None:
        _capture_file = tempfile.TemporaryFile()
    f = _capture_file
    f.seek(0)
    f.truncate()
    captured = [""]
    try:
        with redirected(f.fileno()):
            yield captured
    finally:
        size = os.lseek(f.fileno(), 0, os.SEEK_END)
        captured[0] = os.pread(f.fileno(), size, 0).decode("utf-8", "replace") if size else ""
