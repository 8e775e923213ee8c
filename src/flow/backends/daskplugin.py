"""The worker plugin of ``--dask``: a task that Dask cancels has its process stopped at once."""

from __future__ import annotations

from typing import Any

from distributed.diagnostics.plugin import WorkerPlugin

from .daskworker import stop


class StopCancelled(WorkerPlugin):  # type: ignore[misc]
    """Dask cancels a running task when no client wants it any more: a flow process that was
    interrupted, or killed before it could say so. Dask cannot stop the thread running it, so
    stop the task's process (and the commands it started) here, before it writes anything more."""

    name = "flow-stop-cancelled"
    idempotent = True  # one per worker, whichever flow process registered it first

    def transition(self, key: Any, start: str, finish: str, *args: Any, **kwargs: Any) -> None:
        if start == "executing" and finish in ("cancelled", "released", "forgotten"):
            stop([key])
