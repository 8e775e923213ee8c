"""The journal: the outputs a task is producing right now, in the manifest's ``running`` table.

A row outliving its process (SIGKILL, power loss) marks an output that may be half-written.
"""

from __future__ import annotations

import json
import os
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

from .database import from_db, to_db

# key -> (task id, path, snapshot before): an output a run died writing. The snapshot is the
# target's own plain JSON data (``Target.snapshot()``), opaque here.
Unfinished = dict[str, tuple[str, str | None, Any]]


def insert(db: sqlite3.Connection, task_id: str, outputs: dict[str, tuple[str, Any]]) -> None:
    """Journal that ``task_id`` starts producing ``outputs`` (key -> (path, snapshot before)),
    in the caller's transaction."""
    rows = [
        (to_db(key), to_db(task_id), to_db(path), json.dumps(before), os.getpid())
        for key, (path, before) in outputs.items()
    ]
    db.executemany("INSERT OR REPLACE INTO running VALUES (?,?,?,?,?)", rows)


def delete(db: sqlite3.Connection, keys: Iterable[str]) -> None:
    """Clear journal rows (the task finished, failed cleanly, or was cleaned up), in the
    caller's transaction."""
    db.executemany("DELETE FROM running WHERE key = ?", [(to_db(k),) for k in keys])


def interrupted(db: sqlite3.Connection, gone: Callable[[str], bool]) -> Unfinished:
    """Journal rows whose producer is gone (``gone(key)``; a row whose lock another live flow
    holds is that flow's work in progress). A row flow cannot read raises DatabaseError."""
    try:
        rows = db.execute("SELECT key, task_id, path, before FROM running").fetchall()
    except sqlite3.OperationalError:
        return {}  # no journal (a read-only look at an older manifest)
    found: Unfinished = {}
    for key, task_id, path, before in rows:
        try:
            snapshot = json.loads(before)
        except (TypeError, ValueError):
            raise sqlite3.DatabaseError(f"a damaged journal row for {key!r}") from None
        if not (
            isinstance(key, (str, bytes))
            and isinstance(task_id, (str, bytes))
            and (path is None or isinstance(path, (str, bytes)))
        ):
            raise sqlite3.DatabaseError(f"a damaged journal row for {key!r}")
        key = from_db(key)
        if gone(key):
            found[key] = (from_db(task_id), None if path is None else from_db(path), snapshot)
    return found
