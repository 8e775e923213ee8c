"""Luigi's command-line options of its scheduler and worker, as flow takes them: ignored with
a warning (flow has no use for them), or refused with the flow way (the RPC scheduler)."""

from __future__ import annotations

from collections.abc import Callable

from .errors import UsageError

# Luigi's options flow has no use for -> whether the option takes a value.
IGNORED = {
    "--worker-keep-alive": False,
    "--worker-count-uniques": False,
    "--worker-count-last-scheduled": False,
    "--worker-retry-external-tasks": False,
    "--worker-send-failure-email": False,
    "--worker-no-install-shutdown-handler": False,
    "--worker-check-unfulfilled-deps": False,
    "--worker-check-complete-on-run": False,
    "--worker-force-multiprocessing": False,
    "--worker-cache-task-completion": False,
    "--worker-ping-interval": True,
    "--worker-wait-interval": True,
    "--worker-wait-jitter": True,
    "--worker-max-keep-alive-idle-duration": True,
    "--worker-max-reschedules": True,
    "--worker-timeout": True,
    "--worker-task-limit": True,
    "--worker-task-process-context": True,
    "--scheduler-retry-delay": True,
    "--logging-conf-file": True,
    "--log-level": True,
    "--lock-size": True,
    "--lock-pid-dir": True,
    "--no-lock": False,
    "--take-lock": False,
    "--parallel-scheduling": False,
    "--parallel-scheduling-processes": True,
    "--retcode-already-running": True,
    "--retcode-missing-data": True,
    "--retcode-not-run": True,
    "--retcode-task-failed": True,
    "--retcode-scheduling-error": True,
    "--retcode-unhandled-exception": True,
}
_WHY = {
    "--retcode": "flow's exit statuses are fixed: 0, 1 (a task failed or an input is missing), 2",
    "--worker-timeout": "set worker_timeout on the task class instead",
    "--log": "flow prints its own lines; use -q or -v",
}
# Luigi's options of its central scheduler, which flow leaves out on purpose.
REFUSED = ("--scheduler-host", "--scheduler-port", "--scheduler-url", "--assistant")


def strip(tokens: list[str], warn: Callable[[str], None]) -> list[str]:
    """``tokens`` without Luigi's scheduler and worker options (each ignored with a warning);
    a central-scheduler option is a usage error naming what flow offers instead."""
    out: list[str] = []
    i = 0
    while i < len(tokens):
        tok = tokens[i]
        name, eq, _ = tok.partition("=")
        if name in REFUSED:
            raise UsageError(
                f"{name}: flow has no central scheduler; two flows never run one task at once "
                "without one, --serve shows runs in a browser, and --dask ADDRESS runs them on "
                "a cluster"
            )
        if name not in IGNORED:
            out.append(tok)
            i += 1
            continue
        takes = IGNORED[name] and not eq
        i += 2 if takes else 1
        why = next((w for prefix, w in _WHY.items() if name.startswith(prefix)), "")
        warn(f"ignoring Luigi's {name}: flow has no use for it" + (f" ({why})" if why else ""))
    return out
