"""SPEC §3 end to end: when a task runs, the reason a plan gives, and what `.flow/` keeps."""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path

import pytest

from conftest import SEED

# A writes out/a.txt from the constant TEXT; B copies it to out/b.txt and appends to log.txt, so the
# log counts how many times B really ran.
CHAIN = """
TEXT = "alpha\\n"

class A(flow.Task):
    def output(self):
        return flow.LocalTarget("out/a.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write(TEXT)

class B(flow.Task):
    def requires(self):
        return A()
    def output(self):
        return flow.LocalTarget("out/b.txt")
    def run(self):
        with open("log.txt", "a") as log:
            log.write("B\\n")
        with self.input().open() as fin, self.output().open("w") as fout:
            fout.write(fin.read().upper())
"""


# Concat reads every data/*.txt through flow.Files and joins them into out/all.txt.
FILES = """
class Concat(flow.Task):
    def requires(self):
        return flow.Files("data/*.txt")
    def output(self):
        return flow.LocalTarget("out/all.txt")
    def run(self):
        with self.output().open("w") as fout:
            for t in self.input():
                with t.open() as fin:
                    fout.write(fin.read())
"""

HOUR = 3600 * 10**9


# -- helpers ------------------------------------------------------------------------------------
def first_reason(project, task_id: str, *args: str) -> dict:
    """The first reason `flow -n --json` gives for task_id (asserting it has one)."""
    entry = project.plan(*args)[task_id]
    assert entry["reasons"], entry
    return entry["reasons"][0]


def text_reason_line(project, task_id: str, *args: str) -> str:
    """The line of the plain-text `flow -n` plan that names task_id."""
    proc = project.run("-n", *args)
    assert proc.returncode in (0, 1), proc.stderr
    lines = [
        ln for ln in proc.stdout.splitlines() if re.search(rf"(^|\s){re.escape(task_id)}\s", ln)
    ]
    assert lines, f"{task_id} not in plan:\n{proc.stdout}"
    return lines[0]


def assert_first_reason(project, task_id: str, kind: str, *args: str, detail: str = "") -> dict:
    """The plan shows `kind` first for task_id, in --json and in plain text; returns the JSON reason."""
    reason = first_reason(project, task_id, *args)
    assert reason["kind"] == kind, reason
    assert detail in reason["detail"], reason
    line = text_reason_line(project, task_id, *args)
    after = line.split(task_id, 1)[1]
    assert after.split()[0].rstrip(":") == kind, line
    assert detail in after, line
    return reason


def set_mtime(project, name: str, ns: int) -> None:
    os.utime(project.root / name, ns=(ns, ns))


def mtime(project, name: str) -> int:
    return (project.root / name).stat().st_mtime_ns


def log_count(project) -> int:
    path = project.root / "log.txt"
    return path.read_text().count("B\n") if path.exists() else 0


def snapshot(root: Path) -> dict[str, tuple[int, bytes]]:
    """Every file under root (including .flow/) with its mtime and content."""
    out = {}
    for dirpath, _, files in os.walk(root):
        for name in files:
            p = Path(dirpath, name)
            out[str(p.relative_to(root))] = (p.stat().st_mtime_ns, p.read_bytes())
    return out


def built_chain(project):
    project.flowfile(CHAIN)
    assert project.ran("B") == ["A()", "B()"]
    assert log_count(project) == 1


# -- forced -------------------------------------------------------------------------------------
def test_force_rebuilds_requested_task_and_everything_upstream(project):
    """An up-to-date chain built with -B: both tasks are `forced` and both run."""
    built_chain(project)
    for tid in ("A()", "B()"):
        assert_first_reason(project, tid, "forced", "-B", "B")
        assert project.plan("-B", "B")[tid]["would_run"]
    assert project.ran("-B", "B") == ["A()", "B()"]
    assert log_count(project) == 2
    assert project.ran("B") == []


def test_forced_comes_before_missing_output(project):
    """-B on a task whose output is missing: `forced` is the first reason, missing-output follows."""
    project.flowfile(CHAIN)
    reasons = [r["kind"] for r in project.plan("-B", "A")["A()"]["reasons"]]
    assert reasons[:2] == ["forced", "missing-output"]


# -- phony --------------------------------------------------------------------------------------
def test_task_without_outputs_is_phony_and_runs_every_time(project):
    """A task with no output(): `phony` in the plan, and it runs on every invocation."""
    project.flowfile("""
        class Hello(flow.Task):
            def run(self):
                with open("log.txt", "a") as f:
                    f.write("B\\n")
    """)
    assert_first_reason(project, "Hello()", "phony", "Hello")
    assert project.ran("Hello") == ["Hello()"]
    assert project.ran("Hello") == ["Hello()"]
    assert log_count(project) == 2
    assert project.plan("Hello")["Hello()"]["would_run"]


# -- missing-output -----------------------------------------------------------------------------
def test_missing_output_names_the_path(project):
    """A built chain whose final output is deleted: B is `missing-output: out/b.txt`, A is not run."""
    built_chain(project)
    (project.root / "out/b.txt").unlink()
    assert_first_reason(project, "B()", "missing-output", "B", detail="out/b.txt")
    plan = project.plan("B")
    assert not plan["A()"]["would_run"]
    assert project.ran("B") == ["B()"]
    assert project.read("out/b.txt") == "ALPHA\n"


# -- no-record and adoption -----------------------------------------------------------------------
def test_outputs_without_record_and_a_newer_input_run_with_no_record(project):
    """Outputs written by hand, no .flow/, the input newer than the output: `no-record`, and it runs."""
    project.flowfile(CHAIN)
    project.write("out/a.txt", "alpha\n")
    project.write("out/b.txt", "stale\n")
    now = mtime(project, "out/a.txt")
    set_mtime(project, "out/b.txt", now - 2 * HOUR)
    set_mtime(project, "out/a.txt", now - HOUR)
    assert not (project.root / ".flow").exists()
    reason = assert_first_reason(project, "B()", "no-record", "B")
    assert "out/a.txt" in reason["detail"]
    assert not project.plan("B")["A()"]["would_run"]  # A has no inputs: adopted
    assert project.ran("B") == ["B()"]
    assert project.read("out/b.txt") == "ALPHA\n"
    assert project.ran("B") == []


def test_outputs_without_record_and_nothing_newer_are_adopted_and_recorded(project):
    """Outputs by hand, no .flow/, inputs older than outputs: nothing runs, and the state is recorded.

    The proof of the record: a later content change of an input whose mtime stays older than the
    output (invisible to make's rule) is caught as `input-changed`.
    """
    project.flowfile(FILES)
    project.write("data/one.txt", "one\n")
    project.write("out/all.txt", "hand-made\n")
    now = mtime(project, "out/all.txt")
    set_mtime(project, "data/one.txt", now - 2 * HOUR)
    set_mtime(project, "out/all.txt", now - HOUR)
    assert not project.plan("Concat")["Concat()"]["would_run"]
    assert project.ran("Concat") == []
    assert (project.root / ".flow/manifest.sqlite").exists()
    assert project.read("out/all.txt") == "hand-made\n"

    project.write("data/one.txt", "ONE\n")
    set_mtime(project, "data/one.txt", now - 2 * HOUR)
    assert_first_reason(project, "Concat()", "input-changed", "Concat", detail="data/one.txt")
    assert project.ran("Concat") == ["Concat()"]
    assert project.read("out/all.txt") == "ONE\n"


# -- params-changed -----------------------------------------------------------------------------
def test_other_parameter_values_writing_the_same_path_are_params_changed(project):
    """SquaredNumbers(n=10) built, then n=20 writes the same out/squares.txt: `params-changed: n 10 → 20`."""
    project.flowfile(SEED)
    assert project.ran("SquaredNumbers", "n=10") == ["PrintNumbers(n=10)", "SquaredNumbers(n=10)"]
    assert_first_reason(
        project,
        "SquaredNumbers(n=20)",
        "params-changed",
        "SquaredNumbers",
        "n=20",
        detail="n 10 → 20",
    )
    assert_first_reason(
        project,
        "PrintNumbers(n=20)",
        "missing-output",
        "SquaredNumbers",
        "n=20",
        detail="out/numbers_upto_20.txt",
    )
    assert project.ran("SquaredNumbers", "n=20") == ["PrintNumbers(n=20)", "SquaredNumbers(n=20)"]
    assert project.read("out/squares.txt").splitlines()[-1] == "20: 400"
    # Back to n=10: its own upstream output is still there, but squares.txt was made with n=20.
    assert (
        first_reason(project, "SquaredNumbers(n=10)", "SquaredNumbers", "n=10")["kind"]
        == "params-changed"
    )
    assert project.ran("SquaredNumbers", "n=10") == ["SquaredNumbers(n=10)"]


# -- code-changed -------------------------------------------------------------------------------
def test_edited_method_body_is_code_changed(project):
    """A's run() is edited after a build: A is `code-changed`, reruns, and B follows."""
    built_chain(project)
    project.flowfile(CHAIN.replace("f.write(TEXT)", "f.write(TEXT + 'beta\\n')"))
    reason = assert_first_reason(project, "A()", "code-changed", "B")
    assert "A" in reason["detail"]
    assert not any(r["kind"] == "code-changed" for r in project.plan("B")["B()"]["reasons"])
    assert project.ran("B") == ["A()", "B()"]
    assert project.read("out/b.txt") == "ALPHA\nBETA\n"


BASED = """
class Base(flow.Task):
    def greeting(self):
        return "hello"

class Leaf(Base):
    def output(self):
        return flow.LocalTarget("out/leaf.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write(self.greeting())
"""


def test_edited_project_base_class_is_code_changed(project):
    """Leaf inherits greeting() from Base in the Flowfile; editing Base makes Leaf `code-changed`."""
    project.flowfile(BASED)
    assert project.ran("Leaf") == ["Leaf()"]
    project.flowfile(BASED.replace('"hello"', '"bonjour"'))
    assert_first_reason(project, "Leaf()", "code-changed", "Leaf")
    assert project.ran("Leaf") == ["Leaf()"]
    assert project.read("out/leaf.txt") == "bonjour"


def test_edited_base_class_in_a_project_module_is_code_changed(project):
    """The base class lives in a project module the Flowfile imports; editing it is `code-changed`."""
    project.write(
        "mybase.py",
        'import flow\n\nclass Base(flow.Task):\n    def greeting(self):\n        return "hello"\n',
    )
    project.flowfile("from mybase import Base\n\nclass Leaf" + BASED.split("class Leaf", 1)[1])
    assert project.ran("Leaf") == ["Leaf()"]
    assert project.ran("Leaf") == []
    project.write(
        "mybase.py",
        'import flow\n\nclass Base(flow.Task):\n    def greeting(self):\n        return "hi"\n',
    )
    assert_first_reason(project, "Leaf()", "code-changed", "Leaf")
    assert project.ran("Leaf") == ["Leaf()"]
    assert project.read("out/leaf.txt") == "hi"


def test_bumped_version_attribute_is_code_changed(project):
    """A class attribute `version = 1` becomes 2 with nothing else changed: A is `code-changed`."""
    text = CHAIN.replace("class A(flow.Task):\n", "class A(flow.Task):\n    version = 1\n")
    project.flowfile(text)
    assert project.ran("B") == ["A()", "B()"]
    project.flowfile(text.replace("version = 1", "version = 2"))
    assert_first_reason(project, "A()", "code-changed", "B")
    assert "A()" in project.ran("B")


@pytest.mark.parametrize(
    "edit",
    [
        pytest.param(
            lambda t: t.replace("f.write(TEXT)", "f.write(TEXT)  # the greeting"), id="comment"
        ),
        pytest.param(
            lambda t: t.replace(
                '    def run(self):\n        with self.output().open("w") as f:',
                '\n    def run(self):\n\n        with self.output().open("w") as f:',
                1,
            ),
            id="blank-lines",
        ),
        pytest.param(
            lambda t: t.replace(
                "class A(flow.Task):\n", 'class A(flow.Task):\n    """Writes alpha."""\n'
            ).replace(
                '    def run(self):\n        with self.output().open("w") as f:',
                '    def run(self):\n        """Write it."""\n        with self.output().open("w") as f:',
                1,
            ),
            id="docstrings",
        ),
    ],
)
def test_comment_blank_line_and_docstring_edits_are_not_code_changed(project, edit):
    """A's source changes only in comments, blank lines or docstrings: nothing is stale."""
    built_chain(project)
    edited = edit(CHAIN)
    assert edited != CHAIN
    project.flowfile(edited)
    plan = project.plan("B")
    assert not plan["A()"]["would_run"], plan["A()"]
    assert plan["A()"]["reasons"] == []
    assert project.ran("B") == []


# -- input-changed ------------------------------------------------------------------------------
def test_upstream_output_with_new_content_is_input_changed_for_downstream(project):
    """A reruns after a code edit and writes new content: at run time B's reason is `input-changed: out/a.txt`."""
    built_chain(project)
    project.flowfile(CHAIN.replace("f.write(TEXT)", "f.write('gamma\\n')"))
    code, doc = project.run_json("B")
    assert code == 0, doc
    by_id = {t["task"]: t for t in doc["tasks"]}
    assert by_id["B()"]["status"] == "ran"
    assert by_id["B()"]["reasons"][0]["kind"] == "input-changed"
    assert "out/a.txt" in by_id["B()"]["reasons"][0]["detail"]
    assert project.read("out/b.txt") == "GAMMA\n"


def test_edited_files_input_is_input_changed(project):
    """A file matched by flow.Files is edited: the task is `input-changed` naming that file, and reruns."""
    project.flowfile(FILES)
    project.write("data/one.txt", "one\n")
    project.write("data/two.txt", "two\n")
    assert project.ran("Concat") == ["Concat()"]
    project.write("data/two.txt", "TWO\n")
    reason = assert_first_reason(
        project, "Concat()", "input-changed", "Concat", detail="data/two.txt"
    )
    assert "data/one.txt" not in reason["detail"]
    assert project.ran("Concat") == ["Concat()"]
    assert project.read("out/all.txt") == "one\nTWO\n"


def test_file_appearing_or_disappearing_for_files_glob_is_input_changed(project):
    """A new file matches the flow.Files glob, then one goes away: each is `input-changed` naming it."""
    project.flowfile(FILES)
    project.write("data/one.txt", "one\n")
    assert project.ran("Concat") == ["Concat()"]
    project.write("data/new.txt", "new\n")
    assert_first_reason(project, "Concat()", "input-changed", "Concat", detail="data/new.txt")
    assert project.ran("Concat") == ["Concat()"]
    assert project.read("out/all.txt") == "new\none\n"
    (project.root / "data/one.txt").unlink()
    assert_first_reason(project, "Concat()", "input-changed", "Concat", detail="data/one.txt")
    assert project.ran("Concat") == ["Concat()"]
    assert project.read("out/all.txt") == "new\n"


# -- output-modified ----------------------------------------------------------------------------
def test_hand_edited_output_is_kept_with_a_warning_and_downstream_reruns(project):
    """out/a.txt is edited by hand: A is `output-modified` but not rerun; B reruns as `input-changed`."""
    built_chain(project)
    project.write("out/a.txt", "edited\n")
    plan = project.plan("B")
    assert plan["A()"]["reasons"][0]["kind"] == "output-modified"
    assert "out/a.txt" in plan["A()"]["reasons"][0]["detail"]
    assert not plan["A()"]["would_run"]
    assert plan["B()"]["would_run"]
    assert plan["B()"]["reasons"][0] == {"kind": "input-changed", "detail": "out/a.txt"}
    explain = project.run("-n", "--explain", "B")
    assert explain.returncode == 0, explain.stderr
    assert "out/a.txt" in explain.stderr  # the warning
    a_lines = [ln for ln in explain.stdout.splitlines() if ln.split()[:1] == ["A()"]]
    assert len(a_lines) == 1 and a_lines[0].split()[1].rstrip(":") == "output-modified", (
        explain.stdout
    )

    proc = project.run("--json", "B")
    assert proc.returncode == 0, proc.stderr
    assert "out/a.txt" in proc.stderr  # the warning
    assert project.read("out/a.txt") == "edited\n"
    assert project.read("out/b.txt") == "EDITED\n"
    assert log_count(project) == 2
    assert project.ran("B") == []
    assert not (project.root / ".flow/backup").exists()


@pytest.mark.parametrize("how", ["force", "version-bump"])
def test_hand_edited_output_is_backed_up_when_its_producer_must_run(project, how):
    """out/a.txt is edited by hand and A must run anyway: the edit is saved under .flow/backup/ first."""
    text = CHAIN.replace("class A(flow.Task):\n", "class A(flow.Task):\n    version = 1\n")
    project.flowfile(text)
    assert project.ran("B") == ["A()", "B()"]
    project.write("out/a.txt", "precious\n")
    args = ["B"]
    if how == "force":
        args = ["-B", "B"]
    else:
        project.flowfile(text.replace("version = 1", "version = 2"))
    proc = project.run(*args)
    assert proc.returncode == 0, proc.stderr
    assert project.read("out/a.txt") == "alpha\n"
    saved = [p for p in (project.root / ".flow/backup").rglob("*") if p.is_file()]
    assert [p.read_text() for p in saved] == ["precious\n"]
    rel = str(saved[0].relative_to(project.root))
    assert rel in proc.stderr or str(saved[0]) in proc.stderr, proc.stderr


def test_each_hand_edit_rebuilt_over_gets_its_own_backup(project):
    """out/a.txt is hand-edited and rebuilt with -B twice in a row: both edited copies survive."""
    built_chain(project)
    saved_paths = []
    for text in ("first edit\n", "second edit\n"):
        project.write("out/a.txt", text)
        proc = project.run("-B", "B")
        assert proc.returncode == 0, proc.stderr
        saved = [
            p
            for p in (project.root / ".flow/backup").rglob("*")
            if p.is_file() and p.read_text() == text
        ]
        assert len(saved) == 1, sorted(str(p) for p in (project.root / ".flow/backup").rglob("*"))
        assert str(saved[0].relative_to(project.root)) in proc.stderr, proc.stderr
        saved_paths.append(saved[0])
    # The first warning's promise still holds after the second rebuild.
    assert saved_paths[0].read_text() == "first edit\n"
    assert project.read("out/a.txt") == "alpha\n"
    assert project.run("B").stderr == ""  # rebuilt: no longer modified


# -- upstream -----------------------------------------------------------------------------------
def test_downstream_of_a_stale_task_is_upstream_in_a_dry_run(project):
    """A's code changes; B itself is unchanged: the plan shows B as `upstream: A()`."""
    built_chain(project)
    project.flowfile(CHAIN.replace("f.write(TEXT)", "f.write(TEXT.upper())"))
    assert_first_reason(project, "B()", "upstream", "B", detail="A()")
    code, doc = project.run_json("-n", "B")
    assert doc["would_run"] == ["A()", "B()"]


# -- order and --explain ------------------------------------------------------------------------
MANY = """
class Up(flow.Task):
    def output(self):
        return flow.LocalTarget("out/up.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("up\\n")

class Many(flow.Task):
    version = 1
    n = flow.IntParameter(default=1)
    def requires(self):
        return {"up": Up(), "data": flow.Files("data/*.txt")}
    def output(self):
        return flow.LocalTarget("out/many.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write(str(self.n))
"""


def test_plan_shows_first_reason_in_spec_order_and_explain_lists_all(project):
    """Many has params, code and an input changed at once: the plan shows params-changed; --explain all three."""
    project.flowfile(MANY)
    project.write("data/x.txt", "x\n")
    assert project.ran("Many") == ["Up()", "Many(n=1)"]
    project.flowfile(MANY.replace("version = 1", "version = 2"))
    project.write("data/x.txt", "y\n")

    kinds = [r["kind"] for r in project.plan("Many", "n=2")["Many(n=2)"]["reasons"]]
    assert kinds == ["params-changed", "code-changed", "input-changed"]

    plain = project.run("-n", "Many", "n=2")
    assert plain.returncode == 0, plain.stderr
    assert "params-changed" in plain.stdout
    assert "code-changed" not in plain.stdout and "input-changed" not in plain.stdout
    assert "Up()" not in plain.stdout

    explain = project.run("-n", "--explain", "Many", "n=2")
    assert explain.returncode == 0, explain.stderr
    out = explain.stdout
    positions = [out.find(k) for k in ("params-changed", "code-changed", "input-changed")]
    assert -1 not in positions and positions == sorted(positions), out
    assert "data/x.txt" in out
    assert "Up()" in out  # the up-to-date task is explained too
    assert project.read("out/many.txt") == "1"  # a dry run: nothing was rebuilt


# -- early cutoff -------------------------------------------------------------------------------
def test_forced_task_writing_identical_output_does_not_rerun_dependents(project):
    """A is rebuilt with -B and writes the same bytes: B, requested next, does not rerun."""
    built_chain(project)
    assert project.ran("-B", "A") == ["A()"]
    assert project.ran("B") == []
    assert log_count(project) == 1


def test_rerun_with_identical_output_cuts_off_downstream_in_the_same_run(project):
    """A reruns for a version bump but writes the same bytes: B is planned as upstream yet does not run."""
    text = CHAIN.replace("class A(flow.Task):\n", "class A(flow.Task):\n    version = 1\n")
    project.flowfile(text)
    assert project.ran("B") == ["A()", "B()"]
    project.flowfile(text.replace("version = 1", "version = 2"))
    assert project.plan("B")["B()"]["would_run"]
    assert project.ran("B") == ["A()"]
    assert log_count(project) == 1
    assert project.ran("B") == []


# -- dry runs change nothing ----------------------------------------------------------------------
def test_dry_run_in_a_fresh_project_creates_nothing(project):
    """A project that was never built: `flow -n` writes no .flow/ and no outputs."""
    project.flowfile(CHAIN)
    before = snapshot(project.root)
    for args in (["-n", "B"], ["-n", "--json", "B"], ["-n", "--explain", "B"], ["--check", "B"]):
        proc = project.run(*args)
        assert proc.returncode in (0, 1), proc.stderr
    assert not (project.root / ".flow").exists()
    assert not (project.root / "out").exists()
    assert snapshot(project.root) == before


def test_dry_run_of_a_stale_project_changes_no_file(project):
    """A built project with a stale task and a hand-edited output: `flow -n` leaves every file as it was."""
    built_chain(project)
    project.write("out/a.txt", "edited\n")
    project.flowfile(CHAIN.replace("B\\n", "b\\n"))
    before = snapshot(project.root)
    assert project.plan("B")["B()"]["would_run"]
    assert project.run("-n", "--explain", "B").returncode == 0
    assert project.run("-n", "-B", "B").returncode == 0
    assert snapshot(project.root) == before


# -- --check and --touch --------------------------------------------------------------------------
def test_check_exits_1_when_something_would_run_and_0_when_up_to_date(project):
    """--check before a build, after it, and after an input edit: 1, 0, 1 — and it never runs anything."""
    project.flowfile(FILES)
    project.write("data/one.txt", "one\n")
    assert project.run("--check", "Concat").returncode == 1
    assert not (project.root / "out/all.txt").exists()
    assert project.ran("Concat") == ["Concat()"]
    assert project.run("--check", "Concat").returncode == 0
    project.write("data/one.txt", "uno\n")
    assert project.run("--check", "Concat").returncode == 1
    assert project.read("out/all.txt") == "one\n"
    code, doc = project.run_json("--check", "Concat")
    assert code == 1 and doc["exit_status"] == 1


def test_touch_accepts_a_harmless_edit_so_nothing_runs_next(project):
    """B's run() is reworded harmlessly (code-changed): -t records it as up to date without running."""
    built_chain(project)
    project.flowfile(
        CHAIN.replace("fout.write(fin.read().upper())", "fout.write(str.upper(fin.read()))")
    )
    assert project.plan("B")["B()"]["would_run"]
    proc = project.run("-t", "B")
    assert proc.returncode == 0, proc.stderr
    assert log_count(project) == 1
    assert project.plan("B")["B()"]["would_run"] is False
    assert project.run("--check", "B").returncode == 0
    assert project.ran("B") == []
    assert log_count(project) == 1


def test_touch_accepts_a_hand_edited_output_so_the_warning_stops(project):
    """out/a.txt is edited by hand: after `flow -t A` the edit is the record, no warning, nothing runs."""
    built_chain(project)
    project.write("out/a.txt", "mine\n")
    assert "out/a.txt" in project.run("A").stderr
    assert project.run("-t", "A").returncode == 0
    assert project.read("out/a.txt") == "mine\n"
    assert project.plan("A")["A()"]["reasons"] == []
    proc = project.run("--json", "A")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert project.read("out/a.txt") == "mine\n"


# -- the stat cache -------------------------------------------------------------------------------
@pytest.mark.parametrize("in_place", [True, False], ids=["in-place", "replaced"])
def test_same_size_same_mtime_content_change_is_detected(project, in_place):
    """An input is rewritten with same-length content and its old mtime restored: still input-changed."""
    project.flowfile(FILES)
    path = project.write("data/one.txt", "aaaa\n")
    old = mtime(project, "data/one.txt") - HOUR
    set_mtime(project, "data/one.txt", old)
    assert project.ran("Concat") == ["Concat()"]
    assert project.ran("Concat") == []  # the stat cache now knows the file
    if in_place:
        with open(path, "r+") as f:
            f.write("bbbb\n")
    else:
        tmp = project.write("data/one.tmp", "bbbb\n")
        os.replace(tmp, path)
    set_mtime(project, "data/one.txt", old)
    assert path.stat().st_size == 5 and path.stat().st_mtime_ns == old
    assert_first_reason(project, "Concat()", "input-changed", "Concat", detail="data/one.txt")
    assert project.ran("Concat") == ["Concat()"]
    assert project.read("out/all.txt") == "bbbb\n"


# -- the manifest ---------------------------------------------------------------------------------
@pytest.mark.parametrize("damage", ["garbage", "truncated"])
def test_corrupt_manifest_is_moved_aside_and_the_run_continues(project, damage):
    """.flow/manifest.sqlite is overwritten with garbage or cut in half: warning, moved aside, exit 0."""
    project.flowfile(SEED)
    assert project.ran("SquaredNumbers", "n=3") == ["PrintNumbers(n=3)", "SquaredNumbers(n=3)"]
    for n in range(4, 40):  # grow the database beyond a page or two
        assert project.run("PrintNumbers", f"n={n}").returncode == 0
    db = project.root / ".flow/manifest.sqlite"
    data = db.read_bytes()
    bad = b"this is not a database\n" * 200 if damage == "garbage" else data[: len(data) // 2]
    db.write_bytes(bad)
    (project.root / "out/squares.txt").unlink()

    proc = project.run("--json", "SquaredNumbers", "n=3")
    assert proc.returncode == 0, proc.stderr
    assert "manifest" in proc.stderr  # a warning
    assert "Traceback" not in proc.stderr
    aside = [
        p for p in (project.root / ".flow").iterdir() if p.name != db.name and p.read_bytes() == bad
    ]
    assert aside, sorted(p.name for p in (project.root / ".flow").iterdir())
    assert project.read("out/squares.txt") == "1: 1\n2: 4\n3: 9\n"
    # The fresh manifest works: a second run has nothing to do and no warning.
    again = project.run("--json", "SquaredNumbers", "n=3")
    assert again.returncode == 0, again.stderr
    assert again.stderr == ""
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"


def test_dry_run_with_a_corrupt_manifest_warns_and_leaves_it_in_place(project):
    """.flow/manifest.sqlite holds garbage: `flow -n` warns, plans as if empty, exits 0, moves nothing."""
    built_chain(project)
    db = project.root / ".flow/manifest.sqlite"
    db.write_bytes(b"this is not a database\n" * 200)
    before = snapshot(project.root)
    proc = project.run("-n", "B")
    assert proc.returncode == 0, proc.stderr
    assert "manifest" in proc.stderr and "Traceback" not in proc.stderr
    assert snapshot(project.root) == before
    # The lost records may have said the outputs were built from something else: never adopted.
    assert project.run("--check", "B").returncode == 1


def test_manifest_from_a_newer_schema_is_refused_with_exit_2(project):
    """meta says schema_version 999: flow refuses with a clear error, exit 2, and touches nothing."""
    built_chain(project)
    db = project.root / ".flow/manifest.sqlite"
    with sqlite3.connect(db) as con:
        con.execute("UPDATE meta SET value = '999' WHERE key = 'schema_version'")
    con.close()
    (project.root / "out/b.txt").unlink()
    for args in (["B"], ["-n", "B"], ["--json", "B"]):
        proc = project.run(*args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        assert "Traceback" not in proc.stderr
        assert "999" in proc.stderr or "schema" in proc.stderr, proc.stderr
    assert not (project.root / "out/b.txt").exists()
    assert log_count(project) == 1
    assert db.exists()
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT value FROM meta WHERE key = 'schema_version'").fetchone() == (
            "999",
        )
    con.close()


def test_explain_without_dry_run_prints_the_reasons_and_then_builds(project):
    """--explain on a real run says why each task runs (and why others do not), then runs them."""
    project.flowfile(
        """
        class A(flow.Task):
            n = flow.IntParameter(default=1)
            def output(self):
                return flow.LocalTarget("a.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write(str(self.n))
        """
    )
    assert project.run("A").returncode == 0
    proc = project.run("--explain", "A", "n=2")
    assert proc.returncode == 0, proc.stderr
    assert "params-changed: n 1 → 2" in proc.stdout
    assert project.read("a.txt") == "2"


def test_an_output_that_lost_its_record_is_adopted_while_its_sibling_keeps_its_own(project):
    """Two outputs, one record deleted: nothing is newer, so flow adopts it instead of rerunning."""
    project.flowfile(
        """
        class Pair(flow.Task):
            def output(self):
                return [flow.LocalTarget("a.txt"), flow.LocalTarget("b.txt")]
            def run(self):
                for t in self.output():
                    with t.open("w") as f:
                        f.write("x")
        """
    )
    assert project.ran("Pair") == ["Pair()"]
    db = sqlite3.connect(project.root / ".flow" / "manifest.sqlite")
    with db:
        db.execute("DELETE FROM outputs WHERE key = 'b.txt'")
    db.close()
    assert project.ran("Pair") == []
    db = sqlite3.connect(project.root / ".flow" / "manifest.sqlite")
    keys = sorted(k for (k,) in db.execute("SELECT key FROM outputs"))
    db.close()
    assert keys == ["a.txt", "b.txt"]
