"""Dynamic requirements in the manifest's ``dynamic`` table: for an output, the tasks that the
``run()`` which produced it yielded, as plain task specs.

A spec is JSON data (``flow.dynamic`` makes them and re-creates tasks from them)::

    {"module": ["file", PATH] | ["name", MODULE] | null, "qualname": "Part",
     "params": {"i": "1"}, "tid": "Part(i=1)"}

A row flow cannot read as it wrote it raises ``sqlite3.DatabaseError``, which the manifest
answers as it does for any damaged row: the database is moved aside.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable
from typing import Any

from .database import from_db, to_db

Spec = dict[str, Any]


class Recorded:
    """The rows in memory, by output key and by the task whose run() yielded them."""

    def __init__(self) -> None:
        self.by_key: dict[str, str] = {}  # output key -> task id
        self.by_task: dict[str, dict[str, list[Spec]]] = {}  # task id -> output key -> specs

    def put(self, key: str, task_id: str, specs: list[Spec]) -> None:
        self.drop(key)
        if specs:
            self.by_key[key] = task_id
            self.by_task.setdefault(task_id, {})[key] = specs

    def drop(self, key: str) -> None:
        task_id = self.by_key.pop(key, None)
        if task_id is not None:
            keys = self.by_task[task_id]
            del keys[key]
            if not keys:
                del self.by_task[task_id]


def load(db: sqlite3.Connection) -> Recorded:
    """Every row, in one query (the table holds only the outputs of tasks that yielded)."""
    found = Recorded()
    try:
        rows = db.execute("SELECT key, task_id, specs FROM dynamic").fetchall()
    except sqlite3.OperationalError:
        return found  # no such table: a read-only look at an older manifest
    for key, task_id, specs in rows:
        if not isinstance(key, (str, bytes)) or not isinstance(task_id, (str, bytes)):
            raise sqlite3.DatabaseError("a damaged row of dynamic requirements")
        found.put(from_db(key), from_db(task_id), _specs(key, specs))
    return found


Changes = tuple[list[tuple[Any, ...]], list[tuple[Any, ...]]]


def changes(records: Iterable[Any], known: Recorded | None) -> Changes:
    """The rows that store each record's specs (a record without any clears its output's
    row; ``known``: the rows as loaded, to skip deleting absent ones), applied by ``apply``
    in the caller's transaction."""
    put, drop = [], []
    for r in records:
        if r.dynamic:
            put.append((to_db(r.key), to_db(r.task_id), json.dumps(r.dynamic, sort_keys=True)))
        elif known is None or r.key in known.by_key:
            drop.append((to_db(r.key),))
    return put, drop


def apply(db: sqlite3.Connection, put: list[tuple[Any, ...]], drop: list[tuple[Any, ...]]) -> None:
    if put:
        db.executemany("INSERT OR REPLACE INTO dynamic VALUES (?,?,?)", put)
    if drop:
        db.executemany("DELETE FROM dynamic WHERE key = ?", drop)


def forget(db: sqlite3.Connection, keys: list[str]) -> None:
    db.executemany("DELETE FROM dynamic WHERE key = ?", [(to_db(k),) for k in keys])


def _specs(key: Any, text: Any) -> list[Spec]:
    try:
        specs = json.loads(text)
    except (TypeError, ValueError):
        raise sqlite3.DatabaseError(f"damaged dynamic requirements of {key!r}") from None
    if not isinstance(specs, list) or not all(_is_spec(s) for s in specs):
        raise sqlite3.DatabaseError(f"damaged dynamic requirements of {key!r}")
    return specs


def _is_spec(spec: Any) -> bool:
    if not isinstance(spec, dict):
        return False
    module, params = spec.get("module"), spec.get("params")
    return (
        (
            module is None
            or (
                isinstance(module, list)
                and len(module) == 2
                and module[0] in ("file", "name")
                and isinstance(module[1], str)
            )
        )
        and isinstance(spec.get("qualname"), str)
        and isinstance(spec.get("tid"), str)
        and isinstance(params, dict)
        and all(v is None or isinstance(v, str) for v in params.values())
    )
