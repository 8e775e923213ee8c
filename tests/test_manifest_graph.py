"""The graph (expand, dedupe, cycles, order), the `.flow/` manifest, and fingerprints (SPEC §1, §3)."""

from __future__ import annotations

import dataclasses
import importlib.util
import itertools
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import flow
from flow.codehash import CodeHasher
from flow.errors import GraphError, ManifestError
from flow.fingerprint import Fingerprinter, StatRecord, hash_file
from flow.graph import build_graph
from flow.store.records import Manifest, Record

# -- graph ------------------------------------------------------------------------------------


class DiamondBase(flow.Task):
    def output(self):
        return flow.LocalTarget("diamond/base.txt")


class DiamondLeft(flow.Task):
    def requires(self):
        return DiamondBase()

    def output(self):
        return flow.LocalTarget("diamond/left.txt")


class DiamondRight(flow.Task):
    def requires(self):
        return [DiamondBase(), DiamondBase()]

    def output(self):
        return flow.LocalTarget("diamond/right.txt")


class DiamondTop(flow.Task):
    def requires(self):
        return {"l": DiamondLeft(), "r": DiamondRight()}


def test_graph_deduplicates_tasks_by_id_and_orders_upstream_first():
    graph = build_graph([DiamondTop(), DiamondLeft()])
    assert sorted(graph.tasks) == [
        "DiamondBase()",
        "DiamondLeft()",
        "DiamondRight()",
        "DiamondTop()",
    ]
    assert graph.deps["DiamondRight()"] == ["DiamondBase()"]
    assert graph.roots == ["DiamondTop()", "DiamondLeft()"]
    order = graph.order
    assert len(order) == 4
    assert order[0] == "DiamondBase()"
    assert order[-1] == "DiamondTop()"


def test_graph_deduplicates_equal_tasks_that_are_distinct_objects():
    class DedupeLeaf(flow.Task):
        n = flow.IntParameter()
        note = flow.Parameter(default="", significant=False)

    class DedupeRoot(flow.Task):
        def requires(self):
            return [DedupeLeaf(1, "a"), DedupeLeaf(1, "b")]

    assert DedupeLeaf(1, "a") is not DedupeLeaf(1, "b")
    graph = build_graph([DedupeRoot()])
    assert sorted(graph.tasks) == ["DedupeLeaf(n=1)", "DedupeRoot()"]
    assert graph.deps["DedupeRoot()"] == ["DedupeLeaf(n=1)"]


class Step(flow.Task):
    """A link of a long chain: Step(k) requires Step(k-1)."""

    k = flow.IntParameter()
    ran: list[int] = []

    def requires(self):
        return Step(self.k - 1) if self.k > 0 else None

    def run(self):
        Step.ran.append(self.k)


DEPTH = 10_000


def test_ten_thousand_deep_chain_expands_and_orders_without_recursion_error():
    assert sys.getrecursionlimit() == 1000
    graph = build_graph([Step(DEPTH)])
    assert len(graph.tasks) == DEPTH + 1
    assert graph.order[0] == "Step(k=0)"
    assert graph.order[-1] == f"Step(k={DEPTH})"
    assert graph.order == [f"Step(k={k})" for k in range(DEPTH + 1)]
    assert sys.getrecursionlimit() == 1000


def test_ten_thousand_deep_chain_builds_without_recursion_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Step.ran.clear()
    assert sys.getrecursionlimit() == 1000
    result = flow.build([Step(DEPTH)])
    assert result
    assert Step.ran == list(range(DEPTH + 1))
    assert sys.getrecursionlimit() == 1000


class ChainFile(flow.Task):
    """A long chain whose links have file outputs and records in the manifest."""

    k = flow.IntParameter()

    def requires(self):
        return ChainFile(self.k - 1) if self.k > 0 else None

    def output(self):
        return flow.LocalTarget(f"chain/{self.k}.txt")

    def run(self):
        with self.output().open("w") as f:
            f.write(str(self.k))


def test_two_thousand_deep_chain_of_files_builds_then_is_up_to_date(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    depth = 2_000
    first = flow.build([ChainFile(depth)])
    assert first
    assert len(first.ran) == depth + 1
    second = flow.build([ChainFile(depth)])
    assert second
    assert second.ran == []
    assert sys.getrecursionlimit() == 1000


def test_cycle_raises_graph_error_naming_the_tasks():
    class CycleA(flow.Task):
        def requires(self):
            return CycleB()

    class CycleB(flow.Task):
        def requires(self):
            return CycleC()

    class CycleC(flow.Task):
        def requires(self):
            return CycleA()

    with pytest.raises(GraphError) as info:
        build_graph([CycleA()])
    message = str(info.value)
    for name in ("CycleA()", "CycleB()", "CycleC()"):
        assert name in message
    # The path reads the way requires() does: each task requires the next.
    assert "CycleA() -> CycleB() -> CycleC() -> CycleA()" in message


def test_self_requirement_is_a_cycle():
    class SelfCycle(flow.Task):
        def requires(self):
            return self

    with pytest.raises(GraphError) as info:
        build_graph([SelfCycle()])
    assert "SelfCycle()" in str(info.value)


def test_cycle_through_flow_build_raises_graph_error(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    class BuildCycleA(flow.Task):
        def requires(self):
            return BuildCycleB()

    class BuildCycleB(flow.Task):
        def requires(self):
            return BuildCycleA()

    with pytest.raises(GraphError) as info:
        flow.build([BuildCycleA()])
    assert "BuildCycleA()" in str(info.value) and "BuildCycleB()" in str(info.value)


def test_two_tasks_declaring_one_output_raise_graph_error_naming_both():
    class ClashOne(flow.Task):
        def output(self):
            return flow.LocalTarget("out/same.txt")

    class ClashTwo(flow.Task):
        def output(self):
            return flow.LocalTarget("./out/same.txt")

    class ClashRoot(flow.WrapperTask):
        def requires(self):
            return [ClashOne(), ClashTwo()]

    with pytest.raises(GraphError) as info:
        build_graph([ClashRoot()])
    message = str(info.value)
    assert "ClashOne()" in message
    assert "ClashTwo()" in message
    assert "out/same.txt" in message


def test_requires_returning_a_non_task_is_a_graph_error():
    class BadRequires(flow.Task):
        def requires(self):
            return ["not a task"]

    with pytest.raises(GraphError) as info:
        build_graph([BadRequires()])
    assert "BadRequires()" in str(info.value)


def test_requires_raising_is_a_graph_error_naming_the_task():
    class RaisingRequires(flow.Task):
        def requires(self):
            raise KeyError("oops")

    with pytest.raises(GraphError) as info:
        build_graph([RaisingRequires()])
    assert "RaisingRequires()" in str(info.value)


# -- manifest ---------------------------------------------------------------------------------


def make_record(key: str, i: int = 0) -> Record:
    return Record(
        key=key,
        task_id=f"Make(n={i})",
        family="Make",
        params={"n": str(i), "label": "ünïcode → ok"},
        code=f"code{i:04d}" * 4,
        inputs={"in/a.txt": "h" * 32, "in/missing.txt": None},
        hash="f" * 32,
        built_ns=1_700_000_000_000_000_000 + i,
    )


def make_stat(i: int = 0) -> StatRecord:
    return StatRecord(
        size=100 + i,
        mtime_ns=1_700_000_000_123_456_789 + i,
        ctime_ns=1_700_000_001_000_000_000 + i,
        ino=424242 + i,
        hash="a" * 32,
        checked_ns=1_700_000_002_000_000_000 + i,
    )


def test_manifest_records_round_trip(tmp_path):
    m = Manifest(str(tmp_path / ".flow"))
    rec = make_record("out/a.txt", 1)
    m.save([rec])
    assert m.get("out/a.txt") == rec
    assert m.get("out/other.txt") is None
    m.close()
    again = Manifest(str(tmp_path / ".flow"))
    assert again.get("out/a.txt") == rec
    assert again.warnings == []
    again.close()


def test_manifest_tells_a_commit_by_another_process_from_its_own(tmp_path):
    """The executor re-decides a task after taking its lock only when another flow has written
    the manifest since this one opened it: its own writes do not count, another's do, for good."""
    m = Manifest(str(tmp_path / ".flow"))
    m.save([make_record("out/a.txt", 1)])
    m.begin("T()", {"out/b.txt": ("out/b.txt", None)})
    assert not m.others_committed()
    other = Manifest(str(tmp_path / ".flow"))
    other.save([make_record("out/c.txt", 2)])
    other.close()
    assert m.others_committed()
    m.save([make_record("out/a.txt", 3)])
    assert m.others_committed()  # sticky: verdicts made before may be stale
    m.close()


def _other_process_sees(directory: Path, key: str) -> tuple[bool, bool]:
    """(has a record of ``key``, could take its lock), asked by another process: fcntl locks
    belong to a process, so this one would always get its own."""
    code = (
        "import sys; from flow.store.records import Manifest; "
        "m = Manifest(sys.argv[1], readonly=True); "
        "print(m.get(sys.argv[2]) is not None, m.locks.probe(sys.argv[2]))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(directory), key], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    recorded, free = out.stdout.split()
    return recorded == "True", free == "True"


def test_deferred_records_are_read_back_at_once_and_committed_with_the_next_write(tmp_path):
    """A finished task's record shares the next task's journal commit; until then this process
    reads it, other processes do not, and the task's locks stay held for them."""
    directory = tmp_path / ".flow"
    m = Manifest(str(directory))
    m.begin("A()", {"out/a.txt": ("out/a.txt", None)})
    assert m.locks.acquire(["out/a.txt"])
    m.save([make_record("out/a.txt", 1)], finished=["out/a.txt"], defer=True)
    m.release_when_saved(["out/a.txt"])
    assert m.get("out/a.txt") == make_record("out/a.txt", 1)
    assert _other_process_sees(directory, "out/a.txt") == (False, False)
    m.begin("B()", {"out/b.txt": ("out/b.txt", None)})  # one commit: A's record, B's journal
    assert _other_process_sees(directory, "out/a.txt") == (True, True)
    m.save([make_record("out/b.txt", 2)], finished=["out/b.txt"], defer=True)
    m.close()  # closing commits what is held
    again = Manifest(str(directory))
    assert again.get("out/a.txt") == make_record("out/a.txt", 1)
    assert again.get("out/b.txt") == make_record("out/b.txt", 2)
    assert again.unfinished == {}  # each journal row went with its task's record
    again.close()


def test_manifest_save_replaces_the_record_of_an_output(tmp_path):
    m = Manifest(str(tmp_path / ".flow"))
    m.save([make_record("out/a.txt", 1)])
    m.save([make_record("out/a.txt", 2)])
    assert m.get("out/a.txt") == make_record("out/a.txt", 2)
    m.close()


def test_manifest_record_with_no_hash_round_trips(tmp_path):
    m = Manifest(str(tmp_path / ".flow"))
    rec = dataclasses.replace(make_record("remote://x"), hash=None, inputs={})
    m.save([rec])
    assert m.get("remote://x") == rec
    m.close()


def test_manifest_stat_records_round_trip(tmp_path):
    m = Manifest(str(tmp_path / ".flow"))
    stat = make_stat(3)
    m.save(stats={"src/a.c": stat})
    assert m.get_stat("src/a.c") == stat
    assert m.get_stat("src/b.c") is None
    m.close()
    again = Manifest(str(tmp_path / ".flow"))
    assert again.get_stat("src/a.c") == stat
    again.close()


def test_manifest_forget_drops_records(tmp_path):
    m = Manifest(str(tmp_path / ".flow"))
    m.save([make_record("a"), make_record("b")])
    m.forget(["a"])
    assert m.get("a") is None
    assert m.get("b") is not None
    m.close()


def test_manifest_is_sqlite_in_wal_mode(tmp_path):
    m = Manifest(str(tmp_path / ".flow"))
    m.save([make_record("a")])
    db = sqlite3.connect(m.path)
    assert db.execute("PRAGMA journal_mode").fetchone()[0].lower() == "wal"
    db.close()
    m.close()


def _real_manifest(directory: Path, n: int = 300) -> bytes:
    """A manifest of several pages, checkpointed into its main file; returns its bytes."""
    m = Manifest(str(directory))
    m.save(
        [make_record(f"out/file_{i:04d}.txt", i) for i in range(n)],
        stats={f"src/f{i}.c": make_stat(i) for i in range(n)},
    )
    m.close()
    db = sqlite3.connect(directory / "manifest.sqlite")
    db.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    db.execute("PRAGMA journal_mode = DELETE")
    db.close()
    for suffix in ("-wal", "-shm"):
        with_suffix = directory / f"manifest.sqlite{suffix}"
        if with_suffix.exists():
            with_suffix.unlink()
    return (directory / "manifest.sqlite").read_bytes()


def test_truncated_manifest_is_always_recovered_and_usable(tmp_path):
    source = tmp_path / "source"
    data = _real_manifest(source)
    assert len(data) > 8 * 4096
    offsets = sorted(
        set(range(512, len(data), 512))
        | {2, 7, 16, 50, 99, 100, 101, 1000, 4095, 4097, 5000, len(data) - 1}
    )
    not_recovered = []
    for i, offset in enumerate(offsets):
        directory = tmp_path / f"cut{i}"
        directory.mkdir()
        (directory / "manifest.sqlite").write_bytes(data[:offset])
        m = Manifest(str(directory))  # must never raise
        try:
            m.get("out/file_0001.txt")
            m.get_stat("src/f1.c")
            if not m.warnings:
                not_recovered.append(offset)
                continue
            assert any("manifest" in w for w in m.warnings)
            aside = [p for p in os.listdir(directory) if ".corrupt" in p]
            assert aside, f"offset {offset}: nothing moved aside: {os.listdir(directory)}"
            rec = make_record("out/after.txt", 9)
            m.save([rec], stats={"src/after.c": make_stat(9)})
            assert m.get("out/after.txt") == rec
            assert m.get_stat("src/after.c") == make_stat(9)
            assert m.get("out/file_0001.txt") is None  # the new store starts empty
        finally:
            m.close()
    assert not_recovered == [], (
        f"truncated manifests read without a warning at offsets {not_recovered}"
    )


def test_manifest_truncated_to_one_byte_is_moved_aside_with_a_warning(tmp_path):
    data = _real_manifest(tmp_path / "source")
    directory = tmp_path / ".flow"
    directory.mkdir()
    (directory / "manifest.sqlite").write_bytes(data[:1])
    m = Manifest(str(directory))
    try:
        assert m.get("out/file_0001.txt") is None
        assert m.warnings, "a one-byte manifest was silently reused as a new database"
        assert [p for p in os.listdir(directory) if ".corrupt" in p]
        m.save([make_record("x")])
        assert m.get("x") == make_record("x")
    finally:
        m.close()


def test_garbage_manifest_is_moved_aside_with_a_warning(tmp_path):
    directory = tmp_path / ".flow"
    directory.mkdir()
    (directory / "manifest.sqlite").write_bytes(b"this is not a database at all\n" * 200)
    m = Manifest(str(directory))
    assert len(m.warnings) == 1
    assert "moved" in m.warnings[0]
    m.save([make_record("x")])
    assert m.get("x") == make_record("x")
    m.close()


def test_corrupt_manifest_in_flow_build_warns_and_build_continues(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".flow").mkdir()
    (tmp_path / ".flow" / "manifest.sqlite").write_bytes(b"\x00garbage" * 1000)

    class AfterCorruptManifest(flow.Task):
        def output(self):
            return flow.LocalTarget("made.txt")

        def run(self):
            self.output().open("w").close()

    assert flow.build([AfterCorruptManifest()])
    assert (tmp_path / "made.txt").exists()
    assert any(".corrupt" in p for p in os.listdir(tmp_path / ".flow"))


def test_readonly_manifest_reports_a_corrupt_database_without_moving_it(tmp_path):
    directory = tmp_path / ".flow"
    directory.mkdir()
    (directory / "manifest.sqlite").write_bytes(b"garbage" * 1000)
    m = Manifest(str(directory), readonly=True)
    assert m.get("x") is None
    assert m.warnings
    m.close()
    assert os.listdir(directory) == ["manifest.sqlite"]


def test_manifest_from_a_newer_flow_raises_manifest_error_with_advice(tmp_path):
    directory = tmp_path / ".flow"
    Manifest(str(directory)).close()
    db = sqlite3.connect(directory / "manifest.sqlite")
    db.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    db.commit()
    db.close()
    with pytest.raises(ManifestError) as info:
        Manifest(str(directory))
    message = str(info.value)
    assert "999" in message
    assert "upgrade flow" in message
    assert any(str(p) in message for p in (directory, directory / "manifest.sqlite"))
    # The newer store is left alone, not "recovered" away.
    assert sorted(p for p in os.listdir(directory) if ".corrupt" in p) == []


def test_readonly_manifest_creates_nothing_on_disk(tmp_path):
    directory = tmp_path / ".flow"
    m = Manifest(str(directory), readonly=True)
    assert m.get("out/a.txt") is None
    assert m.get_stat("src/a.c") is None
    m.save([make_record("out/a.txt")], stats={"src/a.c": make_stat()})
    m.forget(["out/a.txt"])
    m.close()
    assert list(tmp_path.iterdir()) == []


def test_readonly_manifest_reads_an_existing_store_without_writing_it(tmp_path):
    directory = tmp_path / ".flow"
    writer = Manifest(str(directory))
    writer.save([make_record("out/a.txt")])
    writer.close()
    before = {p: (directory / p).read_bytes() for p in os.listdir(directory)}
    m = Manifest(str(directory), readonly=True)
    assert m.get("out/a.txt") == make_record("out/a.txt")
    m.save([make_record("out/b.txt")])
    m.close()
    assert Manifest(str(directory), readonly=True).get("out/b.txt") is None
    after = {p: (directory / p).read_bytes() for p in os.listdir(directory)}
    assert after["manifest.sqlite"] == before["manifest.sqlite"]


# -- code hashes ------------------------------------------------------------------------------

_module_names = itertools.count()


def load_module(root: Path, source: str):
    """Write a module into root under a unique name and import it (kept in sys.modules)."""
    name = f"codehash_mod_{os.getpid()}_{next(_module_names)}"
    path = root / f"{name}.py"
    path.write_text(textwrap.dedent(source))
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def code_hash(root: Path, source: str, cls: str = "Made") -> list[tuple[str, str]]:
    """The code map of class ``cls`` in a fresh module with ``source``, by a fresh hasher."""
    module = load_module(root, source)
    return code_parts(CodeHasher(str(root))(getattr(module, cls)))


def code_parts(code: str) -> list[tuple[str, str]]:
    """A code map's (name, hash) pairs without the file names (each module here is new)."""
    doc = json.loads(code)
    return sorted((n, h) for f, names in doc.items() if f for n, h in names.items())


BASE_SOURCE = """
import flow

class Made(flow.Task):
    n = flow.IntParameter(default=1)

    def run(self):
        x = self.n + 1
        return x
"""


def test_code_hash_is_stable_for_identical_source(tmp_path):
    assert code_hash(tmp_path, BASE_SOURCE) == code_hash(tmp_path, BASE_SOURCE)


def test_comments_blank_lines_and_docstrings_do_not_change_the_code_hash(tmp_path):
    edited = '''
    """A module docstring."""
    import flow


    class Made(flow.Task):
        """Now with a docstring."""

        n = flow.IntParameter(default=1)   # a comment

        def run(self):
            """And a method docstring."""
            # a comment line

            x = self.n + 1

            return x
    '''
    assert code_hash(tmp_path, BASE_SOURCE) == code_hash(tmp_path, edited)


def test_a_body_change_alters_the_code_hash(tmp_path):
    edited = BASE_SOURCE.replace("self.n + 1", "self.n + 2")
    assert edited != BASE_SOURCE
    assert code_hash(tmp_path, BASE_SOURCE) != code_hash(tmp_path, edited)


def test_a_version_attribute_change_alters_the_code_hash(tmp_path):
    v1 = BASE_SOURCE.replace("n = flow", "version = 1\n    n = flow")
    v2 = BASE_SOURCE.replace("n = flow", "version = 2\n    n = flow")
    assert code_hash(tmp_path, v1) != code_hash(tmp_path, v2)
    assert code_hash(tmp_path, v1) == code_hash(tmp_path, v1)


def test_a_change_in_a_project_base_class_alters_the_subclass_hash(tmp_path):
    template = """
    import flow

    class ProjectBase(flow.Task):
        def helper(self):
            return {value}

    class Made(ProjectBase):
        def run(self):
            return self.helper()
    """
    one = code_hash(tmp_path, template.format(value=1))
    two = code_hash(tmp_path, template.format(value=2))
    assert one != two


def test_a_change_in_a_base_class_in_another_project_module_alters_the_subclass_hash(
    tmp_path, monkeypatch
):
    monkeypatch.syspath_prepend(str(tmp_path))
    hashes = []
    for value in (1, 2):
        base = load_module(
            tmp_path,
            f"""
        import flow

        class SharedBase(flow.Task):
            def helper(self):
                return {value}
        """,
        )
        sub = load_module(
            tmp_path,
            f"""
        from {base.__name__} import SharedBase

        class Made(SharedBase):
            def run(self):
                return self.helper()
        """,
        )
        hashes.append(code_parts(CodeHasher(str(tmp_path))(sub.Made)))
    assert hashes[0] != hashes[1]


def test_flow_own_base_classes_do_not_count_in_the_code_hash(tmp_path):
    hasher = CodeHasher(str(tmp_path))
    # flow.Task, WrapperTask and ExternalTask differ in code; none of it is the project's.
    assert hasher(flow.Task) == hasher(flow.WrapperTask) == hasher(flow.ExternalTask)
    assert not hasher.is_project_file(flow.__file__)
    module = load_module(tmp_path, BASE_SOURCE)
    assert hasher.is_project_file(module.__file__)


def test_classes_outside_the_project_root_do_not_count(tmp_path):
    outside = tmp_path / "lib"
    project = tmp_path / "project"
    outside.mkdir()
    project.mkdir()
    hashes = []
    for value in (1, 2):
        base = load_module(
            outside,
            f"""
        import flow

        class LibraryBase(flow.Task):
            def helper(self):
                return {value}
        """,
        )
        sys.modules["codehash_library_base"] = base
        sub = load_module(
            project,
            """
        import codehash_library_base

        class Made(codehash_library_base.LibraryBase):
            def run(self):
                return self.helper()
        """,
        )
        hashes.append(code_parts(CodeHasher(str(project))(sub.Made)))
    del sys.modules["codehash_library_base"]
    assert hashes[0] == hashes[1]


# -- content fingerprints ---------------------------------------------------------------------


def no_cache(path: str) -> None:
    return None


def test_same_content_gives_the_same_hash_and_different_content_differs(tmp_path):
    (tmp_path / "a").write_bytes(b"same bytes")
    (tmp_path / "b").write_bytes(b"same bytes")
    (tmp_path / "c").write_bytes(b"other byte")
    fp = Fingerprinter(no_cache)
    assert fp.file(str(tmp_path / "a")) == fp.file(str(tmp_path / "b"))
    assert fp.file(str(tmp_path / "a")) != fp.file(str(tmp_path / "c"))
    assert Fingerprinter(no_cache).file(str(tmp_path / "a")) == hash_file(str(tmp_path / "b"))


def test_missing_file_has_no_fingerprint(tmp_path):
    assert Fingerprinter(no_cache).file(str(tmp_path / "nope")) is None


def test_hashing_a_file_produces_a_stat_record_for_the_cache(tmp_path):
    path = tmp_path / "a"
    path.write_bytes(b"content")
    fp = Fingerprinter(no_cache)
    digest = fp.file(str(path))
    rec = fp.updates[str(path)]
    st = os.stat(path)
    assert (rec.size, rec.mtime_ns, rec.ctime_ns, rec.ino, rec.hash) == (
        st.st_size,
        st.st_mtime_ns,
        st.st_ctime_ns,
        st.st_ino,
        digest,
    )


def _aged(rec: StatRecord) -> StatRecord:
    """The same record as if the file had been hashed long after it was last written."""
    return dataclasses.replace(rec, checked_ns=max(rec.mtime_ns, rec.ctime_ns) + 60 * 10**9)


def test_an_unchanged_file_outside_the_racy_window_is_served_from_the_stat_cache(tmp_path):
    path = tmp_path / "a"
    path.write_bytes(b"content")
    first = Fingerprinter(no_cache)
    first.file(str(path))
    cached = dataclasses.replace(_aged(first.updates[str(path)]), hash="from-the-cache")
    second = Fingerprinter(lambda p: cached if p == str(path) else None)
    assert second.file(str(path)) == "from-the-cache"
    assert second.updates == {}


def test_same_size_same_mtime_rewrite_is_caught(tmp_path):
    path = tmp_path / "a"
    path.write_bytes(b"aaaa")
    first = Fingerprinter(no_cache)
    old = first.file(str(path))
    rec = _aged(first.updates[str(path)])
    st = os.stat(path)
    time.sleep(0.01)
    path.write_bytes(b"bbbb")  # same size
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # and the same mtime
    now = os.stat(path)
    assert (now.st_size, now.st_mtime_ns) == (rec.size, rec.mtime_ns)
    second = Fingerprinter(lambda p: rec if p == str(path) else None)
    new = second.file(str(path))
    assert new != old
    assert new == hash_file(str(path))


def test_same_size_same_mtime_replacement_by_another_inode_is_caught(tmp_path):
    path = tmp_path / "a"
    path.write_bytes(b"aaaa")
    first = Fingerprinter(no_cache)
    old = first.file(str(path))
    rec = _aged(first.updates[str(path)])
    st = os.stat(path)
    other = tmp_path / "other"
    other.write_bytes(b"cccc")
    os.utime(other, ns=(st.st_atime_ns, st.st_mtime_ns))
    os.replace(other, path)
    second = Fingerprinter(lambda p: rec if p == str(path) else None)
    assert second.file(str(path)) != old
    assert second.file(str(path)) == hash_file(str(path))


def test_a_file_hashed_within_the_racy_window_is_rehashed(tmp_path):
    path = tmp_path / "a"
    path.write_bytes(b"content")
    first = Fingerprinter(no_cache)
    real = first.file(str(path))
    rec = first.updates[str(path)]
    # Hashed in the same instant the file was written: its stat may not change on the next write.
    racy = dataclasses.replace(rec, hash="stale-hash", checked_ns=max(rec.mtime_ns, rec.ctime_ns))
    assert os.stat(path).st_mtime_ns == racy.mtime_ns
    second = Fingerprinter(lambda p: racy if p == str(path) else None)
    assert second.file(str(path)) == real
    assert str(path) in second.updates


@pytest.mark.parametrize(
    "mtime_ns, age_ms, trusted",
    [
        (1_700_000_000_123_456_789, 50, False),  # fine timestamps: 0.1 s window
        (1_700_000_000_123_456_789, 150, True),
        (1_700_000_000_000_000_000, 1500, False),  # whole seconds: a coarse FS, 2 s window
        (1_700_000_000_000_000_000, 2500, True),
    ],
)
def test_the_racy_window_follows_the_timestamp_granularity(tmp_path, mtime_ns, age_ms, trusted):
    """A cache entry taken age_ms after the file's last change is trusted only outside the
    window: 0.1 s where mtimes have sub-second digits, 2 s where they are whole seconds."""
    path = tmp_path / "a"
    path.write_bytes(b"content")
    os.utime(path, ns=(mtime_ns, mtime_ns))
    st = os.stat(path)
    rec = StatRecord(
        st.st_size,
        st.st_mtime_ns,
        st.st_ctime_ns,
        st.st_ino,
        "cached",
        max(st.st_mtime_ns, st.st_ctime_ns) + age_ms * 1_000_000,
    )
    assert rec.matches(st) is trusted


def test_fingerprinter_target_hashes_local_targets_by_content(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("x.txt").write_text("hello")
    Path("y.txt").write_text("hello")
    fp = Fingerprinter(no_cache)
    assert fp.target(flow.LocalTarget("x.txt")) == fp.target(flow.LocalTarget("y.txt"))
    assert fp.target(flow.LocalTarget("x.txt")) == hash_file("x.txt")


def test_flow_own_classes_do_not_count_even_when_the_project_contains_flow(tmp_path):
    """Run inside a checkout of flow itself: flow's package is under the root, yet not project code."""
    import os

    flow_checkout_root = os.path.dirname(os.path.dirname(os.path.dirname(flow.__file__)))
    hasher = CodeHasher(flow_checkout_root)
    assert not hasher.is_project_file(flow.__file__)


def test_exists_and_fingerprint_of_a_local_target_share_one_stat(tmp_path, monkeypatch):
    """Planning asks a LocalTarget whether it exists and then hashes it: one os.stat for both."""
    monkeypatch.chdir(tmp_path)
    Path("x.txt").write_text("hello")
    target = flow.LocalTarget("x.txt")
    calls = []
    real_stat = os.stat
    monkeypatch.setattr(os, "stat", lambda p, *a, **k: calls.append(p) or real_stat(p, *a, **k))
    fp = Fingerprinter(no_cache)
    assert fp.exists(target)
    assert fp.file(target.key) == hash_file("x.txt")
    assert calls == ["x.txt"]
    fp.forget(target.key)  # after a task rewrote it, the next question stats afresh
    assert fp.exists(target) and calls == ["x.txt", "x.txt"]
    assert not fp.exists(flow.LocalTarget("missing.txt"))


class WinSource(flow.ExternalTask):
    i = flow.IntParameter()

    def output(self):
        return flow.LocalTarget(f"src/{self.i}.txt")


class WinLeaf(flow.Task):
    i = flow.IntParameter()
    tag = flow.Parameter(default="a")

    def requires(self):
        return WinSource(self.i)

    def output(self):
        return flow.LocalTarget(f"out/{self.i}.txt")

    def run(self):
        with self.input().open() as fin, self.output().open("w") as fout:
            fout.write(fin.read() + self.tag)


class WinTop(flow.Task):
    tag = flow.Parameter(default="a")

    def requires(self):
        return [WinLeaf(i, tag=self.tag if i == 3 else "a") for i in range(8)]

    def output(self):
        return flow.LocalTarget("top.txt")

    def run(self):
        with self.output().open("w") as f:
            f.write("".join(t.open().read() for t in self.input()))


def _reasons(tag="a"):
    plan = flow.build([WinTop(tag=tag)], dry_run=True, reporter=_Quiet()).plan
    return {tid: [r.kind for r in d.reasons] for tid, d in plan.decisions.items()}


class _Quiet:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


def test_rows_read_ahead_in_windows_give_the_same_decisions_as_row_by_row(tmp_path, monkeypatch):
    """Graphs too big to preload read the manifest a window of tasks at a time (plan.WINDOW);
    every reason must come out as with one query per row: up to date, missing, changed
    parameters, a changed input, a hand edit, and outputs with no record."""
    import flow.plan
    import flow.spine

    monkeypatch.chdir(tmp_path)
    (tmp_path / "src").mkdir()
    for i in range(8):
        (tmp_path / "src" / f"{i}.txt").write_text(str(i))
    assert flow.build([WinTop()], reporter=_Quiet())
    time.sleep(0.2)  # out of the stat cache's racy window on ns-timestamp filesystems
    (tmp_path / "out" / "1.txt").unlink()  # missing-output
    (tmp_path / "src" / "2.txt").write_text("changed")  # input-changed
    (tmp_path / "out" / "5.txt").write_text("by hand")  # output-modified
    os.utime(tmp_path / "src" / "0.txt")
    Manifest(str(tmp_path / ".flow")).forget(["out/6.txt"])  # no record (its path lacks tag)
    for tag in ("a", "b"):  # "b": WinLeaf(3) params-changed
        monkeypatch.setattr(flow.spine, "PRELOAD_AT", (0, 10**9))
        whole = _reasons(tag)
        monkeypatch.setattr(flow.spine, "PRELOAD_AT", (10**9, 10**9))
        row_by_row_then_windows = []
        for window in (10**6, 3, 1):
            monkeypatch.setattr(flow.plan, "WINDOW", window)
            row_by_row_then_windows.append(_reasons(tag))
        assert all(r == whole for r in row_by_row_then_windows), tag
    assert whole["WinLeaf(i=1, tag=a)"] == ["missing-output"]
    assert whole["WinLeaf(i=2, tag=a)"] == ["input-changed"]
    assert whole["WinLeaf(i=3, tag=b)"][0] == "params-changed"
    assert whole["WinLeaf(i=5, tag=a)"] == ["output-modified"]
    assert whole["WinLeaf(i=0, tag=a)"] == []
    assert whole["WinLeaf(i=6, tag=a)"] == ["no-record"]
    assert whole["WinTop(tag=b)"] == ["params-changed", "input-changed", "upstream"]
