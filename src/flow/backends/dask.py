"""The Dask backend (``--dask ADDRESS|local[:N]``): stale tasks run on a Dask distributed cluster.

The executor's loop submits each task when it is ready, as for the process pool, so early
cutoff, keep-going, skips, locks and recording stay in the flow process; a worker gets the same
plain spec as a pool worker (``pool.describe``) and never touches ``.flow/``. A task's Dask key
is its id plus a digest of its code, parameter, input and output fingerprints: two flow clients
sharing a scheduler compute a shared task once, and a changed task never reuses a stale key.
dask is imported only here, and only when ``--dask`` is given.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import socket
import time
import uuid
from typing import Any

from ..errors import FlowError
from ..task import Task
from . import Completion, Job
from .pool import accept_spec, init_spec, taken_spec

# How long to wait for a scheduler (and for a local cluster's first worker) before giving up.
CONNECT_TIMEOUT = 10.0
# Tasks handed to the scheduler per worker thread (see _size_up).
QUEUED_PER_THREAD = 4
_LOOPBACK = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}


def task_key(job: Job) -> str:
    """The Dask key of a job: ``TASK_ID-DIGEST``. Tasks whose identity flow cannot vouch for
    (forced, phony, no code fingerprint) get a key of their own, so they always run."""
    from ..fingerprint import hash_bytes

    d = job.decision
    kinds = {r.kind for r in d.reasons} if d is not None else set()
    if d is None or not d.code or kinds & {"forced", "phony"}:
        return f"{job.task_id}-{uuid.uuid4().hex}"
    # Where the outputs go is part of the computation: a LocalTarget by its absolute path, so two
    # checkouts of one project never share a key (each needs its own files written).
    outputs = [_where(o) for o in job.outputs]
    doc = [job.task_id, d.code, sorted(d.params.items()), sorted(d.inputs.items()), outputs]
    return f"{job.task_id}-{hash_bytes(json.dumps(doc, default=str).encode())}"


def _where(target: Any) -> str:
    from ..target import LocalTarget

    key = getattr(target, "key", None) or repr(target)
    return os.path.abspath(key) if isinstance(target, LocalTarget) else str(key)


def parse_address(address: str) -> tuple[str, int | None]:
    """``local`` / ``local:N`` -> ("local", N or None); else the scheduler address as given."""
    if address == "local" or address.startswith("local:"):
        n = address.partition(":")[2]
        if n and not (n.isdigit() and int(n) > 0):
            raise FlowError(
                f"bad --dask value {address!r}: expected local, local:N (N >= 1) or tcp://HOST:PORT"
            )
        return "local", int(n) if n else None
    if "://" not in address and ":" not in address:
        raise FlowError(f"bad --dask value {address!r}: expected local, local:N or tcp://HOST:PORT")
    return address, None


class DaskBackend:
    """Runs jobs as Dask futures. Connects on first use, so a no-op never reaches the scheduler."""

    def __init__(self, address: str, overrides: dict[tuple[str, str], Any], events: Any) -> None:
        self.address, self.n_workers = parse_address(address)
        self.events = events
        # The session makes workers start fresh task processes for this run (see daskworker).
        self._init = {**init_spec(overrides), "session": uuid.uuid4().hex}
        self._client: Any = None
        self._cluster: Any = None
        self._slots = 0
        self._remote_hosts: list[str] = []
        self._probed: set[Any] = set()
        self._specs: dict[int, dict[str, Any]] = {}
        self._futures: dict[Any, str] = {}  # future -> task id
        self._attempts: dict[str, int] = {}  # task id -> submissions in this build
        self._done: Any = None  # distributed.as_completed: finished futures with their replies
        self._warned_local = False

    # -- connecting -------------------------------------------------------------------------------
    @property
    def slots(self) -> int:
        self._connect()
        return self._slots

    @slots.setter
    def slots(self, n: int) -> None:
        self._slots = n

    def _connect(self) -> None:
        if self._client is not None:
            return
        try:
            import distributed
        except ImportError:
            raise FlowError(
                "--dask needs dask's distributed scheduler: pip install 'flow-build[dask]'"
            ) from None
        # Dask's own log lines (reconnect attempts with tracebacks) are not flow's output: what
        # they mean reaches the user as a task's failure or a FlowError.
        for name in ["distributed", *logging.root.manager.loggerDict]:
            if name.split(".")[0] == "distributed":
                logging.getLogger(name).setLevel(logging.CRITICAL)
        if self.address == "local":
            self._start_local(distributed)
        else:
            from ..remote_store import redact

            try:
                self._client = distributed.Client(self.address, timeout=CONNECT_TIMEOUT)
            except (OSError, TimeoutError) as exc:
                raise FlowError(
                    f"cannot reach the Dask scheduler at {redact(self.address)} within "
                    f"{CONNECT_TIMEOUT:g} s ({type(exc).__name__}); is it running?"
                ) from None
            except Exception as exc:  # noqa: BLE001 - a bad scheme, no port, no TLS set-up
                said = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                userinfo = self.address.partition("://")[2].partition("/")[0].rpartition("@")[0]
                if userinfo:
                    said = said.replace(userinfo, "***")
                raise FlowError(
                    f"--dask {redact(self.address)}: not a usable scheduler address ({said}); "
                    "give tcp://HOST:PORT (the scheduler's, not its dashboard's), local or local:N"
                ) from None
        from .daskplugin import StopCancelled

        client: Any = self._client
        client.register_plugin(StopCancelled())
        # Results come back in the background as tasks end, not one round trip per result.
        self._done = distributed.as_completed(with_results=True, raise_errors=False)
        self._size_up()

    def _start_local(self, distributed: Any) -> None:
        n = self.n_workers or max(1, os.cpu_count() or 1)
        try:
            self._cluster = distributed.LocalCluster(
                n_workers=n,
                threads_per_worker=1,
                processes=True,
                host="127.0.0.1",
                dashboard_address="127.0.0.1:0",
                silence_logs=logging.CRITICAL,
                preload=["flow.backends.daskworker"],  # its dask_setup: Ctrl-C is flow's
            )
        except Exception as exc:  # noqa: BLE001 - whatever stopped Dask's processes starting
            raise FlowError(f"could not start a local Dask cluster: {exc}") from None
        self._client = distributed.Client(self._cluster)

    def _size_up(self) -> None:
        """Wait for a worker, size the queue, say where the dashboard is, note remote workers."""
        client = self._client
        try:
            client.wait_for_workers(1, timeout=CONNECT_TIMEOUT)
        except (OSError, TimeoutError):
            raise FlowError(
                f"the Dask scheduler at {self.address} has no workers (waited "
                f"{CONNECT_TIMEOUT:g} s); start some with: dask worker {client.scheduler.address}"
            ) from None
        workers = client.scheduler_info()["workers"]
        threads = sum(w.get("nthreads", 1) for w in workers.values())
        # A few tasks queued per thread beyond the one running hide the round trips to the
        # scheduler (1,000 tiny tasks: 2x threads ~7 ms a task, 4x ~5 ms, 8x ~4 ms); few, because
        # without -k the tasks already queued still run after a failure.
        self._slots = QUEUED_PER_THREAD * threads
        link = self._dashboard()
        where = self._cluster and "a local Dask cluster" or f"the Dask scheduler {self.address}"
        self.events.info(
            f"running on {where}: {len(workers)} worker{'s' if len(workers) != 1 else ''}"
            + (f", dashboard {link}" if link else "")
        )
        self._remote_hosts = remote_hosts(list(workers))
        if link:
            dashboard = getattr(self.events, "dashboard", None)
            if dashboard is not None:  # the web page links it from the run
                dashboard(link)

    def _dashboard(self) -> str | None:
        with contextlib.suppress(Exception):
            info = self._client.scheduler_info()
            port = info.get("services", {}).get("dashboard")
            if port:
                return str(self._client.dashboard_link)
        return None

    # -- the Backend protocol ---------------------------------------------------------------------
    def accepts(self, task: Task) -> bool:
        return accept_spec(task, self._specs)

    def submit(self, job: Job) -> None:
        spec = taken_spec(job, self._specs)
        self._connect()
        self._check_workers_see(spec)
        self._warn_local_targets(job)
        from .daskworker import run_task

        key = task_key(job)
        self._attempts[job.task_id] = self._attempts.get(job.task_id, 0) + 1
        if self._attempts[job.task_id] > 1:  # retry_count: a key of its own, or Dask hands back
            key = f"{key}-retry-{uuid.uuid4().hex}"  # the failed result it already holds
        future = self._client.submit(run_task, self._init, spec, key, key=key, pure=False)
        self._futures[future] = job.task_id
        self._done.add(future)

    def wait(self, timeout: float | None) -> list[Completion]:
        if not self._futures:
            return []
        done = self._done
        deadline = None if timeout is None else time.monotonic() + timeout
        # Short slices: Ctrl-C is seen promptly, and a notice missed between the check and the
        # wait costs at most one slice.
        while not done.has_ready():
            left = 0.1 if deadline is None else min(0.1, deadline - time.monotonic())
            if left <= 0:
                return []
            with done.thread_condition:
                done.thread_condition.wait(left)
        batch = done.next_batch(block=False)
        # A future given up meanwhile (cancel) has no completion to report.
        return [self._completion(f, reply) for f, reply in batch if f in self._futures]

    def _completion(self, future: Any, reply: Any) -> Completion:
        tid = self._futures.pop(future)
        status = future.status
        future.release()
        if status == "finished":
            return Completion(tid, reply["error"] or None, reply.get("output", ""))
        if status == "error" and isinstance(reply, tuple):
            return Completion(tid, lost(reply[1]))
        if self._client.status != "running":
            return Completion(tid, f"the connection to the Dask scheduler {self.address} was lost")
        return Completion(tid, lost(None))

    def kill(self) -> None:
        """Ctrl-C: give up our futures and stop those tasks no other flow client waits for."""
        futures = list(self._futures)
        self._futures.clear()
        self._give_up(futures)

    def cancel(self, tid: str) -> bool:
        """Stop the run of task ``tid`` now (a ``worker_timeout``); False if it is not running."""
        futures = [f for f, t in self._futures.items() if t == tid]
        for future in futures:
            del self._futures[future]
        self._give_up(futures)
        return bool(futures)

    def _give_up(self, futures: list[Any]) -> None:
        if self._client is None or not futures:
            return
        keys = [f.key for f in futures]
        with contextlib.suppress(Exception):
            self._client.cancel(futures)
            # Stopped here and now, before flow removes what they wrote (the worker plugin would
            # too, a moment later); a task another flow client also waits for keeps running.
            unwanted = self._client.run_on_scheduler(_unwanted, keys=keys)
            if unwanted:
                from .daskworker import stop

                self._client.run(stop, unwanted)

    def close(self) -> None:
        client = self._client
        if client is not None and self._cluster is None and client.status == "running":
            from .daskworker import end_session

            with contextlib.suppress(Exception):
                client.run(end_session, self._init["session"])
        for thing in (self._client, self._cluster):
            if thing is not None:
                with contextlib.suppress(Exception):
                    thing.close()
        self._client = self._cluster = None

    # -- what workers need ------------------------------------------------------------------------
    def _check_workers_see(self, spec: dict[str, Any]) -> None:
        """Workers import the Flowfile from the path this process uses: a shared filesystem is
        required, and checked once per module before the first task rather than failing each."""
        ref = tuple(spec["module"])
        if ref in self._probed:
            return
        self._probed.add(ref)
        flowfile, digest = None, None
        if ref[0] == "file":
            from ..fingerprint import hash_bytes

            flowfile = ref[1]
            with open(flowfile, "rb") as f:
                digest = hash_bytes(f.read())
        from .daskworker import probe

        answers = self._client.run(probe, self._init["cwd"], flowfile, digest)
        bad = {w: why for w, why in answers.items() if why}
        if bad:
            worker, why = next(iter(bad.items()))
            raise FlowError(
                f"Dask worker {worker} cannot use this project: {why}. Workers import the "
                "Flowfile and the project's modules from the same path as this machine: put the "
                "project on a filesystem they share (see docs/dask.md)"
            )

    def _warn_local_targets(self, job: Job) -> None:
        from ..target import LocalTarget

        if self._warned_local or not self._remote_hosts:
            return
        if any(isinstance(o, LocalTarget) for o in job.outputs):
            self._warned_local = True
            self.events.warning(
                f"{job.task_id} writes a LocalTarget, but Dask workers run on other machines "
                f"({', '.join(self._remote_hosts[:3])}): unless the project is on a filesystem "
                "they share, its outputs land on their disks; use flow.RemoteTarget for outputs "
                "shared across machines (docs/dask.md)"
            )


def _unwanted(dask_scheduler: Any, keys: list[str]) -> list[str]:
    """On the scheduler: which of ``keys`` no client wants any more (another flow may)."""
    tasks = dask_scheduler.tasks
    return [k for k in keys if k not in tasks or not tasks[k].who_wants]


def lost(exc: BaseException | None) -> str:
    """The failure text of a future that did not finish: a worker died, or it was cancelled."""
    if exc is None:
        return "the Dask scheduler cancelled it (it restarted, or lost its worker)"
    name = type(exc).__name__
    if name == "KilledWorker":
        return (
            "the Dask worker running it died, as many times as the scheduler allows "
            f"(distributed.scheduler.allowed-failures): {exc}"
        )
    return f"it could not run on the Dask cluster: {name}: {exc}"


def remote_hosts(addresses: list[str]) -> list[str]:
    """The hosts among Dask worker addresses (``tcp://HOST:PORT``) that are not this machine."""
    here = set(_LOOPBACK)
    with contextlib.suppress(OSError):
        name = socket.gethostname()
        here |= {name, socket.getfqdn(), *socket.gethostbyname_ex(name)[2]}
    hosts = []
    for address in addresses:
        host = address.split("://")[-1].rsplit(":", 1)[0].strip("[]")
        if host not in here and host not in hosts:
            hosts.append(host)
    return hosts
