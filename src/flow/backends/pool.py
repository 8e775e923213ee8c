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
from collections import deque
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
    """Up to ``jobs`` worker processes, started together on the first submit (a no-op starts
    none), each reached through one pipe: no thread in the flow process, one small message a task
    each way.

    The executor keeps ``depth`` tasks per worker in flight: while a worker runs one task, the
    next waits in its queue, so it never idles while this process records the last one. A queued
    task has not started: after a failure without ``-k``, ``withdraw`` takes the queued tasks back
    (each comes back from ``wait`` as a withdrawn completion). A worker runs its tasks one after
    the other, so one that dies (``os._exit`` in a child, a crash) fails exactly the task it was
    running; the tasks queued behind it go to another worker.
    """

    depth = 2

    def __init__(self, jobs: int, overrides: dict[tuple[str, str], Any]) -> None:
        self.slots = jobs
        self._init = init_spec(overrides)
        self._specs: dict[int, dict[str, Any]] = {}  # id(task) -> spec, from accepts()
        self._workers: list[_Worker] = []
        self._outbox: list[dict[str, Any]] = []  # to send (also what a dead worker left queued)
        self._withdrawn: list[Completion] = []

    def accepts(self, task: Task) -> bool:
        return accept_spec(task, self._specs)

    def submit(self, job: Job) -> None:
        """Send the task to the worker with the shortest queue now: it starts at once if that
        worker is idle, while this process goes on (journaling the next task, committing)."""
        self._outbox.append(taken_spec(job, self._specs))
        self._flush()

    def _flush(self) -> None:
        """Let held workers go on (the build goes on after a failure: ``-k``, a retry), then send
        what is to send (a dead worker's queue, the submitted task): one message per worker."""
        for worker in self._workers:
            if worker.held:
                worker.order("go")
        specs, self._outbox = self._outbox, []
        if not specs:
            return
        if not self._workers:
            self._workers = [_Worker(self._init) for _ in range(self.slots)]
        batches: dict[_Worker, list[dict[str, Any]]] = {}
        for spec in specs:
            worker = min(self._workers, key=lambda w: len(w.queue))
            worker.queue.append(spec["tid"])
            batches.setdefault(worker, []).append(spec)
        for worker, batch in batches.items():
            worker.send(batch)

    def withdraw(self) -> None:
        """Take back every task queued and not started; ``wait`` returns them as withdrawn."""
        for worker in self._workers:
            worker.order("drop")
        self._withdrawn += [Completion(s["tid"], None, withdrawn=True) for s in self._outbox]
        self._outbox.clear()

    def wait(self, timeout: float | None) -> list[Completion]:
        from multiprocessing.connection import wait as wait_ready

        self._flush()
        deadline = None if timeout is None else time.monotonic() + timeout
        done, self._withdrawn = self._withdrawn, []
        self._read(self._workers, (), done)
        while not done:
            busy = [w for w in self._workers if w.queue]
            if not busy:
                break
            left = None if deadline is None else max(0.0, deadline - time.monotonic())
            ready = wait_ready([w.conn for w in busy] + [w.process.sentinel for w in busy], left)
            if not ready:
                break
            self._read(busy, ready, done)
        return done

    def _read(self, workers: list[_Worker], ready: Any, done: list[Completion]) -> None:
        """Add the workers' replies so far to ``done``; a dead worker fails the task it ran."""
        for worker in workers:
            exited = worker.process.sentinel in ready
            if not exited and ready and worker.conn not in ready:
                continue
            try:
                worker.replies(done, exited)
            except (EOFError, OSError):
                done += self._lost(worker)

    def _lost(self, worker: _Worker) -> list[Completion]:
        """A worker died (or was stopped): its running task failed; what it queued is resent."""
        self._workers.remove(worker)
        worker.stop()
        if not worker.queue:
            return []
        why = "its worker process died (killed, or the interpreter crashed)"
        running = worker.queue.popleft()
        self._outbox += [worker.specs[tid] for tid in worker.queue]
        return [Completion(running, why)]

    def cancel(self, tid: str) -> bool:
        """Stop the run of task ``tid`` now (its worker's process group); False if not running."""
        for worker in self._workers:
            if worker.queue and worker.queue[0] == tid:
                self._lost(worker)
                return True
        return False

    def kill(self) -> None:
        """Stop every worker now, with the commands they started."""
        for worker in self._workers:
            worker.stop()
        self._workers.clear()

    def close(self) -> None:
        for worker in self._workers:
            worker.close()
        self._workers.clear()


class _Worker:
    """One worker process and the pipe to it; ``queue`` holds the ids of the tasks sent to it and
    not yet answered, in order (the first is running); ``held``: it stopped after a failure."""

    def __init__(self, init: dict[str, Any]) -> None:
        import multiprocessing

        from .worker import serve

        context = multiprocessing.get_context("spawn")
        self.conn, child = context.Pipe()
        self.process = context.Process(target=serve, args=(child, init), daemon=True)
        self.process.start()
        child.close()  # the worker holds the only other end: its death reads as end-of-file
        self.queue: deque[str] = deque()
        self.specs: dict[str, dict[str, Any]] = {}
        self.held = False

    def send(self, specs: list[dict[str, Any]]) -> None:
        """Queue ``specs`` in this worker (their ids are already in ``queue``)."""
        for spec in specs:
            self.specs[spec["tid"]] = spec
        self.order(specs)

    def order(self, message: Any) -> None:
        if isinstance(message, str):
            self.held = False
        with contextlib.suppress(OSError):  # it died: the next read says so
            self.conn.send(message)

    def replies(self, done: list[Completion], exited: bool = False) -> None:
        """Add what the worker sent to ``done``: finished and dropped tasks; progress goes to
        this process's sink. EOFError: the worker died with tasks unanswered."""
        from .. import progress

        while self.conn.poll():
            kind, tid, *rest = self.conn.recv()
            if kind == "progress":
                progress.report(tid, *rest)
                continue
            self.queue.remove(tid)
            del self.specs[tid]
            if kind == "dropped":
                done.append(Completion(tid, None, withdrawn=True))
            else:
                self.held = bool(rest[0])
                done.append(Completion(tid, rest[0] or None, rest[1], seconds=rest[2]))
        if exited and self.queue:
            raise EOFError

    def stop(self) -> None:
        """Kill the worker's whole process group (it and the commands it started)."""
        if self.process.pid:
            with contextlib.suppress(OSError):
                os.killpg(self.process.pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            self.process.kill()
        self.process.join(5)
        self.conn.close()

    def close(self) -> None:
        """Tell the worker to stop, pass on what it still reports, and wait for it to exit."""
        self.order(None)
        with contextlib.suppress(EOFError, OSError):
            while self.process.is_alive() or self.conn.poll():
                self.replies([])
                self.conn.poll(0.05)
        self.process.join()
        self.conn.close()


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
