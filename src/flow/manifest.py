"""The `.flow/` store: a versioned SQLite (WAL) database of output records and the stat cache.

It holds only plain data (strings and numbers, JSON for small maps), never pickles or code.
A corrupt database is moved aside with a warning and the run goes on as if it were empty.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from .errors import ManifestError
from .fingerprint import StatRecord

SCHEMA_VERSION = 1
DB_NAME = "manifest.sqlite"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS outputs (
    key TEXT PRIMARY KEY,      -- the target's key: a path relative to the Flowfile, or a URL
    task_id TEXT NOT NULL,     -- the task that produced it
    family TEXT NOT NULL,
    params TEXT NOT NULL,      -- JSON: significant parameter values as strings
    code TEXT NOT NULL,        -- code hash of the task class
    inputs TEXT NOT NULL,      -- JSON: input key -> fingerprint it was built from
    hash TEXT,                 -- fingerprint of this output when flow recorded it
    built_ns INTEGER NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS files (
    path TEXT PRIMARY KEY, size INTEGER, mtime_ns INTEGER, ctime_ns INTEGER, ino INTEGER,
    hash TEXT, checked_ns INTEGER
) WITHOUT ROWID;
"""
# The journal: outputs a task is producing right now. A row outliving its process (SIGKILL,
# power loss) marks an output that may be half-written. Added after schema 1 shipped, so it is
# created on every writable open; older flows ignore it.
_JOURNAL = """
CREATE TABLE IF NOT EXISTS running (
    key TEXT PRIMARY KEY, task_id TEXT NOT NULL, path TEXT, before TEXT, pid INTEGER
) WITHOUT ROWID;
"""
LOCK_NAME = "lock"


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
        self.recovered = False  # found unreadable: its records are lost, so nothing is adopted
        # Output key -> (task id, path, stat before) of outputs a run died writing.
        self.unfinished: dict[str, tuple[str, str | None, Any]] = {}
        self._db: sqlite3.Connection | None = None
        # Preloaded rows (``preload``); None: read row by row. Keys in ``_fresh`` bypass them.
        self._records: dict[str, tuple[Any, ...]] | None = None
        self._stats: dict[str, StatRecord] | None = None
        self._fresh: set[str] = set()
        self._locks: Locks | None = None
        self._open()
        self.unfinished = {row[0]: row[1:] for row in self._interrupted()}

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
        except sqlite3.DatabaseError as exc:  # not a database, malformed, truncated
            self._recover(exc)

    def _connect_patiently(self) -> sqlite3.Connection:
        """Connect, waiting while another flow holds the database: setting up the schema or
        switching to WAL can report "locked" at once instead of waiting for the busy timeout."""
        deadline = time.monotonic() + 30
        while True:
            try:
                return self._connect()
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def _connect(self) -> sqlite3.Connection:
        if self.readonly:
            db = self._connect_readonly()
        else:
            db = sqlite3.connect(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
        try:
            self._check_not_truncated(db)
            db.execute("PRAGMA busy_timeout = 30000")
            row = None
            with contextlib.suppress(sqlite3.OperationalError):
                row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
            if row is not None and int(row[0]) > SCHEMA_VERSION:
                raise ManifestError(
                    f"{self.path} was written by a newer flow (schema {row[0]}; this flow reads "
                    f"{SCHEMA_VERSION}): upgrade flow, or delete {self.directory} to start afresh"
                )
            if not self.readonly:
                db.execute("PRAGMA journal_mode = WAL")
                db.execute("PRAGMA synchronous = NORMAL")
                if row is None:
                    db.executescript(_SCHEMA)
                    db.execute(
                        "INSERT OR REPLACE INTO meta VALUES ('schema_version', ?)",
                        (str(SCHEMA_VERSION),),
                    )
                db.executescript(_JOURNAL)
            return db
        except BaseException:
            db.close()
            raise

    def _connect_readonly(self) -> sqlite3.Connection:
        # A plain connection leaves nothing behind (the last one to close removes -wal/-shm).
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
            return db
        except sqlite3.OperationalError:
            db.close()
        # A WAL database needs its -shm file, which a read-only .flow/ cannot hold: read the
        # file as it is (a dry run writes nothing, and nothing else can write there).
        from urllib.parse import quote

        uri = f"file:{quote(os.path.abspath(self.path))}?immutable=1"
        return sqlite3.connect(uri, uri=True, isolation_level=None)

    def _check_not_truncated(self, db: sqlite3.Connection) -> None:
        """A file cut short still opens; its missing pages fail later. Catch it up front."""
        wal = self.path + "-wal"
        if os.path.exists(wal) and os.path.getsize(wal) > 0:
            return  # pages may legitimately live in the WAL
        size = os.path.getsize(self.path)
        if size == 0:
            return
        with open(self.path, "rb") as f:
            if f.read(16) != b"SQLite format 3\x00" or size < 100:  # 100: the header's length
                raise sqlite3.DatabaseError("file is not a database")
        pages = db.execute("PRAGMA page_count").fetchone()[0]
        page_size = db.execute("PRAGMA page_size").fetchone()[0]
        if pages * page_size > size:
            raise sqlite3.DatabaseError("database file is truncated")

    def _recover(self, exc: BaseException) -> None:
        self.recovered = True
        self._records = self._stats = None  # whatever was preloaded came from the bad file
        if self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()
            self._db = None
        if self.readonly:
            self.warnings.append(
                f"the manifest {self.path} is unreadable ({exc}); planning as if it were empty"
            )
            return
        aside = f"{self.path}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
        n = 0
        while os.path.lexists(aside if not n else f"{aside}.{n}"):
            n += 1  # two recoveries within a second: keep both copies
        aside = aside if not n else f"{aside}.{n}"
        for suffix in ("", "-wal", "-shm"):
            with contextlib.suppress(FileNotFoundError):
                os.replace(self.path + suffix, aside + suffix)
        self.warnings.append(
            f"the manifest {self.path} was unreadable ({exc}); moved it to {aside} and "
            "started an empty one (what built the outputs is lost: tasks run again)"
        )
        self._db = self._connect()

    def _query(self, sql: str, args: tuple[object, ...]) -> Any:
        if self._db is None:
            return None
        try:
            return self._db.execute(sql, args).fetchone()  # type: ignore[no-any-return]
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
            records = self._db.execute(
                "SELECT key, task_id, family, params, code, inputs, hash, built_ns FROM outputs"
            ).fetchall()
            stats = self._db.execute(
                "SELECT path, size, mtime_ns, ctime_ns, ino, hash, checked_ns FROM files"
            ).fetchall()
        except sqlite3.DatabaseError as exc:
            self._recover(exc)
            return
        self._records = {row[0]: row[1:] for row in records}
        self._stats = {row[0]: StatRecord(*row[1:]) for row in stats}

    def refresh(self, keys: Iterable[str]) -> None:
        """Forget preloaded rows of ``keys``: the next read goes to the database."""
        if self._records is not None:
            for key in keys:
                self._records.pop(key, None)
                self._stats.pop(key, None)  # type: ignore[union-attr]
                self._fresh.add(key)

    def get(self, key: str) -> Record | None:
        """The record of the output ``key``, or None."""
        if self._records is not None and key not in self._fresh:
            row = self._records.get(key)
        else:
            row = self._query(
                "SELECT task_id, family, params, code, inputs, hash, built_ns FROM outputs "
                "WHERE key = ?",
                (key,),
            )
        if row is None:
            return None
        task_id, family, params, code, inputs, digest, built_ns = row
        return Record(
            key, task_id, family, json.loads(params), code, json.loads(inputs), digest, built_ns
        )  # type: ignore[arg-type]

    def get_stat(self, path: str) -> StatRecord | None:
        """The stat-cache entry of a file, or None."""
        if self._stats is not None and path not in self._fresh:
            return self._stats.get(path)
        row = self._query(
            "SELECT size, mtime_ns, ctime_ns, ino, hash, checked_ns FROM files WHERE path = ?",
            (path,),
        )
        return None if row is None else StatRecord(*row)  # type: ignore[arg-type]

    # -- writing --------------------------------------------------------------------------------
    def save(
        self,
        records: Iterable[Record] = (),
        stats: dict[str, StatRecord] | None = None,
        finished: Iterable[str] = (),
    ) -> None:
        """Store records and stat-cache entries, and clear ``finished`` journal rows, in one
        short transaction."""
        if self.readonly:
            return
        rows = [
            (
                r.key,
                r.task_id,
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
            (p, s.size, s.mtime_ns, s.ctime_ns, s.ino, s.hash, s.checked_ns)
            for p, s in (stats or {}).items()
        ]
        done = [(k,) for k in finished]
        if not rows and not stat_rows and not done:
            return
        for attempt in (1, 2):
            try:
                assert self._db is not None
                with self._transaction(self._db) as db:
                    db.executemany("INSERT OR REPLACE INTO outputs VALUES (?,?,?,?,?,?,?,?)", rows)
                    db.executemany("INSERT OR REPLACE INTO files VALUES (?,?,?,?,?,?,?)", stat_rows)
                    if done:
                        db.executemany("DELETE FROM running WHERE key = ?", done)
                if self._records is not None:
                    for row in rows:
                        self._records[row[0]] = row[1:]
                if self._stats is not None:
                    self._stats.update(stats or {})
                return
            except sqlite3.DatabaseError as exc:
                if attempt == 2 or isinstance(exc, sqlite3.OperationalError):
                    raise ManifestError(
                        f"cannot write {self.path}: {exc}; check disk space and permissions"
                    ) from None
                self._recover(exc)

    def forget(self, keys: Iterable[str]) -> None:
        """Drop the records of outputs (a task that failed after rewriting them)."""
        if self.readonly or self._db is None:
            return
        keys = list(keys)
        if self._records is not None:
            for key in keys:
                self._records.pop(key, None)
        with contextlib.suppress(sqlite3.DatabaseError), self._transaction(self._db) as db:
            db.executemany("DELETE FROM outputs WHERE key = ?", [(k,) for k in keys])

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
        rows = [
            (key, task_id, path, json.dumps(before), os.getpid())
            for key, (path, before) in outputs.items()
        ]
        with self._transaction(self._db) as db:
            db.executemany("INSERT OR REPLACE INTO running VALUES (?,?,?,?,?)", rows)

    def end(self, keys: Iterable[str]) -> None:
        """Clear journal rows: the task finished, failed cleanly, or was cleaned up."""
        keys = list(keys)
        for key in keys:
            self.unfinished.pop(key, None)
        if self.readonly or self._db is None:
            return
        with contextlib.suppress(sqlite3.DatabaseError), self._transaction(self._db) as db:
            db.executemany("DELETE FROM running WHERE key = ?", [(k,) for k in keys])

    def _interrupted(self) -> list[tuple[str, str, str | None, Any]]:
        """Journal rows whose producer is gone: (key, task_id, path, stat before).

        A row whose lock another live flow process holds is that process's work in progress.
        """
        if self._db is None:
            return []
        try:
            rows = self._db.execute("SELECT key, task_id, path, before FROM running").fetchall()
        except sqlite3.DatabaseError:
            return []  # no journal (a read-only look at an older manifest)
        if not rows:
            return []
        gone = []
        for key, task_id, path, before in rows:
            if self.readonly or self.locks.probe(key):
                gone.append((key, task_id, path, json.loads(before)))
        return gone

    def backup(self, path: str) -> str:
        """Copy a hand-edited output under ``.flow/backup/`` before flow overwrites it."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        rel = path.lstrip(os.sep).replace("..", "__")
        dest = os.path.join(self.directory, "backup", stamp, rel)
        n = 0
        while os.path.lexists(dest):  # two backups of one file within a second: keep both
            n += 1
            dest = os.path.join(self.directory, "backup", f"{stamp}.{n}", rel)
        os.makedirs(os.path.dirname(dest), exist_ok=True)
        import shutil  # only for a hand-edited output: keep it off every start

        if os.path.isdir(path):
            shutil.copytree(path, dest, dirs_exist_ok=True)
        else:
            shutil.copy2(path, dest)
        return dest

    @staticmethod
    @contextlib.contextmanager
    def _transaction(db: sqlite3.Connection):  # type: ignore[no-untyped-def]
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def close(self) -> None:
        if self._locks is not None:
            self._locks.close()
            self._locks = None
        if self._db is not None:
            with contextlib.suppress(Exception):
                self._db.close()
            self._db = None


class Locks:
    """Exclusive cross-process locks on names (output keys, task ids), with no daemon.

    Each name is one byte of ``.flow/lock``, locked with POSIX record locks: no file is created
    per task, and the kernel releases a dead process's locks, so a killed flow never blocks the
    next one. Record locks belong to the process, and closing any descriptor of the file drops
    them all: this object keeps the only one.
    """

    def __init__(self, path: str) -> None:
        import fcntl

        self._fcntl = fcntl
        self.path = path
        try:
            self._fd: int | None = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        except OSError as exc:
            raise ManifestError(
                f"cannot open the lock file {path}: {exc.strerror}; make .flow/ writable"
            ) from None
        self.held: set[str] = set()

    @staticmethod
    def _offset(name: str) -> int:
        import xxhash

        return xxhash.xxh64_intdigest(name.encode()) >> 2  # a byte offset below 2**62

    def _lock(self, name: str) -> bool:
        assert self._fd is not None
        try:
            self._fcntl.lockf(
                self._fd, self._fcntl.LOCK_EX | self._fcntl.LOCK_NB, 1, self._offset(name)
            )
        except OSError:  # EAGAIN/EACCES: another process holds it
            return False
        return True

    def _unlock(self, name: str) -> None:
        assert self._fd is not None
        with contextlib.suppress(OSError):
            self._fcntl.lockf(self._fd, self._fcntl.LOCK_UN, 1, self._offset(name))

    def acquire(self, names: Iterable[str]) -> bool:
        """Take every lock in ``names`` or none of them (never blocks, so never deadlocks)."""
        taken: list[str] = []
        for name in sorted(set(names)):
            if name in self.held or self._lock(name):
                taken.append(name)
                continue
            for n in taken:
                if n not in self.held:
                    self._unlock(n)
            return False
        self.held.update(taken)
        return True

    def release(self, names: Iterable[str]) -> None:
        for name in set(names):
            if name in self.held:
                self.held.discard(name)
                self._unlock(name)

    def probe(self, name: str) -> bool:
        """True when no other process holds ``name`` (checked by taking and dropping it)."""
        if name in self.held:
            return False
        if not self._lock(name):
            return False
        self._unlock(name)
        return True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops every lock this process holds on the file
            self._fd = None
            self.held.clear()


# -- the completion index: a small JSON file read on every Tab (see complete.py) ---------------
INDEX_NAME = "completion.json"


def read_index(directory: str) -> Any:
    """The completion index stored in ``directory``, or None when it is absent or unreadable."""
    try:
        with open(os.path.join(directory, INDEX_NAME), encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def write_index(directory: str, data: dict[str, Any]) -> None:
    """Store the completion index atomically (temporary file + rename); failures are ignored,
    since the index is only a cache."""
    path = os.path.join(directory, INDEX_NAME)
    tmp = f"{path}.{os.getpid()}.tmp"
    try:
        os.makedirs(directory, exist_ok=True)
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(data, f, ensure_ascii=False)
        os.replace(tmp, path)
    except OSError:
        with contextlib.suppress(OSError):
            os.remove(tmp)
