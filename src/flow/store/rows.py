"""Rows of the manifest: records and stat-cache entries to and from SQLite, checked on the way in."""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from ..fingerprint import StatRecord
from . import dynamic as dynamic_table
from .database import from_db, to_db


@dataclass(slots=True)
class Record:
    """What flow knew of an output when it was last produced (or adopted, or touched)."""

    key: str
    task_id: str
    family: str
    params: dict[str, str]
    code: str
    inputs: dict[str, str | None]
    hash: str | None
    built_ns: int = field(default_factory=time.time_ns)
    # The tasks its producer's run() yielded, as plain specs. Written to the ``dynamic`` table;
    # ``get()`` leaves it empty: ``Manifest.dynamic()`` reads them all at once.
    dynamic: list[dynamic_table.Spec] = field(default_factory=list)


@dataclass
class Batch:
    """The rows of one ``Manifest.save``: outputs, stat-cache entries, finished journal keys,
    dynamic requirements."""

    rows: list[tuple[Any, ...]]
    stats: list[tuple[Any, ...]]
    done: list[tuple[Any, ...]]
    dynamic: dynamic_table.Changes


def rows_of(
    records: list[Record],
    stats: dict[str, StatRecord],
    finished: Iterable[str],
    known: dynamic_table.Recorded | None,
) -> Batch | None:
    """The rows that store ``records``, ``stats`` and clear ``finished``; None for nothing."""
    rows = [
        (
            to_db(r.key),
            to_db(r.task_id),
            r.family,
            json.dumps(r.params, sort_keys=True),
            r.code,
            json.dumps(r.inputs, sort_keys=True),
            r.hash,
            r.built_ns,
        )
        for r in records
    ]
    stat_rows = [
        (to_db(p), s.size, s.mtime_ns, s.ctime_ns, s.ino, s.hash, s.checked_ns)
        for p, s in stats.items()
    ]
    done = [(to_db(k),) for k in finished]
    if not rows and not stat_rows and not done:
        return None
    return Batch(rows, stat_rows, done, dynamic_table.changes(records, known))


def write_rows(db: sqlite3.Connection, b: Batch) -> None:
    """Write one batch, in the caller's transaction."""
    db.executemany("INSERT OR REPLACE INTO outputs VALUES (?,?,?,?,?,?,?,?)", b.rows)
    db.executemany("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?)", b.stats)
    if b.done:
        db.executemany("DELETE FROM running WHERE key = ?", b.done)
    dynamic_table.apply(db, *b.dynamic)


def record_of(key: str, row: tuple[Any, ...]) -> Record:
    """A Record from an ``outputs`` row; DatabaseError when the row is not one flow wrote."""
    task_id, family, params, code, inputs, digest, built_ns = row
    try:
        params, inputs = json.loads(params), json.loads(inputs)
    except (TypeError, ValueError):
        raise sqlite3.DatabaseError(f"a damaged record of {key!r}") from None
    if not (
        isinstance(task_id, (str, bytes))
        and type(family) is str
        and type(params) is dict
        and type(code) is str
        and type(inputs) is dict
        and (digest is None or type(digest) is str)
        and type(built_ns) is int
    ):
        raise sqlite3.DatabaseError(f"a damaged record of {key!r}")
    # Plain loops, not all(<generator>): this runs for every record of a 10,000-task no-op.
    for value in params.values():
        if type(value) is not str:
            raise sqlite3.DatabaseError(f"a damaged record of {key!r}")
    for value in inputs.values():
        if value is not None and type(value) is not str:
            raise sqlite3.DatabaseError(f"a damaged record of {key!r}")
    return Record(key, from_db(task_id), family, params, code, inputs, digest, built_ns)


def stat_of(row: tuple[Any, ...]) -> StatRecord:
    """A StatRecord from a ``files`` row; DatabaseError when the row is not one flow wrote."""
    size, mtime_ns, ctime_ns, ino, digest, checked_ns = row
    if not (
        type(size) is int
        and type(mtime_ns) is int
        and type(ctime_ns) is int
        and type(ino) is int
        and type(checked_ns) is int
        and type(digest) is str
    ):
        raise sqlite3.DatabaseError("a damaged stat-cache entry")
    return StatRecord(size, mtime_ns, ctime_ns, ino, digest, checked_ns)
