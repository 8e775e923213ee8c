"""Worker processes for ``-j N``: each gets a plain task spec, imports the Flowfile once, runs.

A spec is data (module reference, class name, parameter strings), never a pickled task: a
Flowfile imported under a private module name cannot be pickled by reference, and a plain spec
is also what the worker re-creates the task from. The start method is ``spawn`` on every
platform: a fresh interpreter per worker, safe whatever threads the flow process runs.
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

from .task import PARALLEL, RUNNING, Register, Task, flatten, set_class_overrides

# Module reference -> imported module, per worker process.
_modules: dict[tuple[str, str], Any] = {}


def describe(task: Task) -> dict[str, Any] | None:
    """A plain spec a worker can rebuild ``task`` from, or None if it must run in this process.

    None for a class defined inside a function, a module that cannot be found again (an
    interactive session), a ``run()`` that yields dynamic dependencies (they are scheduled here),
    or parameter values that do not survive a round trip through their strings.
    """
    cls = type(task)
    if "<locals>" in cls.__qualname__ or _is_generator(cls):
        return None
    ref = module_ref(sys.modules.get(cls.__module__))
    if ref is None:
        return None
    params: dict[str, str | None] = {}
    for name, param in cls.get_params():
        value = task.param_kwargs[name]
        if value is None:
            params[name] = None
            continue
        text = param.serialize(value)
        try:
            if param.normalize(param.parse(text)) != value:
                return None
        except Exception:
            return None
        params[name] = text
    return {"module": ref, "qualname": cls.__qualname__, "params": params, "tid": task.task_id}


def module_ref(module: Any) -> tuple[str, str] | None:
    """How a worker imports ``module`` again: by file for a Flowfile or script, else by name."""
    if module is None:
        return None
    path = getattr(module, "__flow_flowfile__", None)
    if path is not None:
        return ("file", path)
    if module.__name__ == "__main__":
        file = getattr(module, "__file__", None)
        return ("file", os.path.abspath(file)) if file else None
    return ("name", module.__name__)


def _is_generator(cls: type) -> bool:
    import inspect

    return inspect.isgeneratorfunction(getattr(cls, "run", None))


def init_spec(overrides: dict[tuple[str, str], Any]) -> dict[str, Any]:
    """What every worker needs before its first task: where to run and the CLI's class overrides."""
    plain = []
    for (family, name), value in overrides.items():
        param = _override_param(family, name)
        if param is not None:
            plain.append((family, name, None if value is None else param.serialize(value)))
    return {
        "cwd": os.getcwd(),
        "sys_path": list(sys.path),
        "overrides": plain,
        "parent": os.getpid(),
    }


def initialize(spec: dict[str, Any]) -> None:
    """Pool initializer: the flow process alone decides when to stop, so ignore Ctrl-C here."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    _die_with_parent(spec["parent"])
    # Its own process group, so that stopping this worker also stops the commands it started.
    os.setpgrp()
    devnull = os.open(os.devnull, os.O_RDONLY)
    os.dup2(devnull, 0)
    os.chdir(spec["cwd"])
    sys.path[:] = spec["sys_path"]
    PARALLEL.set(True)
    _pending_overrides[:] = spec["overrides"]


_pending_overrides: list[tuple[str, str, str | None]] = []


def _die_with_parent(parent: int) -> None:
    """On Linux, a worker is killed with its flow process (even by SIGKILL): an orphan must not
    go on writing an output the next run is about to clean up and rebuild."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    with contextlib.suppress(Exception):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the line above took effect
            os._exit(1)


def work(spec: dict[str, Any]) -> dict[str, Any]:
    """Run one task in this worker; return plain data: error text (empty when it worked),
    captured output and duration."""
    from .executor import run_checked

    start = time.perf_counter()
    with _capture() as captured:
        try:
            task = _rebuild(spec)
            token = RUNNING.set(task)
            try:
                error = run_checked(task, flatten(task.output()), _no_dynamic)
            finally:
                RUNNING.reset(token)
        except Exception as exc:  # the Flowfile failed to import here, or the task did not
            from .flowfile import user_traceback

            error = f"{spec['tid']} could not be set up in a worker process:\n{user_traceback(exc)}"
    return {"error": error, "output": captured[0], "duration": time.perf_counter() - start}


def _no_dynamic(task: Task, ret: Any) -> None:
    """Generator ``run()`` methods never reach a worker (``describe`` keeps them here)."""


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
    if ref not in _modules:
        kind, where = ref
        if kind == "file":
            from .flowfile import load_flowfile

            _modules[ref] = load_flowfile(where).module
        else:
            _modules[ref] = importlib.import_module(where)
    return _modules[ref]


def _override_param(family: str, name: str) -> Any:
    """The Parameter a ``Task.param=value`` override names, or None if no such class has it."""
    for cls in Register.registry:
        if getattr(cls, "task_family", None) == family:
            return dict(cls.get_params()).get(name)  # type: ignore[attr-defined]
    return None


def _apply_overrides() -> None:
    overrides: dict[tuple[str, str], Any] = {}
    for family, name, text in _pending_overrides:
        param = _override_param(family, name)
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
    sys.stdout.flush()
    sys.stderr.flush()
    saved = os.dup(1), os.dup(2)
    os.dup2(f.fileno(), 1)
    os.dup2(f.fileno(), 2)
    try:
        yield captured
    finally:
        with contextlib.suppress(Exception):
            sys.stdout.flush()
            sys.stderr.flush()
        os.dup2(saved[0], 1)
        os.dup2(saved[1], 2)
        os.close(saved[0])
        os.close(saved[1])
        size = os.lseek(f.fileno(), 0, os.SEEK_END)
        captured[0] = os.pread(f.fileno(), size, 0).decode("utf-8", "replace") if size else ""


class Pool:
    """Up to ``jobs`` worker processes, started on demand (a no-op starts none).

    Each worker is a one-process executor of its own, so a worker that dies (``os._exit``, a
    crash) takes down exactly the task it was running, and is replaced.
    """

    def __init__(self, jobs: int, overrides: dict[tuple[str, str], Any]) -> None:
        self.jobs = jobs
        self._init = init_spec(overrides)
        self._idle: list[Any] = []
        self._busy: dict[Any, Any] = {}  # future -> its executor

    def submit(self, spec: dict[str, Any]) -> Any:
        executor = self._idle.pop() if self._idle else self._new()
        future = executor.submit(work, spec)
        self._busy[future] = executor
        return future

    def _new(self) -> Any:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        return ProcessPoolExecutor(
            1,
            mp_context=multiprocessing.get_context("spawn"),
            initializer=initialize,
            initargs=(self._init,),
        )

    def release(self, future: Any, broken: bool = False) -> None:
        """The task of ``future`` is over: its worker is free again (or, if it died, gone)."""
        executor = self._busy.pop(future, None)
        if executor is None:
            return
        if broken:
            _stop(executor)
        else:
            self._idle.append(executor)

    def kill(self) -> None:
        """Stop every worker now, with the commands they started."""
        for executor in [*self._idle, *self._busy.values()]:
            _stop(executor)
        self._idle.clear()
        self._busy.clear()

    def close(self) -> None:
        for executor in [*self._idle, *self._busy.values()]:
            executor.shutdown(wait=True)
        self._idle.clear()
        self._busy.clear()


def _stop(executor: Any) -> None:
    for proc in list((getattr(executor, "_processes", None) or {}).values()):
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            proc.kill()
    executor.shutdown(wait=False, cancel_futures=True)
