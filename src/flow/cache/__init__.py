"""The shared artifact cache: restore a stale task's outputs from it, store them after a run.

The executor calls two hooks: ``restore`` just before a stale task would be submitted, and
``store`` after it ran and was recorded. Both run in the flow process (never in workers): it
already holds the task's locks, its journal rows and the fingerprints the key is made of, and
only it records in ``.flow/``. Any doubt is a miss: a damaged entry or object is one warning
and the task runs; a cache that cannot be reached is one warning for the whole run, and the
build goes on without it. Nothing here is imported unless ``--cache`` is used.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..events import Status, TaskResult
from .artifacts import (
    Damaged,
    Prefetched,
    Unwritable,
    entry_name,
    object_names,
    parse_entry,
    restore,
    store,
)
from .key import environment, key_of, recipe, why_not_cacheable
from .storage import LocalStorage, Storage, open_storage, shown

# Uploads to a remote cache at once, in threads of the flow process (object stores answer
# concurrent requests well; each upload is mostly waiting).
UPLOADS = 8
# At most this many bytes of small remote objects are fetched ahead of the restores.
PREFETCH = 256 << 20

if TYPE_CHECKING:
    from ..attempt import Attempt
    from ..decide import Context, Decision
    from ..plan import Plan
    from ..task import Task


class Cache:
    """One run's view of a cache at ``location`` (a directory or an fsspec URL), opened on the
    first lookup: a no-op build never touches it."""

    def __init__(self, location: str, warn: Callable[[str], None]) -> None:
        self.location = location
        self.warn = lambda message: warn(_scrub(message, location))
        self._storage: Storage | None = None
        self.broken = False  # unreachable or unwritable: said once, then left alone
        self.read_only = False  # storing failed once: restores may still work
        # Entries fetched ahead, by key: their bytes, None when absent, or once read, the entry.
        self._entries: dict[str, Any] = {}
        self._objects: Prefetched | None = None  # small remote objects, fetched ahead
        self._uploads: Any = None  # a thread pool for stores into a remote cache
        self._pending: list[Any] = []
        self._env: dict[str, str] | None = None
        self._env_by_class: dict[type, dict[str, str]] = {}

    @property
    def url(self) -> str:
        return self._storage.url if self._storage is not None else shown(self.location)

    def storage(self) -> Storage | None:
        if self._storage is None and not self.broken:
            try:
                self._storage = open_storage(self.location)
            except Exception as exc:  # noqa: BLE001 - a missing library, a bad URL: never a crash
                self.give_up(exc)
        return None if self.broken else self._storage

    def give_up(self, exc: BaseException, storing: bool = False) -> None:
        """One warning, then build as if there were no cache (or, after a failed store, keep
        restoring but store no more)."""
        if storing:
            if not self.read_only:
                self.read_only = True
                self.warn(f"cannot store in the cache {self.url} ({_text(exc)}); storing no more")
            return
        if not self.broken:
            self.broken = True
            self.warn(f"the cache {self.url} is unusable ({_text(exc)}); building without it")

    # -- the executor's hooks -------------------------------------------------------------------
    def restore(self, ctx: Context, run: Attempt) -> TaskResult | None:
        """Restore a stale task's outputs from the cache and record them as if it had run; None
        (nothing changed) on a miss. ``-B`` rebuilds: a forced task is never restored."""
        task, d = run.task, run.decision
        if task.task_id in ctx.forced:
            return None
        entry = self.lookup(ctx, task, d)
        storage = self._storage
        if entry is None or storage is None:
            return None
        try:
            restore(self._objects or storage, entry, run.outputs)
        except Damaged as exc:
            self.warn(f"the cache entry of {task.task_id} is damaged ({exc}); running the task")
            return None
        except Unwritable as exc:
            self.warn(f"cannot restore the outputs of {task.task_id} ({exc}); running the task")
            return None
        except Exception as exc:  # noqa: BLE001 - unreachable mid-way, denied: never a crash
            self.give_up(exc)
            return None
        self._soon(storage, _quietly, storage.touch, entry_name(entry["key"]), entry["raw"])
        from ..attempt import finish

        result = finish(ctx, run, None)
        return replace(result, status=Status.RESTORED) if result.status is Status.RAN else result

    def store(self, ctx: Context, run: Attempt) -> None:
        """After a successful run: file its outputs under its key (if the task may be cached)."""
        if self.read_only:
            return
        doc = self.recipe(ctx, run.task, run.decision)
        storage = self.storage() if doc is not None else None
        if doc is None or storage is None:
            return
        try:
            fps = [ctx.fingerprints.target(o) for o in run.outputs]
            self._soon(storage, store, storage, key_of(doc), doc, run.outputs, fps)
        except Exception as exc:  # noqa: BLE001 - the build worked; the cache is a bonus
            self.give_up(exc, storing=True)

    def close(self, interrupted: bool = False) -> None:
        """Wait for the uploads still under way (or, interrupted, drop those not started: a
        store is whole or absent either way)."""
        if self._uploads is not None:
            self._uploads.shutdown(wait=True, cancel_futures=interrupted)
            self._uploads = None
        if not interrupted:
            self._reap(wait=True)

    def _soon(self, storage: Storage, fn: Callable[..., Any], *args: Any) -> None:
        """A write: now on a disk; on a remote store in an upload thread, so that its round
        trips overlap the tasks still to run."""
        if isinstance(storage, LocalStorage):
            fn(*args)
            return
        self._pending.append(self._pool().submit(fn, *args))
        self._reap(wait=False)

    def _pool(self) -> Any:
        if self._uploads is None:
            from concurrent.futures import ThreadPoolExecutor

            self._uploads = ThreadPoolExecutor(UPLOADS, thread_name_prefix="flow-cache")
        return self._uploads

    def _reap(self, wait: bool) -> None:
        """Say (here, in the flow process's thread) the first upload that failed."""
        still = []
        for future in self._pending:
            if not wait and not future.done():
                still.append(future)
                continue
            exc = future.exception()
            if exc is not None:
                self.give_up(exc, storing=True)
        self._pending = still

    def forecast(self, plan: Plan, ctx: Context, quiet: bool = False) -> set[str]:
        """Which of the plan's stale tasks the cache would restore. A task below one that would
        be restored is keyed with the fingerprints the entry promises for its inputs.

        Entries are fetched a layer of the graph at a time, in concurrent requests where the
        store allows: before a real run this fetches ahead what the restores will read
        (``quiet``: a damaged entry is said when the restore meets it, not here).
        """
        will_run = set(plan.to_run)
        restorable: set[str] = set()
        promised: dict[str, Any] = {}
        wanted: list[tuple[str, int]] = []  # objects the restores will read: (name, size)
        for layer in _layers(plan.to_run, plan.graph.deps, will_run):
            keyed = {}
            for tid in layer:
                deps = plan.graph.deps[tid]
                if tid in ctx.forced or any(u in will_run and u not in restorable for u in deps):
                    continue
                d = plan.decisions[tid]
                inputs = {k: promised.get(k, fp) for k, fp in d.inputs.items()}
                doc = self.recipe(ctx, plan.graph.tasks[tid], replace(d, inputs=inputs))
                if doc is not None:
                    keyed[tid] = key_of(doc)
            self._fetch_ahead(list(keyed.values()))
            for tid, key in keyed.items():
                entry = self._entry(key, plan.graph.tasks[tid].task_id, ctx, quiet)
                if entry is not None:
                    restorable.add(tid)
                    promised.update({o["key"]: o.get("fingerprint") for o in entry["outputs"]})
                    wanted += object_names(entry) if quiet else []
        if wanted and self._storage is not None and not self._storage.cheap_exists:
            try:
                self._objects = Prefetched(self._storage, wanted, PREFETCH)
            except Exception:  # noqa: BLE001 - the restores will ask again, one by one
                self._objects = None
        return restorable

    def _fetch_ahead(self, keys: list[str]) -> None:
        storage = self.storage() if keys else None
        if storage is None:
            return
        wanted = [k for k in keys if k not in self._entries]
        try:
            found = storage.read_many([entry_name(k) for k in wanted])
        except Exception as exc:  # noqa: BLE001 - unreachable, denied, timed out
            self.give_up(exc)
            return
        for key in wanted:
            name = entry_name(key)
            if name in found:
                self._entries[key] = found[name]

    # -- keys and entries -----------------------------------------------------------------------
    def recipe(self, ctx: Context, task: Task, d: Decision) -> dict[str, Any] | None:
        """What the action key of a task is made of, or None when it is not cached."""
        outputs = ctx.graph.outputs[task.task_id]
        if why_not_cacheable(task, d, outputs, task.task_id in ctx.graph.dynamic):
            return None
        return recipe(task, d, outputs, self._environment(ctx, type(task)))

    def lookup(self, ctx: Context, task: Task, d: Decision) -> dict[str, Any] | None:
        """The checked entry of a task's key, or None (a miss; a damaged entry is said once)."""
        doc = self.recipe(ctx, task, d)
        return None if doc is None else self._entry(key_of(doc), task.task_id, ctx)

    def _entry(
        self, key: str, tid: str, ctx: Context, quiet: bool = False
    ) -> dict[str, Any] | None:
        storage = self.storage()
        if storage is None:
            return None
        if key in self._entries:
            data = self._entries[key]
            if isinstance(data, dict):  # parsed by the forecast
                return data
        else:
            try:
                data = storage.read(entry_name(key))
            except Exception as exc:  # noqa: BLE001 - unreachable, denied, timed out
                self.give_up(exc)
                return None
        if data is None:
            return None
        try:
            entry = parse_entry(data, key, ctx.graph.outputs[tid])
        except Damaged as exc:
            if not quiet:
                self.warn(f"the cache entry of {tid} is damaged ({exc}); running the task")
            return None
        entry["raw"] = data
        if key in self._entries:
            self._entries[key] = entry
        return entry

    def _environment(self, ctx: Context, cls: type) -> dict[str, str]:
        env = self._env_by_class.get(cls)
        if env is None:
            if self._env is None:
                files = ctx.code.files
                mods = [m for m in list(sys.modules.values()) if _file(m) in files]
                self._env = environment(mods)
            extra = tuple(getattr(cls, "cache_env", ()) or ())
            env = self._env_by_class[cls] = (
                {**self._env, **environment([], extra)} if extra else self._env
            )
        return env


def _layers(order: list[str], deps: dict[str, list[str]], within: set[str]) -> list[list[str]]:
    """``order`` (dependency order) in layers: each task after every task of ``within`` it
    needs, so one layer's entries can be fetched together."""
    depth: dict[str, int] = {}
    layers: list[list[str]] = []
    for tid in order:
        d = depth[tid] = 1 + max((depth[u] for u in deps[tid] if u in within), default=-1)
        if d == len(layers):
            layers.append([])
        layers[d].append(tid)
    return layers


def _file(module: Any) -> Any:
    return getattr(module, "__file__", None)


def _scrub(text: str, location: str) -> str:
    """``text`` without the cache URL's user, password and query values (a store's message may
    quote the URL as given)."""
    if "://" not in location:
        return text
    from urllib.parse import parse_qsl, urlsplit

    parts = urlsplit(location)
    secrets = [parts.username, parts.password, *(v for _, v in parse_qsl(parts.query))]
    text = text.replace(location, shown(location))
    for secret in sorted(filter(None, secrets), key=len, reverse=True):
        if len(secret) >= 3:
            text = text.replace(secret, "***")
    return text


def _text(exc: BaseException) -> str:
    return str(exc) or type(exc).__name__


def _quietly(fn: Callable[..., Any], *args: Any) -> None:
    try:
        fn(*args)
    except Exception:  # noqa: BLE001 - renewing an entry's date is a nicety
        pass
