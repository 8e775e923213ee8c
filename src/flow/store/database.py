"""The SQLite file under the store: opening it, its versioned schema, and telling damage apart.

Anything flow cannot read as it wrote it (a bad header, a missing table, an extra column, a
row of the wrong shape) is raised as ``sqlite3.DatabaseError``, which the manifest answers by
moving the file aside. Problems the user must fix (a newer flow's file, no permission) are
``ManifestError``s with the fix in their message.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import struct
import time
from collections.abc import Iterator

from ..errors import ManifestError

SCHEMA_VERSION = 1

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
JOURNAL = """
CREATE TABLE IF NOT EXISTS running (
    key TEXT PRIMARY KEY, task_id TEXT NOT NULL, path TEXT, before TEXT, pid INTEGER
) WITHOUT ROWID;
"""
# Dynamic requirements: the tasks a run() yielded while producing an output, as plain task specs
# (JSON: module reference, class name, parameter strings, task id), never pickles. Added after
# schema 1 shipped, like the journal: created on every writable open; older flows ignore it.
DYNAMIC = """
CREATE TABLE IF NOT EXISTS dynamic (
    key TEXT PRIMARY KEY, task_id TEXT NOT NULL, specs TEXT NOT NULL
) WITHOUT ROWID;
"""
# Tables added after schema 1: absent from an older manifest until a writable open creates them.
_ADDED = ("running", "dynamic")
# (column, declared type) of each table, as the statements above create them.
_COLUMNS = {
    "meta": [("key", "TEXT"), ("value", "TEXT")],
    "outputs": [
        ("key", "TEXT"),
        ("task_id", "TEXT"),
        ("family", "TEXT"),
        ("params", "TEXT"),
        ("code", "TEXT"),
        ("inputs", "TEXT"),
        ("hash", "TEXT"),
        ("built_ns", "INTEGER"),
    ],
    "files": [
        ("path", "TEXT"),
        ("size", "INTEGER"),
        ("mtime_ns", "INTEGER"),
        ("ctime_ns", "INTEGER"),
        ("ino", "INTEGER"),
        ("hash", "TEXT"),
        ("checked_ns", "INTEGER"),
    ],
    "running": [
        ("key", "TEXT"),
        ("task_id", "TEXT"),
        ("path", "TEXT"),
        ("before", "TEXT"),
        ("pid", "INTEGER"),
    ],
    "dynamic": [("key", "TEXT"), ("task_id", "TEXT"), ("specs", "TEXT")],
}


def connect(path: str, readonly: bool) -> sqlite3.Connection:
    """Open the manifest at ``path``, checking its schema, and create it when writable."""
    if not readonly:
        _check_writable(path)
    db = _connect_readonly(path) if readonly else _connect_writable(path)
    try:
        _check_not_truncated(path, db)
        db.execute("PRAGMA busy_timeout = 30000")
        tables = {r[0] for r in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
        if tables:
            _check_schema(path, db, tables)
        if not readonly:
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            if not tables:
                # In one transaction: another flow opening it meanwhile sees all or nothing.
                db.executescript(
                    f"BEGIN IMMEDIATE; {_SCHEMA} INSERT OR REPLACE INTO meta "
                    f"VALUES ('schema_version', '{SCHEMA_VERSION}'); COMMIT;"
                )
            db.executescript(JOURNAL + DYNAMIC)
        return db
    except BaseException:
        db.close()
        raise


def _connect_writable(path: str) -> sqlite3.Connection:
    return sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)


def _connect_readonly(path: str) -> sqlite3.Connection:
    # A plain connection leaves nothing behind (the last one to close removes -wal/-shm).
    db = sqlite3.connect(path, timeout=30, isolation_level=None)
    try:
        db.execute("SELECT 1 FROM sqlite_master LIMIT 1").fetchall()
        return db
    except sqlite3.OperationalError:
        db.close()
    # A WAL database needs its -shm file, which a read-only .flow/ cannot hold: read the
    # file as it is (a dry run writes nothing, and nothing else can write there).
    from urllib.parse import quote

    uri = f"file:{quote(os.path.abspath(path))}?immutable=1"
    return sqlite3.connect(uri, uri=True, isolation_level=None)


def _check_schema(path: str, db: sqlite3.Connection, tables: set[str]) -> None:
    """Raise DatabaseError unless the tables are the ones this flow creates (a table added by a
    later flow is fine; a missing or reshaped one is damage)."""
    if "meta" not in tables:
        raise sqlite3.DatabaseError("no meta table")
    row = db.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone()
    try:
        version = int(row[0]) if row is not None else SCHEMA_VERSION
    except (TypeError, ValueError):
        raise sqlite3.DatabaseError(f"schema version {row[0]!r} is not a number") from None
    if version > SCHEMA_VERSION:
        raise ManifestError(
            f"{path} was written by a newer flow (schema {version}; this flow reads "
            f"{SCHEMA_VERSION}): upgrade flow, or delete {os.path.dirname(path)} to start afresh"
        )
    for table, columns in _COLUMNS.items():
        if table in _ADDED and table not in tables:
            continue  # a manifest of an older flow; created on a writable open
        info = db.execute(f"PRAGMA table_info({table})").fetchall()
        if [(c[1], c[2].upper()) for c in info] != columns:
            raise sqlite3.DatabaseError(f"the {table} table is missing or has other columns")


def _check_not_truncated(path: str, db: sqlite3.Connection) -> None:
    """A file cut short still opens; its missing pages fail later. Catch it up front."""
    wal = path + "-wal"
    if os.path.exists(wal) and os.path.getsize(wal) > 0:
        return  # pages may legitimately live in the WAL
    size = os.path.getsize(path)
    if size == 0:
        return
    with open(path, "rb") as f:
        if f.read(16) != b"SQLite format 3\x00" or size < 100:  # 100: the header's length
            raise sqlite3.DatabaseError("file is not a database")
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    page_size = db.execute("PRAGMA page_size").fetchone()[0]
    if pages * page_size > size:
        raise sqlite3.DatabaseError("database file is truncated")


# -- permissions: a read-only database, and the -wal/-shm a read-only open leaves behind --------
def _check_writable(path: str) -> None:
    """Raise a ManifestError naming the fix when flow cannot write the database; repair the
    read-only -wal/-shm that SQLite leaves behind after a run on a read-only database."""
    if _writable(path) is False:
        raise ManifestError(
            f"cannot write {path}: it is read-only; make it writable "
            f"(chmod u+w {path}, or chattr -i {path} if it is immutable), or move it away "
            "to start afresh"
        )
    stale = [path + s for s in ("-wal", "-shm") if _writable(path + s) is False]
    if not stale:
        return
    holder = _shm_holder(path + "-shm")
    if holder is not None:
        who = f"process {holder}" if holder > 0 else "another process may"
        raise ManifestError(
            f"cannot write {stale[0]}: it is read-only and {who} has the manifest open; "
            f"let it finish, then run again (or remove {stale[0]} if nothing uses it)"
        )
    for side in stale:
        try:
            _make_writable_copy(side)
        except OSError as exc:
            raise ManifestError(
                f"cannot write {side}: it is read-only ({exc.strerror}); remove it, or "
                f"chattr -i {side} if it is immutable"
            ) from None


def _writable(path: str) -> bool | None:
    """Whether flow may open ``path`` for writing; None when it does not exist.

    Asked with access(), not by opening it: closing any descriptor of the file would drop the
    POSIX locks SQLite holds on it for another connection of this process.
    """
    if not os.path.lexists(path):
        return None
    return os.access(path, os.W_OK)


def _make_writable_copy(path: str) -> None:
    """Replace a read-only file by a writable copy of its bytes (a WAL holds committed pages)."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(path, "rb") as src:
        data = src.read()
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | getattr(os, "O_NOFOLLOW", 0), 0o644)
    try:
        os.write(fd, data)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def _shm_holder(shm: str) -> int | None:
    """The pid of another process with the database open (SQLite holds a read lock on a byte
    of the -shm file while it has it mapped), or None. Assumes a holder when it cannot tell."""
    try:
        import fcntl

        fd = os.open(shm, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except (ImportError, OSError):
        return -1
    try:
        # struct flock on Linux: l_type, l_whence (short), l_start, l_len (off_t), l_pid.
        query = struct.pack("hhqqi4x", fcntl.F_WRLCK, os.SEEK_SET, 120, 16, 0)
        answer = fcntl.fcntl(fd, fcntl.F_GETLK, query)
        kind, _, _, _, pid = struct.unpack("hhqqi4x", answer)
        return None if kind == fcntl.F_UNLCK else pid
    except (OSError, struct.error):
        return -1
    finally:
        os.close(fd)


# -- moving a damaged file aside, and transactions ---------------------------------------------
def move_aside(path: str) -> str:
    """Rename the database and its -wal/-shm to ``PATH.corrupt-<time>-<pid>``; return that."""
    aside = f"{path}.corrupt-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    n = 0
    while os.path.lexists(aside if not n else f"{aside}.{n}"):
        n += 1  # two recoveries within a second: keep both copies
    aside = aside if not n else f"{aside}.{n}"
    for suffix in ("", "-wal", "-shm"):
        with contextlib.suppress(FileNotFoundError):
            os.replace(path + suffix, aside + suffix)
    return aside


@contextlib.contextmanager
def transaction(db: sqlite3.Connection) -> Iterator[sqlite3.Connection]:
    db.execute("BEGIN IMMEDIATE")
    try:
        yield db
    except BaseException:
        db.execute("ROLLBACK")
        raise
    db.execute("COMMIT")


# -- names: file names need not be UTF-8 ---------------------------------------------------------
def to_db(name: str) -> str | bytes:
    """A name as stored: text when it is UTF-8, else its file-system bytes (a BLOB), so a
    non-UTF-8 file name (``caf\\udce9.txt`` from ``b"caf\\xe9.txt"``) round-trips."""
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:
        return os.fsencode(name)
    return name


def from_db(value: str | bytes) -> str:
    return value if type(value) is str else os.fsdecode(value)
