"""The process-pool backend (``-j N``): N worker processes, each given a plain task spec.

A spec is data (module reference, class name, parameter strings), never a pickled task: a
Flowfile imported under a private module name cannot be pickled by reference, and a plain spec
is also what the worker re-creates the task from. The start method is ``spawn`` on every
platform: a fresh interpreter per worker, safe whatever threads the flow process runs.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from typing import Any

from ..task import Register, Task
from . import Completion, Job


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
    for name, param in cls.get_params():  # type: ignore[attr-defined]
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
        param = override_param(family, name)
        if param is not None:
            plain.append((family, name, None if value is None else param.serialize(value)))
    return {
        "cwd": os.getcwd(),
        "sys_path": list(sys.path),
        "overrides": plain,
        "parent": os.getpid(),
    }


def override_param(family: str, name: str) -> Any:
    """The Parameter a ``Task.param=value`` override names, or None if no such class has it."""
    for cls in Register.registry:
        if getattr(cls, "task_family", None) == family:
            return dict(cls.get_params()).get(name)  # type: ignore[attr-defined]
    return None


class ProcessPool:
    """Up to ``jobs`` worker processes, started on demand (a no-op starts none).

    Each worker is a one-process executor of its own, so a worker that dies (``os._exit`` in a
    child, a crash) takes down exactly the task it was running, and is replaced.
    """

    def __init__(self, jobs: int, overrides: dict[tuple[str, str], Any]) -> None:
        self.slots = jobs
        self._init = init_spec(overrides)
        self._specs: dict[int, dict[str, Any]] = {}  # id(task) -> spec, from accepts()
        self._idle: list[Any] = []
        self._busy: dict[Any, tuple[Any, str]] = {}  # future -> (its executor, task id)
        self._progress: Any = None  # a queue of (task id, message, percentage) from workers

    def accepts(self, task: Task) -> bool:
        return accept_spec(task, self._specs)

    def submit(self, job: Job) -> None:
        spec = taken_spec(job, self._specs)
        executor = self._idle.pop() if self._idle else self._new()
        from .worker import work

        future = executor.submit(work, spec)
        self._busy[future] = (executor, job.task_id)

    def wait(self, timeout: float | None) -> list[Completion]:
        from concurrent.futures import FIRST_COMPLETED
        from concurrent.futures import wait as wait_futures
        from concurrent.futures.process import BrokenProcessPool

        if not self._busy:
            return []
        # Wake up now and then to pass on what the workers report (status messages, progress).
        step = 0.2 if timeout is None else min(timeout, 0.2)
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            done, _ = wait_futures(list(self._busy), timeout=step, return_when=FIRST_COMPLETED)
            self._pass_progress()
            if done or (deadline is not None and time.monotonic() >= deadline):
                break
        completions = []
        for future in done:
            executor, tid = self._busy.pop(future)
            try:
                reply = future.result()
                self._idle.append(executor)
            except BrokenProcessPool:
                _stop(executor)
                reply = {"error": "its worker process died (killed, or the interpreter crashed)"}
            except Exception as exc:  # a reply that could not be sent back, and the like
                _stop(executor)
                reply = {"error": f"its worker process failed: {exc!r}"}
            completions.append(Completion(tid, reply["error"] or None, reply.get("output", "")))
        return completions

    def _pass_progress(self) -> None:
        if self._progress is None:
            return
        import queue

        from .. import progress

        while True:
            try:
                tid, message, percentage = self._progress.get_nowait()
            except (queue.Empty, OSError, ValueError, EOFError):
                return
            progress.report(tid, message, percentage)

    def _new(self) -> Any:
        import multiprocessing
        from concurrent.futures import ProcessPoolExecutor

        from .worker import initialize

        context = multiprocessing.get_context("spawn")
        if self._progress is None:
            self._progress = context.Queue()
        return ProcessPoolExecutor(
            1,
            mp_context=context,
            initializer=initialize,
            initargs=(self._init, self._progress),
        )

    def cancel(self, tid: str) -> bool:
        """Stop the run of task ``tid`` now (its worker's process group); False if not running."""
        for future, (executor, busy_tid) in list(self._busy.items()):
            if busy_tid == tid:
                del self._busy[future]
                _stop(executor)
                return True
        return False

    def kill(self) -> None:
        """Stop every worker now, with the commands they started."""
        for executor in [*self._idle, *(e for e, _ in self._busy.values())]:
            _stop(executor)
        self._idle.clear()
        self._busy.clear()

    def close(self) -> None:
        self._pass_progress()
        for executor in [*self._idle, *(e for e, _ in self._busy.values())]:
            executor.shutdown(wait=True)
        self._idle.clear()
        self._busy.clear()
        if self._progress is not None:
            self._pass_progress()
            self._progress.close()
            self._progress = None


def accept_spec(task: Task, specs: dict[int, Any]) -> bool:
    """Whether a worker process can run ``task`` (its spec is kept in ``specs`` for submit)."""
    if _in_memory(task):
        return False
    spec = describe(task)
    if spec is not None:
        specs[id(task)] = spec
    return spec is not None


def taken_spec(job: Job, specs: dict[int, Any]) -> Any:
    """The spec ``accept_spec`` kept for the job's task."""
    spec = specs.pop(id(job.task), None) or describe(job.task)
    assert spec is not None, "submit() a task that accepts() took"
    return spec


def _in_memory(task: Task) -> bool:
    """True for a task that writes or reads data living in this process only (a MockTarget, a
    ``memory://`` URL): a worker process would not see it, nor this one what a worker wrote."""
    if "flow.mock" not in sys.modules and "flow.remote" not in sys.modules:
        return False  # nothing made such a target: no call to output() per task
    from ..task import flatten

    targets = [*flatten(task.output()), *flatten(task.input())]
    return any(getattr(o, "in_process", False) for o in targets)


def _stop(executor: Any) -> None:
    """Kill a worker's whole process group (it and the commands it started), then forget it."""
    for proc in list((getattr(executor, "_processes", None) or {}).values()):
        with contextlib.suppress(OSError):
            os.killpg(proc.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            proc.kill()
    executor.shutdown(wait=False, cancel_futures=True)
