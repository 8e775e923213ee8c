"""The in-process backend: a task runs in the flow process, with the terminal attached
(``-j 1``; also, under ``-j N``, tasks a worker cannot rebuild, such as generator ``run()``s)."""

from __future__ import annotations

from ..attempt import run_checked
from ..task import PARALLEL, Task
from . import Completion, Job


class InProcess:
    """Runs each job when it is submitted; ``wait`` hands back what finished."""

    def __init__(self, parallel: bool = False) -> None:
        self.slots = 1
        self.parallel = parallel  # other tasks run meanwhile: flow.sh prefixes its echo
        self._done: list[Completion] = []

    def accepts(self, task: Task) -> bool:
        return True

    def submit(self, job: Job) -> None:
        token = PARALLEL.set(self.parallel)
        try:
            error = run_checked(job.task, job.outputs, job.drive, job.before)
        finally:
            PARALLEL.reset(token)
        self._done.append(Completion(job.task_id, error))

    def wait(self, timeout: float | None) -> list[Completion]:
        done, self._done = self._done, []
        return done

    def kill(self) -> None:
        self._done.clear()

    def close(self) -> None:
        self._done.clear()
