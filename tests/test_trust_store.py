"""Trusting the `.flow/` store: symlinks planted in it, non-UTF-8 file names, damaged rows and
schemas, and a read-only database. flow never writes through a link, never crashes on a name
or a row, and says how to fix what it cannot repair itself."""

from __future__ import annotations

import os
import re
import sqlite3
import subprocess
from pathlib import Path

import pytest

from conftest import DEADLINE, FLOW, immutable
from flow.store import in_store, store_dir

CHAIN = """
class Make(flow.Task):
    def output(self):
        return flow.LocalTarget("out/made.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("made")

class Use(flow.Task):
    def requires(self):
        return Make()
    def output(self):
        return flow.LocalTarget("out/used.txt")
    def run(self):
        with self.input().open() as fin, self.output().open("w") as fout:
            fout.write(fin.read().upper())
"""


def _built(project) -> Path:
    project.flowfile(CHAIN)
    proc = project.run("Use")
    assert proc.returncode == 0, proc.stderr
    return project.root / ".flow"


def _clean_error(proc, *words: str) -> None:
    assert proc.returncode == 2, (proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    for word in words:
        assert word in proc.stderr, proc.stderr


# -- item 2: symlinks in .flow/ -----------------------------------------------------------------
def _victim_db(path: Path) -> bytes:
    db = sqlite3.connect(path)
    db.execute("CREATE TABLE users (name TEXT)")
    db.execute("INSERT INTO users VALUES ('alice')")
    db.commit()
    db.close()
    return path.read_bytes()


@pytest.mark.parametrize(
    "name",
    [
        "manifest.sqlite",
        "manifest.sqlite-wal",
        "manifest.sqlite-shm",
        "manifest.sqlite-journal",
        "lock",
    ],
)
@pytest.mark.parametrize("dry", [False, True])
def test_a_symlink_in_the_store_is_refused_and_its_target_is_left_untouched(
    project, tmp_path, name, dry
):
    """A store file replaced by a link to someone's file (manifest.sqlite -> ~/app.db): exit 2
    naming the link and the fix, and the linked file keeps every byte."""
    store = _built(project)
    victim = tmp_path.parent / f"{tmp_path.name}-victim.db"
    before = _victim_db(victim)
    (store / name).unlink(missing_ok=True)
    (store / name).symlink_to(victim)
    (project.root / "out/made.txt").unlink()
    proc = project.run(*(["-n"] if dry else []), "Use")
    _clean_error(proc, f".flow/{name}", "symbolic link", "remove it")
    assert victim.read_bytes() == before
    assert not Path(f"{victim}-wal").exists() and not Path(f"{victim}-shm").exists()
    (store / name).unlink()
    assert project.run("Use").returncode == 0


def test_a_dangling_symlink_in_the_store_is_refused_not_created(project, tmp_path):
    """manifest.sqlite -> a path that does not exist yet: flow would create it; it refuses."""
    store = _built(project)
    target = tmp_path.parent / f"{tmp_path.name}-elsewhere.db"
    (store / "manifest.sqlite").unlink()
    (store / "manifest.sqlite").symlink_to(target)
    _clean_error(project.run("Use"), ".flow/manifest.sqlite", "remove it")
    assert not target.exists()


def test_a_symlinked_store_directory_is_refused(project, tmp_path):
    """.flow itself a link to another directory: exit 2, nothing is created there."""
    project.flowfile(CHAIN)
    elsewhere = tmp_path.parent / f"{tmp_path.name}-elsewhere"
    elsewhere.mkdir()
    (project.root / ".flow").symlink_to(elsewhere)
    for args in (["Use"], ["-n", "Use"]):
        _clean_error(project.run(*args), ".flow", "symbolic link", "remove it")
    assert list(elsewhere.iterdir()) == []
    assert not (project.root / "out").exists()


def test_a_symlinked_backup_directory_gets_no_backup_through_it(project, tmp_path):
    """.flow/backup -> another directory: refused before a hand-edited output is copied there."""
    store = _built(project)
    elsewhere = tmp_path.parent / f"{tmp_path.name}-backups"
    elsewhere.mkdir()
    (store / "backup").symlink_to(elsewhere, target_is_directory=True)
    (project.root / "out/used.txt").write_text("edited by hand")
    _clean_error(project.run("-B", "Use"), ".flow/backup", "remove it")
    assert list(elsewhere.iterdir()) == []
    assert project.read("out/used.txt") == "edited by hand"


def test_a_symlinked_completion_index_is_replaced_not_written_through(project, tmp_path):
    """.flow/completion.json -> a file elsewhere: completion works, the file is unchanged, and
    the index becomes flow's own regular file."""
    project.flowfile(CHAIN)
    (project.root / ".flow").mkdir()
    victim = tmp_path.parent / f"{tmp_path.name}-notes.json"
    victim.write_text('{"mine": true}')
    index = project.root / ".flow" / "completion.json"
    index.symlink_to(victim)
    env = {"_FLOW_COMPLETE": "bash_complete", "COMP_WORDS": "flow U", "COMP_CWORD": "1"}
    proc = project.run(env=env)
    assert "Use" in proc.stdout, proc.stderr
    assert victim.read_text() == '{"mine": true}'
    assert index.is_file() and not index.is_symlink()


@pytest.mark.parametrize("kind", ["fifo", "directory"])
@pytest.mark.parametrize("name", ["manifest.sqlite", "manifest.sqlite-wal", "lock"])
def test_a_store_file_that_is_a_fifo_or_a_directory_is_refused_without_hanging(project, kind, name):
    """A FIFO (reading it would block for ever) or a directory where flow keeps a file: exit 2
    naming it, promptly, for a run and a dry run."""
    store = _built(project)
    (store / name).unlink(missing_ok=True)
    if kind == "fifo":
        os.mkfifo(store / name)
    else:
        (store / name).mkdir()
    for args in (["Use"], ["-n", "Use"]):
        proc = project.run(*args, timeout=DEADLINE)  # a hang fails here; a loaded machine does not
        _clean_error(proc, f".flow/{name}", "remove it")


# -- item 13: non-UTF-8 file names --------------------------------------------------------------
LATIN1 = b"caf\xe9.txt"

FILES_AND_DIRECTORY = """
import os

class Concat(flow.Task):
    def requires(self):
        return flow.Files("data/*.txt")
    def output(self):
        return flow.LocalTarget(os.fsdecode(b"out/all-" + CAFE))
    def run(self):
        with self.output().open("wb") as out:
            for t in self.input():
                with open(t.path, "rb") as f:
                    out.write(f.read())

class Tree(flow.Task):
    def requires(self):
        return Concat()
    def output(self):
        return flow.LocalTarget("tree")
    def run(self):
        os.makedirs(os.fsencode("tree"), exist_ok=True)
        with open(self.input().path, "rb") as fin:
            data = fin.read()
        with open(os.path.join(b"tree", CAFE), "wb") as f:
            f.write(data)

class Leaf(flow.Task):
    def requires(self):
        return Tree()
    def output(self):
        return flow.LocalTarget("leaf.txt")
    def run(self):
        with open(os.path.join(b"tree", CAFE), "rb") as fin, self.output().open("wb") as out:
            out.write(fin.read() + b"!")
"""


def _run_bytes(project, io: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run flow with stdout/stderr encoded as ``io``, reading what it prints as bytes would
    show on a terminal."""
    return subprocess.run(
        [*FLOW, *args],
        cwd=project.root,
        capture_output=True,
        encoding="utf-8",
        errors="surrogateescape",
        env={**os.environ, "NO_COLOR": "1", "PYTHONIOENCODING": io},
        timeout=60,
    )


@pytest.mark.skipif(os.name != "posix", reason="file names as bytes are a POSIX matter")
@pytest.mark.parametrize("io", ["utf-8:surrogateescape", "utf-8:strict"])
def test_a_non_utf8_file_name_builds_stays_up_to_date_and_rebuilds_on_change(project, io):
    """b"caf\\xe9.txt" matched by flow.Files and inside a directory output: build, no-op, change
    -> rebuild, in a plan and a run, on a console that escapes such names or refuses them,
    never a UnicodeEncodeError."""
    project.flowfile(FILES_AND_DIRECTORY.replace("CAFE", repr(LATIN1)))
    (project.root / "data").mkdir()
    cafe = os.path.join(os.fsencode(project.root), b"data", LATIN1)
    with open(cafe, "wb") as f:
        f.write(b"one")
    first = _run_bytes(project, io, "Leaf")
    assert first.returncode == 0, first.stderr
    assert project.read("leaf.txt") == "one!"
    plan = _run_bytes(project, io, "-n", "Leaf")
    assert plan.returncode == 0 and "Traceback" not in plan.stderr, plan.stderr
    assert project.ran("Leaf") == []
    with open(cafe, "wb") as f:
        f.write(b"two")
    plan = _run_bytes(project, io, "-n", "Leaf")
    assert plan.returncode == 0 and "Traceback" not in plan.stderr, plan.stderr
    assert "Concat()" in plan.stdout and "data/caf" in plan.stdout
    assert project.ran("Leaf") == ["Concat()", "Tree()", "Leaf()"]
    assert project.read("leaf.txt") == "two!"
    assert project.ran("Leaf") == []
    # The name is kept as the file system's bytes, not as a mangled text.
    db = sqlite3.connect(project.root / ".flow/manifest.sqlite")
    keys = [k for (k,) in db.execute("SELECT path FROM files") if isinstance(k, bytes)]
    db.close()
    assert os.path.join(b"data", LATIN1) in keys
    # A run killed while writing the non-UTF-8 output leaves a journal row flow can read back.
    db = sqlite3.connect(project.root / ".flow/manifest.sqlite")
    key = os.path.join(b"out", b"all-" + LATIN1)
    assert db.execute("SELECT task_id FROM outputs WHERE key = ?", (key,)).fetchall() == [
        ("Concat()",)
    ]
    db.execute("INSERT INTO running VALUES (?, 'Concat()', ?, 'null', 1)", (key, key))
    db.commit()
    db.close()
    assert project.ran("Leaf") == ["Concat()"]


# -- item 14: a damaged row or schema is a damaged manifest ----------------------------------------
DAMAGE = {
    "bad-json-params": "UPDATE outputs SET params = '{not json'",
    "bad-json-inputs": "UPDATE outputs SET inputs = 'not json'",
    "params-null": "UPDATE outputs SET params = 'null'",
    "inputs-a-list": "UPDATE outputs SET inputs = '[1, 2]'",
    "version-not-a-number": "UPDATE meta SET value = 'one' WHERE key = 'schema_version'",
    "built-ns-text": "UPDATE outputs SET built_ns = 'yesterday'",
    "hash-a-blob": "UPDATE outputs SET hash = X'00ff'",
    "stat-size-text": "UPDATE files SET size = 'big'",
    "extra-column": "ALTER TABLE outputs ADD COLUMN extra TEXT",
    "column-retyped": "DROP TABLE files; CREATE TABLE files (path TEXT PRIMARY KEY, size TEXT, "
    "mtime_ns TEXT, ctime_ns TEXT, ino TEXT, hash BLOB, checked_ns TEXT)",
    "dropped-outputs": "DROP TABLE outputs",
    "dropped-files": "DROP TABLE files",
    "dropped-meta": "DROP TABLE meta",
    "journal-bad-json": "INSERT INTO running VALUES ('out/made.txt', 'Make()', 'out/made.txt', "
    "'{oops', 1)",
    # (A journal row's snapshot is the target's own opaque JSON: any JSON value is valid.)
}


def _damage(store: Path, sql: str) -> None:
    db = sqlite3.connect(store / "manifest.sqlite")
    db.executescript(sql)
    db.close()


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_a_damaged_row_or_schema_is_moved_aside_with_a_warning_never_a_traceback(project, damage):
    """One bad row, a reshaped table or a dropped one: `flow -n` warns and plans as if the
    manifest were empty; a run warns, moves it aside, adopts the outputs and exits 0."""
    store = _built(project)
    _damage(store, DAMAGE[damage])
    plan = project.run("-n", "Use")
    assert plan.returncode == 0, plan.stderr
    assert "Traceback" not in plan.stderr and "warning" in plan.stderr, plan.stderr
    assert not list(store.glob("*.corrupt-*"))  # a dry run moves nothing
    proc = project.run("Use")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr and "moved it to" in proc.stderr, proc.stderr
    assert list(store.glob("manifest.sqlite.corrupt-*"))
    assert project.read("out/used.txt") == "MADE"
    again = project.run("Use")
    assert again.returncode == 0 and "warning" not in again.stderr, again.stderr
    assert project.ran("Use") == []


# -- item 16: a read-only manifest ---------------------------------------------------------------
def test_a_read_only_manifest_is_a_clear_error_naming_the_file_and_the_fix(project):
    """manifest.sqlite read-only (chattr +i, or mode 0444): a run exits 2 naming the file and
    how to make it writable; -n still plans; once fixed, the next run works."""
    store = _built(project)
    (project.root / "out/made.txt").unlink()
    undo = immutable(store / "manifest.sqlite")
    try:
        proc = project.run("Use")
        plan = project.run("-n", "Use")
    finally:
        undo()
    _clean_error(proc, ".flow/manifest.sqlite", "writable")
    assert not (project.root / "out/made.txt").exists()
    assert plan.returncode == 0 and "Make()" in plan.stdout, plan.stderr
    assert project.run("Use").returncode == 0
    assert project.ran("Use") == []


@pytest.mark.parametrize("side", ["-wal", "-shm"])
def test_an_unrepairable_read_only_wal_or_shm_is_a_clear_error(project, side):
    """A -wal/-shm flow can neither write nor replace (immutable): exit 2 naming it."""
    store = _built(project)
    path = store / f"manifest.sqlite{side}"
    path.write_bytes(b"")
    undo = immutable(path)
    try:
        proc = project.run("Use")
    finally:
        undo()
    _clean_error(proc, f".flow/manifest.sqlite{side}")
    path.unlink()
    assert project.run("Use").returncode == 0


def test_a_stale_read_only_wal_and_shm_are_replaced_by_writable_copies(tmp_path, monkeypatch):
    """-wal/-shm left mode 0444 by a run on a read-only database (SQLite copies the mode), with
    no process using them: flow replaces them by writable copies and keeps committed rows."""
    from flow.store import database
    from flow.store.records import Manifest, Record

    directory = tmp_path / ".flow"
    m = Manifest(str(directory))
    m.save([Record("out/a.txt", "A()", "A", {}, "c", {}, "h")])
    # Keep a second connection open so the WAL and -shm outlive the manifest's close.
    holder = sqlite3.connect(directory / "manifest.sqlite")
    holder.execute("SELECT * FROM outputs").fetchall()
    m.close()
    sides = [directory / f"manifest.sqlite{s}" for s in ("-wal", "-shm")]
    wal_bytes = sides[0].read_bytes()
    holder.close()
    for side, data in zip(sides, (wal_bytes, b""), strict=True):
        side.write_bytes(data)
        side.chmod(0o444)
    # Root may write a 0444 file: tell flow what an ordinary user's open would say.
    real = database._writable
    monkeypatch.setattr(
        database,
        "_writable",
        lambda p: False if os.stat(p).st_mode & 0o200 == 0 else real(p),
    )
    again = Manifest(str(directory))
    try:
        assert again.get("out/a.txt") is not None
        assert again.warnings == []
    finally:
        again.close()
    for side in sides:
        assert not side.exists() or side.stat().st_mode & 0o200


# -- the store's layout is asked of the store ----------------------------------------------------
def test_only_the_store_spells_the_name_of_its_directory():
    """`.flow` is spelled in flow/store/ alone; every other module asks it (in_store, store_dir)."""
    src = Path(__file__).resolve().parent.parent / "src" / "flow"
    spelled = [
        str(p.relative_to(src))
        for p in src.rglob("*.py")
        if "store" not in p.relative_to(src).parts
        and re.search(r"[\"']\.flow[\"'/]", p.read_text())
    ]
    assert spelled == []
    assert in_store(".flow/manifest.sqlite") and in_store(".flow")
    assert not in_store("out/.flow") and not in_store(".flowers/x")
    assert store_dir("/p") == os.path.join("/p", ".flow")
