"""Read many manifest rows in few queries: all of them, or those of a list of keys."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from typing import Any

from .database import from_db, to_db

RECORD_COLUMNS = "task_id, family, params, code, inputs, hash, built_ns"
STAT_COLUMNS = "size, mtime_ns, ctime_ns, ino, hash, checked_ns"
# Keys per query: SQLite allows 32,766 parameters since 3.32 and 999 before.
CHUNK = 900

Rows = dict[str, tuple[Any, ...]]


def load_all(db: sqlite3.Connection) -> tuple[Rows, Rows]:
    """Every record and every stat-cache entry, as raw rows by key."""
    records = db.execute(f"SELECT key, {RECORD_COLUMNS} FROM outputs").fetchall()
    stats = db.execute(f"SELECT path, {STAT_COLUMNS} FROM files").fetchall()
    return _by_key(records), _by_key(stats)


def load_keys(
    db: sqlite3.Connection, outputs: Iterable[str], files: Iterable[str]
) -> tuple[Rows, Rows]:
    """The records of the output keys ``outputs`` and the stat-cache entries of the paths
    ``files``, in a query per ``CHUNK`` keys rather than one per key.

    Only outputs are looked up in ``outputs``: a key that sorts next to a record with a large
    row (a fan-in task's thousands of input fingerprints) costs a read of that whole row."""
    return _rows(db, RECORD_COLUMNS, "outputs", "key", outputs), _rows(
        db, STAT_COLUMNS, "files", "path", files
    )


def _rows(db: sqlite3.Connection, columns: str, table: str, key: str, keys: Iterable[str]) -> Rows:
    wanted = list(dict.fromkeys(to_db(k) for k in keys))
    found: Rows = {}
    for start in range(0, len(wanted), CHUNK):
        chunk = wanted[start : start + CHUNK]
        marks = ",".join("?" * len(chunk))
        sql = f"SELECT {key}, {columns} FROM {table} WHERE {key} IN ({marks})"
        found.update(_by_key(db.execute(sql, chunk).fetchall()))
    return found


def _by_key(rows: list[Any]) -> Rows:
    return {from_db(row[0]): row[1:] for row in rows}
