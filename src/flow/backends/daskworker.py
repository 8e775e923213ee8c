"""The Dask worker side: each flow task runs in a child process the Dask worker keeps for it.

A Dask worker runs its tasks in threads, but a flow task needs a process of its own: its working
directory, its captured file descriptors 1 and 2, and the commands it starts (so that Ctrl-C in
the flow process can stop them) belong to the process. So the function Dask runs hands the plain
task spec to a child (a fresh interpreter running ``serve``) that sets itself up with the
process pool's own ``worker.initialize`` and runs each task with ``worker.work``. Children are
reused, one per busy thread and project, and import the Flowfile once.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import threading
from typing import Any

# Idle children, oldest first, each with the settings it was set up for. The settings include the
# flow run's session id: a Dask worker outlives flow runs, and a child keeps the Flowfile it
# imported, so the next run (perhaps after an edit) must get children of its own.
_idle: list[tuple[str, Child]] = []
# Dask key -> the child running it (None while one is being started), so that ``stop`` can end a
# cancelled task; keys ``stop`` found still starting, so that they never run.
_running: dict[str, Child | None] = {}
_cancelled: set[str] = set()
_lock = threading.Lock()


class ChildDied(Exception):
    """The child process ended (killed, or its interpreter crashed) before it replied."""


class Child:
    """One child process: a request pipe in, a reply pipe out, JSON lines both ways."""

    def __init__(self, init: dict[str, Any]) -> None:
        to_child, self._requests = os.pipe()
        self._replies, from_child = os.pipe()
        # Start by name, not by pickling: the child re-imports flow from the worker's sys.path.
        code = "from flow.backends.daskworker import serve; serve()"
        self.proc = subprocess.Popen(
            [sys.executable, "-c", code, str(to_child), str(from_child)],
            pass_fds=(to_child, from_child),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
        )
        os.close(to_child)
        os.close(from_child)
        self.writer = os.fdopen(self._requests, "w")
        self.reader = os.fdopen(self._replies, "r")
        self.call({**init, "parent": os.getpid()})

    def call(self, message: dict[str, Any]) -> dict[str, Any]:
        try:
            self.writer.write(json.dumps(message) + "\n")
            self.writer.flush()
            line = self.reader.readline()
        except (OSError, ValueError):
            line = ""
        if not line:
            self.stop()
            raise ChildDied()
        return json.loads(line)  # type: ignore[no-any-return]

    def stop(self) -> None:
        """Kill the child's process group: it and the commands its task started."""
        with contextlib.suppress(OSError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        with contextlib.suppress(OSError):
            self.proc.kill()
        self.proc.wait()
        for f in (self.writer, self.reader):
            with contextlib.suppress(OSError):
                f.close()


def run_task(init: dict[str, Any], spec: dict[str, Any], key: str) -> dict[str, Any]:
    """What Dask runs for one flow task: plain data in (the spec), plain data out (the reply)."""
    home = json.dumps({k: v for k, v in init.items() if k != "parent"}, sort_keys=True)
    with _lock:
        _running[key] = None
        mine = [i for i, (h, _) in enumerate(_idle) if h == home]
        child = _idle.pop(mine[-1])[1] if mine else None
    if child is not None and child.proc.poll() is not None:  # ended while idle
        child.stop()
        child = None
    try:
        if child is None:
            child = Child(_local(init))
        with _lock:
            cancelled = key in _cancelled
            _running[key] = child
        reply = {"error": "cancelled", "output": ""} if cancelled else child.call(spec)
    except ChildDied:
        error = f"{spec['tid']}: its process on the Dask worker died (killed, or it crashed)"
        return {"error": error, "output": ""}
    finally:
        with _lock:
            _running.pop(key, None)
            _cancelled.discard(key)
    _park(home, child)
    return reply


def _park(home: str, child: Child) -> None:
    """Keep ``child`` for the next task of its run; stop the oldest idle ones beyond a few per
    thread (those of runs that ended, or were killed before they could say so)."""
    with _lock:
        _idle.append((home, child))
        extra = _idle[: max(0, len(_idle) - 2 * _threads())]
        del _idle[: len(extra)]
    for _, old in extra:
        old.stop()


def _threads() -> int:
    try:
        from distributed import get_worker

        return int(get_worker().state.nthreads)
    except Exception:  # not inside a Dask worker (a test calling this directly)
        return 1


def end_session(session: str) -> None:
    """Run on each worker when a flow run ends: its idle children go."""
    with _lock:
        ended = [c for h, c in _idle if json.loads(h).get("session") == session]
        _idle[:] = [(h, c) for h, c in _idle if c not in ended]
    for child in ended:
        child.stop()


def _local(init: dict[str, Any]) -> dict[str, Any]:
    """The client's settings, with this worker's own installed packages: project directories come
    from the client, libraries from the environment the worker runs in."""
    mine = [p for p in init["sys_path"] if not _installed(p)]
    return {**init, "sys_path": mine + [p for p in sys.path if p not in mine]}


def _installed(path: str) -> bool:
    return "site-packages" in path or "dist-packages" in path or path.startswith(sys.base_prefix)


def stop(keys: list[str]) -> list[str]:
    """Run on each worker when a flow process is interrupted: end the tasks of ``keys`` here."""
    with _lock:
        starting = [k for k in keys if k in _running and _running[k] is None]
        _cancelled.update(starting)
        children = [(k, _running.pop(k)) for k in keys if _running.get(k) is not None]
    for _, child in children:
        child.stop()  # type: ignore[union-attr]
    return [k for k, _ in children] + starting


def probe(root: str, flowfile: str | None, digest: str | None) -> str | None:
    """Run on each worker before the first task: can it see the project where the client does?"""
    if not os.path.isdir(root):
        return f"the project directory {root} does not exist there"
    if flowfile is None:
        return None
    try:
        with open(flowfile, "rb") as f:
            data = f.read()
    except OSError as exc:
        return f"cannot read {flowfile} there ({exc.strerror})"
    from ..fingerprint import hash_bytes

    if digest is not None and hash_bytes(data) != digest:
        return f"{flowfile} there differs from this machine's copy"
    return None


def dask_setup(worker: Any) -> None:
    """Preloaded into the workers of ``--dask local``: the flow process starts and stops them, so
    Ctrl-C at the terminal (sent to the whole process group) is flow's to handle, not theirs."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def serve() -> None:
    """The child: set up once (as a process-pool worker is), then run one task per request."""
    from .worker import initialize, work

    requests = os.fdopen(int(sys.argv[1]), "r")
    replies = os.fdopen(int(sys.argv[2]), "w")
    initialize(json.loads(requests.readline()))
    replies.write("{}\n")
    replies.flush()
    for line in requests:
        replies.write(json.dumps(work(json.loads(line))) + "\n")
        replies.flush()
