"""Progress that running tasks report (Luigi's status message and percentage), sent to a sink.

The flow process points the sink at its events; a worker process points it at the pipe its
pool reads. Outside a build nobody listens and a report is dropped.
"""

from __future__ import annotations

from collections.abc import Callable

Sink = Callable[[str, "str | None", "float | None"], None]
_sink: Sink | None = None
MAX_MESSAGE = 2000  # characters of a status message kept


def listen(sink: Sink | None) -> Sink | None:
    """Send reports to ``sink`` from now on; return the previous sink (to restore it)."""
    global _sink
    previous, _sink = _sink, sink
    return previous


def report(task_id: str, message: str | None = None, percentage: object = None) -> None:
    """Pass one report on; a percentage is clamped to 0..100, a bad one dropped."""
    if _sink is None:
        return
    pct: float | None = None
    if percentage is not None:
        try:
            pct = min(100.0, max(0.0, float(percentage)))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return
        if pct != pct:  # NaN
            return
    text = None if message is None else str(message)[:MAX_MESSAGE]
    _sink(task_id, text, pct)
