"""The manifest: records of outputs and the stat cache, in ``.flow/manifest.sqlite`` (WAL).

It holds only plain data (strings and numbers, JSON for small maps), never pickles or code.
A database flow cannot read, as a whole or a single row of it, is moved aside with a warning
and the run goes on as if it were empty.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Iterable
from typing import Any

from ..errors import ManifestError
from ..fingerprint import StatRecord
from . import DB_NAME, LOCK_NAME, bulk, check_layout, journal
from . import dynamic as dynamic_table
from .backup import backup
from .database import connect, move_aside, to_db, transaction
from .locks import Locks
from .rows import Batch, Record, record_of, rows_of, stat_of, write_rows

__all__ = ["Manifest", "Record"]


class Manifest:
    """Records of outputs and the stat cache, in ``DIR/manifest.sqlite``.

    With ``readonly=True`` (dry runs, ``--check``) nothing is created or written, and a corrupt
    database is ignored rather than moved.
    """

    def __init__(self, directory: str, readonly: bool = False) -> None:
        self.directory = directory
        self.path = os.path.join(directory, DB_NAME)
        self.readonly = readonly
        self.warnings: list[str] = []
        self._warned = 0  # how many of ``warnings`` ``new_warnings`` has handed out
        self.recovered = False  # found unreadable: its records are lost, so nothing is adopted
        # Output key -> (task id, path, snapshot before) of outputs a run died writing.
        self.unfinished: journal.Unfinished = {}
        self._db: sqlite3.Connection | None = None
        # Preloaded rows (``preload``); None: read row by row. Keys in ``_fresh`` bypass them.
        self._records: dict[str, tuple[Any, ...]] | None = None
        self._complete = False  # _records and _stats hold every row (else: those read ahead)
        self._asked: frozenset[str] = frozenset()  # the keys read ahead, found or not
        self._asked_files: frozenset[str] = frozenset()
        # Preloaded stat-cache rows: raw tuples until asked for (most are asked once), or
        # StatRecords saved by this run.
        self._stats: dict[str, Any] | None = None
        self._fresh: set[str] = set()
        self._dynamic: dynamic_table.Recorded | None = None  # read on first use
        self._locks: Locks | None = None
        self._fd: int | None = None  # the database file, checked before each write
        self._headers: tuple[bytes, ...] = (_HEADER,)  # what its first 16 bytes may be
        self._pending: list[Batch] = []  # saved with defer=True, not committed yet
        self._held_locks: list[list[str]] = []  # released once _pending is committed
        self._held_records: dict[str, tuple[Any, ...]] = {}  # their rows, read back until then
        self._held_stats: dict[str, StatRecord] = {}
        self._secret: bytes | None = None
        check_layout(directory)
        self._open()
        self.unfinished = self._interrupted()
        # Before anything is decided: what another flow commits after this, we have not seen.
        self._data_version = self._version()
        self._others = False

    def _version(self) -> int | None:
        """SQLite's data_version: it changes when another connection commits, never for ours."""
        if self._db is None:
            return None
        try:
            row = self._db.execute("PRAGMA data_version").fetchone()
        except sqlite3.DatabaseError:
            return None
        return int(row[0]) if row else None

    def others_committed(self) -> bool:
        """Has another connection (another flow process) committed to the manifest since it was
        opened? Once true, true for the rest of this run: a verdict made earlier may be stale."""
        if not self._others:
            now = self._version()
            self._others = now is None or now != self._data_version
        return self._others

    def new_warnings(self) -> list[str]:
        """The warnings not handed out yet (opening, a damaged row found while reading...)."""
        new, self._warned = self.warnings[self._warned :], len(self.warnings)
        return new

    # -- opening and recovery -------------------------------------------------------------------
    def _open(self) -> None:
        if self.readonly and not os.path.exists(self.path):
            return
        if not self.readonly:
            try:
                os.makedirs(self.directory, exist_ok=True)
            except OSError as exc:
                raise ManifestError(
                    f"cannot create {self.directory}: {exc.strerror}; make the directory beside "
                    "the Flowfile writable, or run from a checkout you own"
                ) from None
        try:
            self._db = self._connect_patiently()
        except sqlite3.OperationalError as exc:  # permissions, a directory in the way
            raise ManifestError(f"cannot open {self.path}: {exc}; check its permissions") from None
        except sqlite3.DatabaseError as exc:  # not a database, malformed, truncated, reshaped
            self._recover(exc)
        self._watch_file()

    def _watch_file(self) -> None:
        """Keep a descriptor on the database file to check it before each write. It is closed
        only after SQLite's connection: closing any descriptor of a file drops every POSIX lock
        this process holds on it, SQLite's included."""
        if self.readonly or self._db is None:
            return
        with contextlib.suppress(OSError):
            self._fd = os.open(self.path, os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
            # A new database in WAL mode may have nothing in its main file yet.
            self._headers = (_HEADER,) if os.pread(self._fd, 16, 0) else (_HEADER, b"")

    def _check_intact(self) -> None:
        """Before a write: the file must still be the database this connection opened. In WAL
        mode a task that overwrote or replaced it (a clean step, a vandal) would otherwise go
        unnoticed until the records written since were lost."""
        if self._fd is None:
            return
        try:
            same = os.path.samestat(os.stat(self.path), os.fstat(self._fd))
            head = os.pread(self._fd, 16, 0)
        except OSError:
            same, head = False, b""
        if not same or head not in self._headers:
            raise sqlite3.DatabaseError("the file was overwritten or replaced since flow opened it")

    def _close_file(self) -> None:
        if self._fd is not None:
            with contextlib.suppress(OSError):
                os.close(self._fd)
            self._fd = None

    def _connect_patiently(self) -> sqlite3.Connection:
        """Connect, waiting while another flow holds the database: setting up the schema or
        switching to WAL can report "locked" at once instead of waiting for the busy timeout."""
        deadline = time.monotonic() + 30
        while True:
            try:
                return connect(self.path, self.readonly)
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _recover(self, exc: BaseException) -> None:
        self.recovered = True
        self._records = self._stats = None  # whatever was preloaded came from the bad file
        self._complete = False
        self._asked = self._asked_files = frozenset()
        self._dynamic = dynamic_table.Recorded()
        if self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()
            self._db = None
        self._close_file()
        if self.readonly:
            self.warnings.append(
                f"the manifest {self.path} is unreadable ({exc}); planning as if it were empty"
            )
            return
        if not os.path.lexists(self.path):  # a task removed it, or all of .flow/ (a clean step)
            self.warnings.append(
                f"the manifest {self.path} was removed while flow ran; started an empty one "
                "(the records of this run go there)"
            )
        else:
            try:
                aside = move_aside(self.path)
            except OSError as exc2:
                raise ManifestError(
                    f"the manifest {self.path} is unreadable ({exc}) and cannot be moved aside "
                    f"({exc2.strerror}); remove it (flow starts an empty one)"
                ) from None
            self.warnings.append(
                f"the manifest {self.path} was unreadable ({exc}); moved it to {aside} and "
                "started an empty one (what built the outputs is lost: tasks run again)"
            )
        try:
            os.makedirs(self.directory, exist_ok=True)
            self._db = connect(self.path, readonly=False)
        except (OSError, sqlite3.Error) as exc3:
            raise ManifestError(
                f"cannot start a new manifest {self.path}: {exc3}; check that the directory "
                "beside the Flowfile is writable"
            ) from None
        self._watch_file()

    def _query(self, sql: str, args: tuple[object, ...]) -> Any:
        if self._db is None:
            return None
        try:
            return self._db.execute(sql, args).fetchone()
        except sqlite3.DatabaseError as exc:
            self._recover(exc)
            return None

    # -- reading --------------------------------------------------------------------------------
    def preload(self) -> None:
        """Read every record and stat-cache entry in two queries, instead of one query per
        output (a 10,000-task graph plans several times faster). Only worth it for big graphs;
        ``refresh`` re-reads keys another process may have changed since."""
        if self._db is None:
            return
        try:
            self._records, self._stats = bulk.load_all(self._db)
        except sqlite3.DatabaseError as exc:
            self._records = self._stats = None
            self._recover(exc)
            return
        self._complete = True

    def read_ahead(self, outputs: Iterable[str], files: Iterable[str]) -> None:
        """Read the records of ``outputs`` and the stat-cache entries of ``files`` (those of the
        next tasks to decide) in a few queries, in place of those read ahead before: for
        graphs too big to ``preload``, whose rows would not fit in memory at once."""
        if self._complete or self._db is None:
            return
        outputs, files = frozenset(outputs), frozenset(files)
        try:
            self._records, self._stats = bulk.load_keys(self._db, outputs, files)
        except sqlite3.DatabaseError as exc:
            self._records = self._stats = None
            self._recover(exc)
            return
        self._asked, self._asked_files = outputs, files

    def refresh(self, keys: Iterable[str]) -> None:
        """Forget preloaded rows of ``keys``: the next read goes to the database."""
        if self._records is not None:
            for key in keys:
                self._records.pop(key, None)
                self._stats.pop(key, None)  # type: ignore[union-attr]
                self._fresh.add(key)

    def get(self, key: str) -> Record | None:
        """The record of the output ``key``, or None."""
        row: tuple[Any, ...] | None
        if key in self._held_records:
            row = self._held_records[key]
        elif (
            self._records is not None
            and key not in self._fresh
            and (self._complete or key in self._asked)
        ):
            row = self._records.get(key)
        else:
            row = self._query(
                f"SELECT {bulk.RECORD_COLUMNS} FROM outputs WHERE key = ?", (to_db(key),)
            )
        if row is None:
            return None
        try:
            return record_of(key, row)
        except sqlite3.DatabaseError as exc:
            self._recover(exc)
            return None

    def dynamic(self) -> dict[str, dict[str, list[dynamic_table.Spec]]]:
        """The recorded dynamic requirements: the id of the task whose run() yielded them ->
        output key -> their specs; read in one query on first use (an empty table when no
        run() yielded anything)."""
        if self._dynamic is None:
            self._dynamic = dynamic_table.Recorded()
            if self._db is not None:
                try:
                    self._dynamic = dynamic_table.load(self._db)
                except sqlite3.DatabaseError as exc:
                    self._recover(exc)
        return self._dynamic.by_task

    def secret_key(self) -> bytes | None:
        """The project's random key for hashing private parameter values, made on first use;
        None in read-only mode before any run has made one."""
        if self._secret is None:
            sql = "SELECT value FROM meta WHERE key = 'secret_key'"
            row = self._query(sql, ())
            if row is None and not self.readonly and self._db is not None:
                # OR IGNORE: of two flows making a key at once, the first wins and both read it.
                new = os.urandom(32).hex()
                self._db.execute("INSERT OR IGNORE INTO meta VALUES ('secret_key', ?)", (new,))
                row = self._query(sql, ())
            self._secret = bytes.fromhex(row[0]) if row else None
        return self._secret

    def get_stat(self, path: str) -> StatRecord | None:
        """The stat-cache entry of a file, or None."""
        if path in self._held_stats:
            return self._held_stats[path]
        if (
            self._stats is not None
            and path not in self._fresh
            and (self._complete or path in self._asked_files)
        ):
            row = self._stats.get(path)
            if row is None or type(row) is StatRecord:
                return row
        else:
            row = self._query(
                f"SELECT {bulk.STAT_COLUMNS} FROM files WHERE path = ?", (to_db(path),)
            )
        if row is None:
            return None
        try:
            return stat_of(row)
        except sqlite3.DatabaseError as exc:
            self._recover(exc)
            return None

    # -- writing --------------------------------------------------------------------------------
    def save(
        self,
        records: Iterable[Record] = (),
        stats: dict[str, StatRecord] | None = None,
        finished: Iterable[str] = (),
        defer: bool = False,
    ) -> None:
        """Store records and stat-cache entries, and clear ``finished`` journal rows, in one
        short transaction. With ``defer`` they are held (and read back by this process) until
        the next write or ``flush``: a task's record then shares the next task's journal
        commit, one commit per task instead of two. A process killed before that commit leaves
        the task's journal rows, so the next run removes its outputs and runs it again."""
        if self.readonly:
            return
        records = list(records)
        batch = rows_of(records, stats or {}, finished, self._dynamic)
        if batch is None:
            return
        if defer:
            self._pending.append(batch)
            for r, row in zip(records, batch.rows, strict=True):
                self._held_records[r.key] = row[1:]
            self._held_stats.update(stats or {})
        else:
            self._write([batch])
        self._remember_dynamic(records)
        if self._records is not None:
            for r, row in zip(records, batch.rows, strict=True):
                self._records[r.key] = row[1:]
        if self._stats is not None:
            self._stats.update(stats or {})

    def _write(self, batches: list[Batch], also: Any = None) -> None:
        """Commit the held batches, then ``batches``, then ``also(db)``, in one transaction;
        then release the locks that waited for the held ones."""
        batches = self._pending + batches
        for attempt in (1, 2):
            try:
                assert self._db is not None
                self._check_intact()
                with transaction(self._db) as db:
                    for b in batches:
                        write_rows(db, b)
                    if also is not None:
                        also(db)
                break
            except sqlite3.DatabaseError as exc:
                if attempt == 2 or isinstance(exc, sqlite3.OperationalError):
                    raise ManifestError(
                        f"cannot write {self.path}: {exc}; check disk space and permissions"
                    ) from None
                self._recover(exc)
        self._pending = []
        self._held_records.clear()
        self._held_stats.clear()
        self._release_held()

    def flush(self) -> None:
        """Commit what ``save(defer=True)`` holds, and release the locks waiting for it: before
        flow waits (for a worker, for another flow's lock) and when the run ends."""
        try:
            if self._pending and self._db is not None and not self.readonly:
                self._write([])
        finally:
            self._release_held()

    def release_when_saved(self, names: list[str]) -> None:
        """Release a finished task's locks once its held records are committed: another flow
        that takes them must find the records."""
        if self._pending:
            self._held_locks.append(names)
        else:
            self.locks.release(names)

    def _release_held(self) -> None:
        held, self._held_locks = self._held_locks, []
        for names in held:
            self.locks.release(names)

    def forget(self, keys: Iterable[str]) -> None:
        """Drop the records of outputs (a task that failed after rewriting them)."""
        if self.readonly or self._db is None:
            return
        keys = list(keys)
        if self._records is not None:
            for key in keys:
                self._records.pop(key, None)

        def delete(db: sqlite3.Connection) -> None:
            db.executemany("DELETE FROM outputs WHERE key = ?", [(to_db(k),) for k in keys])
            dynamic_table.forget(db, keys)

        with contextlib.suppress(ManifestError):
            self._write([], delete)
        for key in keys:
            if self._dynamic is not None:
                self._dynamic.drop(key)

    def _remember_dynamic(self, records: list[Record]) -> None:
        if self._dynamic is not None:
            for r in records:
                self._dynamic.put(r.key, r.task_id, r.dynamic)

    # -- the journal and locks (concurrent and interrupted runs) ------------------------------
    @property
    def locks(self) -> Locks:
        """Cross-process locks, in ``.flow/lock`` (opened on first use: a no-op takes none)."""
        if self._locks is None:
            self._locks = Locks(os.path.join(self.directory, LOCK_NAME))
        return self._locks

    def begin(self, task_id: str, outputs: dict[str, tuple[str, Any]]) -> None:
        """Journal that ``task_id`` starts producing ``outputs`` (key -> (path, stat before))."""
        if self.readonly or self._db is None or not outputs:
            return
        self._write([], lambda db: journal.insert(db, task_id, outputs))

    def end(self, keys: Iterable[str]) -> None:
        """Clear journal rows: the task finished, failed cleanly, or was cleaned up."""
        keys = list(keys)
        for key in keys:
            self.unfinished.pop(key, None)
        if self.readonly or self._db is None:
            return
        with contextlib.suppress(ManifestError):
            self._write([], lambda db: journal.delete(db, keys))

    def _interrupted(self) -> journal.Unfinished:
        """Journal rows whose producer is gone (a damaged journal is a damaged manifest)."""
        if self._db is None:
            return {}
        try:
            return journal.interrupted(self._db, lambda key: self.readonly or self.locks.probe(key))
        except sqlite3.DatabaseError as exc:
            self._recover(exc)
            return {}

    def backup(self, path: str, target: Any = None) -> str:
        """Copy a hand-edited output under ``.flow/backup/`` before flow overwrites it."""
        return backup(self.directory, path, target)

    def close(self) -> None:
        try:
            self.flush()
        except ManifestError as exc:
            self.warnings.append(f"{exc} (the records of the last tasks were not saved)")
        if self._locks is not None:
            self._locks.close()
            self._locks = None
        if self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()
            self._db = None
        self._close_file()


_HEADER = b"SQLite format 3\x00"
