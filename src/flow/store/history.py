"""Run history in ``.flow/history.sqlite``: runs, their task graphs, and per-task states.

A file of its own rather than tables in the manifest: the visualiser reads it while builds
write the manifest, and history writes (batched by a background thread) never take the
manifest's write lock. It holds plain data only. A damaged history file is moved aside with a
warning: it is a log, never needed to decide anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import zlib
from typing import Any

from . import FLOW_DIR, HISTORY_NAME
from .database import move_aside
from .database import transaction as _transaction

DEFAULT_KEEP = 100  # runs kept; [tool.flow] history = N changes it
OUTPUT_TAIL = 4000  # characters of a failed task's output kept

_SCHEMA = """
CREATE TABLE IF NOT EXISTS runs (
    id INTEGER PRIMARY KEY AUTOINCREMENT, started REAL NOT NULL, finished REAL,
    status TEXT NOT NULL, pid INTEGER, graph TEXT, counts TEXT, roots TEXT, dashboard TEXT
);
CREATE TABLE IF NOT EXISTS graphs (sig TEXT PRIMARY KEY, tasks BLOB NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS tasks (
    run INTEGER NOT NULL, task TEXT NOT NULL, status TEXT NOT NULL, reason TEXT, detail TEXT,
    started REAL, finished REAL, message TEXT, progress REAL, output TEXT,
    PRIMARY KEY (run, task)
) WITHOUT ROWID;
"""
TASK_COLUMNS = (
    "task",
    "status",
    "reason",
    "detail",
    "started",
    "finished",
    "message",
    "progress",
    "output",
)


def history_path(directory: str = FLOW_DIR) -> str:
    return os.path.join(directory, HISTORY_NAME)


class HistoryWriter:
    """Writes one run's rows. Not thread-safe by itself: its caller serialises the calls."""

    def __init__(self, directory: str, keep: int = DEFAULT_KEEP) -> None:
        self.path = history_path(directory)
        self.keep = max(1, keep)
        self.warnings: list[str] = []
        os.makedirs(directory, exist_ok=True)
        self.db = self._open()

    def _open(self) -> sqlite3.Connection:
        try:
            return _connect_writable(self.path)
        except sqlite3.DatabaseError as exc:
            if isinstance(exc, sqlite3.OperationalError) and not _damaged(exc):
                raise  # locked, a full disk, an I/O error: the file is fine, this run is not
            aside = move_aside(self.path)
            self.warnings.append(
                f"the run history {self.path} was unreadable ({exc}); moved it to {aside} "
                "and started an empty one"
            )
            return _connect_writable(self.path)

    def start(self, started: float, roots: list[str], sig: str) -> int:
        """Insert a run row (its graph is stored by ``store_graph``); prune old runs."""
        with _transaction(self.db) as db:
            cur = db.execute(
                "INSERT INTO runs (started, status, pid, graph, roots) VALUES (?, ?, ?, ?, ?)",
                (started, "running", os.getpid(), sig, json.dumps(roots)),
            )
            run = int(cur.lastrowid or 0)
            self._prune(db, run)
        return run

    def store_graph(self, sig: str, graph: Any) -> None:
        """Store a run's graph (``graph()`` makes it) unless an earlier run stored the same one."""
        if self.db.execute("SELECT 1 FROM graphs WHERE sig = ?", (sig,)).fetchone() is not None:
            return
        blob = zlib.compress(json.dumps(graph()).encode(), 1)
        with _transaction(self.db) as db:
            db.execute("INSERT OR IGNORE INTO graphs VALUES (?, ?)", (sig, blob))

    def _prune(self, db: sqlite3.Connection, run: int) -> None:
        oldest = run - self.keep  # ids only grow (AUTOINCREMENT), so this is cheap to check
        if db.execute("SELECT 1 FROM runs WHERE id <= ? LIMIT 1", (oldest,)).fetchone() is None:
            return
        db.execute("DELETE FROM runs WHERE id <= ?", (oldest,))
        db.execute("DELETE FROM tasks WHERE run <= ?", (oldest,))
        db.execute("DELETE FROM graphs WHERE sig NOT IN (SELECT graph FROM runs)")

    def write(
        self,
        run: int,
        rows: list[tuple[Any, ...]],
        finish: tuple[str, float, dict[str, int]] | None = None,
        dashboard: str | None = None,
    ) -> None:
        """Upsert task rows (``TASK_COLUMNS`` order); with ``finish``, close the run."""
        with _transaction(self.db) as db:
            db.executemany(
                "INSERT OR REPLACE INTO tasks VALUES (?,?,?,?,?,?,?,?,?,?)",
                [(run, *map(_text, row)) for row in rows],
            )
            if dashboard is not None:
                db.execute("UPDATE runs SET dashboard = ? WHERE id = ?", (dashboard, run))
            if finish is not None:
                status, finished, counts = finish
                db.execute(
                    "UPDATE runs SET status = ?, finished = ?, counts = ? WHERE id = ?",
                    (status, finished, json.dumps(counts), run),
                )

    def durations(self) -> dict[str, tuple[str, float]]:
        """Task id -> (family, seconds of its last run)."""
        return _durations(self.db)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.db.close()


def _text(value: Any) -> Any:
    """A value as stored: a file name that is not UTF-8 (``caf\udce9``) is kept as the escape
    ``caf\\udce9`` (SQLite text must be UTF-8)."""
    if type(value) is str and not value.isascii():
        return value.encode("utf-8", "backslashreplace").decode("utf-8")
    return value


def _connect_writable(path: str) -> sqlite3.Connection:
    db = sqlite3.connect(path, timeout=30, isolation_level=None, check_same_thread=False)
    try:
        db.execute("PRAGMA busy_timeout = 30000")
        db.execute("PRAGMA journal_mode = WAL")
        # No fsync: the history is a log. A power cut may lose its last rows (or, rarely, damage
        # it: it is then moved aside); a build never waits on the disk for it.
        db.execute("PRAGMA synchronous = OFF")
        # In one transaction: a reader sees all the tables or none.
        db.executescript(f"BEGIN IMMEDIATE; {_SCHEMA} COMMIT;")
        return db
    except BaseException:
        db.close()
        raise


# -- reading (the visualiser, the ETA): read-only, short, never blocking a writer -------------
def _damaged(exc: sqlite3.OperationalError) -> bool:
    """An operational error that means the file itself is bad (not locked, not a full disk)."""
    text = str(exc)
    return any(m in text for m in ("malformed", "not a database", "no such", "has no column"))


def connect_readonly(directory: str = FLOW_DIR) -> sqlite3.Connection | None:
    """A read-only connection, or None when there is no history yet."""
    path = history_path(directory)
    if not os.path.isfile(path):
        return None
    from urllib.parse import quote

    db = sqlite3.connect(f"file:{quote(os.path.abspath(path))}?mode=ro", uri=True, timeout=5)
    db.execute("PRAGMA busy_timeout = 5000")
    if db.execute("SELECT 1 FROM sqlite_master WHERE name = 'runs'").fetchone() is None:
        db.close()  # the first run is creating it right now
        return None
    return db


def read_runs(db: sqlite3.Connection, limit: int = 200) -> list[dict[str, Any]]:
    """The runs, newest first: id, status, started, finished, counts (live runs counted now)."""
    rows = db.execute(
        "SELECT id, started, finished, status, pid, counts, graph FROM runs "
        "ORDER BY id DESC LIMIT ?",
        (limit,),
    ).fetchall()
    runs = []
    for rid, started, finished, status, pid, counts, _sig in rows:
        status = _live_status(status, pid)
        if counts is None:
            counts = json.dumps(_live_counts(db, rid))
        runs.append(
            {
                "id": rid,
                "status": status,
                "started": started,
                "finished": finished,
                "counts": json.loads(counts),
            }
        )
    return runs


def read_run(db: sqlite3.Connection, run_id: str) -> dict[str, Any] | None:
    """One run in SPEC §9's shape (``latest``: the newest), or None."""
    if run_id == "latest":
        row = db.execute(
            "SELECT id, started, finished, status, pid, graph, roots, dashboard FROM runs "
            "ORDER BY id DESC LIMIT 1"
        ).fetchone()
    elif run_id.isascii() and run_id.isdigit() and len(run_id) < 19:
        row = db.execute(
            "SELECT id, started, finished, status, pid, graph, roots, dashboard FROM runs "
            "WHERE id = ?",
            (int(run_id),),
        ).fetchone()
    else:
        return None
    if row is None:
        return None
    rid, started, finished, stored, pid, sig, roots, dashboard = row
    status = _live_status(stored, pid)
    blob = db.execute("SELECT tasks FROM graphs WHERE sig = ?", (sig,)).fetchone()
    graph = json.loads(zlib.decompress(blob[0])) if blob else []
    states = {
        r[0]: r
        for r in db.execute(f"SELECT {', '.join(TASK_COLUMNS)} FROM tasks WHERE run = ?", (rid,))
    }
    # A task with no row of its own was up to date, or not reached yet (a live or killed run:
    # an interrupted run that could say so wrote rows for the tasks it did not reach).
    default = "pending" if stored == "running" else "up-to-date"
    tasks = [_task_json(g, states.get(_text(g["task"])), default) for g in graph]
    return {
        "id": rid,
        "status": status,
        "started": started,
        "finished": finished,
        "roots": json.loads(roots or "[]"),
        "dashboard": dashboard,
        "tasks": tasks,
    }


def _task_json(g: dict[str, Any], row: Any, default: str) -> dict[str, Any]:
    if row is None:
        return {**g, "status": default, "reason": None, "detail": "", "duration": None,
                "message": None, "progress": None, "output": ""}  # fmt: skip
    _, status, reason, detail, started, finished, message, progress, output = row
    duration = None
    if started is not None and finished is not None:
        duration = round(max(0.0, finished - started), 4)
    return {
        **g,
        "status": status,
        "reason": reason,
        "detail": detail or "",
        "duration": duration,
        "started": started,
        "message": message,
        "progress": progress,
        "output": output or "",
    }


def _live_counts(db: sqlite3.Connection, rid: int) -> dict[str, int]:
    rows = db.execute("SELECT status, count(*) FROM tasks WHERE run = ? GROUP BY status", (rid,))
    return dict(rows.fetchall())


def _live_status(status: str, pid: int | None) -> str:
    """A run still marked running whose process is gone was killed: interrupted."""
    if status != "running" or not pid:
        return status
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "interrupted"
    except PermissionError:
        pass
    return status


def read_durations(directory: str = FLOW_DIR) -> dict[str, tuple[str, float]]:
    """Task id -> (family, seconds) from the history, or {} when there is none."""
    try:
        db = connect_readonly(directory)
        if db is None:
            return {}
        with contextlib.closing(db):
            return _durations(db)
    except sqlite3.Error:
        return {}


def _durations(db: sqlite3.Connection, runs: int = 20) -> dict[str, tuple[str, float]]:
    """Task id -> (family, seconds) of its latest successful run among the last ``runs`` runs."""
    rows = db.execute(
        "SELECT task, finished - started FROM tasks WHERE run > "
        "(SELECT coalesce(max(id), 0) FROM runs) - ? AND status = 'ran' "
        "AND started IS NOT NULL AND finished IS NOT NULL ORDER BY run",
        (runs,),
    ).fetchall()
    return {t: (t.split("(", 1)[0], max(0.0, secs)) for t, secs in rows}
