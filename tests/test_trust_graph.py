"""Trust: outputs two tasks would both write, adoption only when nothing is known to differ,
-t after a hand edit, and a user's exists()/complete() or an unreadable file failing cleanly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest

from conftest import FLOW, Project
from flow.errors import GraphError
from flow.graph import TaskGraph, _check_outputs
from flow.target import LocalTarget


def _refused(proc, *names: str) -> None:
    """Exit 2, a short error naming every one of ``names``, no traceback."""
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert len(proc.stderr.strip().splitlines()) <= 3, proc.stderr
    for name in names:
        assert name in proc.stderr, (name, proc.stderr)


# -- nested and aliased outputs (one file written by two tasks) ---------------------------------
NESTED = """
import os

class Site(flow.Task):
    def output(self):
        return flow.LocalTarget("site")
    def run(self):
        os.makedirs("site", exist_ok=True)
        with open("site/index.html", "w") as f:
            f.write("index")

class Extra(flow.Task):
    def requires(self):
        return Site()
    def output(self):
        return flow.LocalTarget(OUT)
    def run(self):
        with self.output().open("w") as f:
            f.write("extra")
"""


@pytest.mark.parametrize(
    "out", ["site/extra.html", "site/deep/er/extra.html", "./site//extra.html", "ABS"]
)
def test_an_output_inside_another_tasks_output_directory_is_refused_naming_both(project, out):
    """Extra writes site/extra.html inside Site's output `site`: exit 2 naming both, nothing runs."""
    if out == "ABS":
        out = str(project.root / "site" / "extra.html")
    project.flowfile(NESTED.replace("OUT", repr(out)))
    for args in (["-n", "Extra"], ["Extra"], ["-B", "Extra"]):
        _refused(project.run(*args), "Site()", "Extra()", "extra.html", "site")
    assert not (project.root / "site").exists()


def test_a_task_may_declare_a_directory_and_files_inside_it_itself(project):
    """One task declaring `site` and `site/index.html` writes both itself: accepted, and it builds."""
    project.flowfile(
        NESTED
        + """
class Whole(flow.Task):
    def output(self):
        return [flow.LocalTarget("site"), flow.LocalTarget("site/index.html")]
    def run(self):
        os.makedirs("site", exist_ok=True)
        with open("site/index.html", "w") as f:
            f.write("index")

class Reader(flow.Task):
    def requires(self):
        return Site()
    def output(self):
        return flow.LocalTarget("copy.html")
    def run(self):
        with open("site/index.html") as fin, self.output().open("w") as fout:
            fout.write(fin.read())
"""
    )
    assert project.ran("Whole") == ["Whole()"]
    # A task that reads a file inside an upstream's directory is a reader, not a writer.
    assert project.ran("Reader") == ["Site()", "Reader()"]


def test_a_sibling_with_a_common_prefix_is_not_nested(project):
    """`site` and `site-extra.html`, `site2/x`: a shared prefix that is not a directory is fine."""
    project.flowfile(
        NESTED.replace("OUT", repr("site-extra.html"))
        + """
class Two(flow.Task):
    def requires(self):
        return Extra()
    def output(self):
        return flow.LocalTarget("site2/x.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("2")
"""
    )
    assert project.ran("Two") == ["Site()", "Extra()", "Two()"]


ALIASED = """
class A(flow.Task):
    def output(self):
        return flow.LocalTarget("same.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("a")

class B(flow.Task):
    def requires(self):
        return A()
    def output(self):
        return flow.LocalTarget(OUT)
    def run(self):
        with self.output().open("w") as f:
            f.write("b")
"""


@pytest.mark.parametrize("link,out", [("link", "link/same.txt"), ("up/in", "up/in/same.txt")])
def test_two_tasks_writing_one_file_through_a_symlinked_directory_are_refused(project, link, out):
    """B writes link/same.txt, link -> the project: the same file as A's same.txt; exit 2."""
    (project.root / link).parent.mkdir(parents=True, exist_ok=True)
    os.symlink(os.path.relpath(project.root, (project.root / link).parent), project.root / link)
    project.flowfile(ALIASED.replace("OUT", repr(out)))
    for args in (["-n", "B"], ["B"]):
        _refused(project.run(*args), "A()", "B()", "same.txt", out)
    assert not (project.root / "same.txt").exists()


def test_an_output_inside_another_tasks_directory_through_a_symlink_is_refused(project):
    """Site writes `site`; Extra writes `alias/extra.html` with alias -> site: nested; exit 2."""
    (project.root / "site").mkdir()
    os.symlink("site", project.root / "alias")
    project.flowfile(NESTED.replace("OUT", repr("alias/extra.html")))
    _refused(project.run("-n", "Extra"), "Site()", "Extra()", "alias/extra.html")


def test_the_output_check_stays_linear_at_ten_thousand_outputs_a_hundred_deep(
    tmp_path, monkeypatch
):
    """20,000 outputs, 100 directories deep: the check resolves each distinct directory once
    (a pairwise check would compare 200 million pairs). Its speed is benchmarks/' business."""
    import flow.graph

    resolved: list[str] = []
    real = os.path.realpath
    monkeypatch.setattr(
        flow.graph.os.path, "realpath", lambda p, **kw: resolved.append(p) or real(p, **kw)
    )
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        graph = TaskGraph()
        deep = "/".join(f"d{i}" for i in range(100))
        for i in range(10_000):
            graph.outputs[f"T{i}"] = [LocalTarget(f"{deep}/f{i}.txt")]
            graph.outputs[f"U{i}"] = [LocalTarget(f"out/{i}/data.txt")]
        _check_outputs(graph)
        assert len(resolved) <= 10_000 + 2  # out/<i> for each i, the deep directory, the root
        graph.outputs["Z"] = [LocalTarget("d0/d1")]
        with pytest.raises(GraphError, match=r"inside d0/d1, the output of Z"):
            _check_outputs(graph)
    finally:
        os.chdir(cwd)


# -- outputs that are the project, or hold .flow/ -------------------------------------------------
PROJECT_OUTPUT = """
import os

class Everything(flow.Task):
    def output(self):
        return flow.LocalTarget(OUT)
    def run(self):
        os.makedirs("made", exist_ok=True)
"""


@pytest.mark.parametrize("out", [".", "./", "sub/..", "..", "ABS", "ABS_PARENT"])
def test_an_output_that_is_the_project_or_holds_flows_store_is_refused(project, out):
    """output() of `.`, the project's absolute path, `..`: exit 2, even with -B, nothing backed up."""
    if out == "ABS":
        out = str(project.root)
    elif out == "ABS_PARENT":
        out = str(project.root.parent)
    project.flowfile(PROJECT_OUTPUT.replace("OUT", repr(out)))
    for args in (["-n"], [], ["-B"], ["-t"]):
        _refused(project.run(*args), "Everything()", ".flow")
    assert not (project.root / ".flow" / "backup").exists()


@pytest.mark.parametrize("out", [".flow", ".flow/x.txt", "link/x.txt"])
def test_an_output_inside_the_flow_store_is_refused_however_it_is_spelled(project, out):
    """`.flow`, `.flow/x.txt`, or `link/x.txt` with link -> .flow: exit 2 naming the path."""
    (project.root / ".flow").mkdir()
    os.symlink(".flow", project.root / "link")
    project.flowfile(PROJECT_OUTPUT.replace("OUT", repr(out)))
    _refused(project.run("-B"), "Everything()", out, ".flow")


# -- a user's exists() or complete() that raises ---------------------------------------------------
RAISING = """
import os

class Broken(flow.LocalTarget):
    def exists(self):
        if os.path.exists("break.marker"):
            raise RuntimeError("catalog unreachable")
        return os.path.exists(self.path)

class Opaque(flow.Target):
    def exists(self):
        raise RuntimeError("no such bucket")

class Source(flow.ExternalTask):
    def output(self):
        return Opaque()

class FromSource(flow.Task):
    def requires(self):
        return Source()
    def output(self):
        return flow.LocalTarget("from-source.txt")
    def run(self):
        pass

class Judged(flow.Task):
    def complete(self):
        return {}["no such key"]
    def run(self):
        pass

class JudgedExternal(flow.ExternalTask):
    def complete(self):
        raise ValueError("cannot tell")

class Up(flow.Task):
    def output(self):
        return flow.LocalTarget("up.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("up")
        open("break.marker", "w").close()

class Down(flow.Task):
    def requires(self):
        return Up()
    def output(self):
        return Broken("down.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("down")

class BreaksItself(flow.Task):
    def output(self):
        return Broken("self.txt")
    def run(self):
        open("break.marker", "w").close()
"""


def _user_error(proc, code: int, *names: str) -> None:
    """Exit ``code``; the user's frame and exception shown, none of flow's frames."""
    assert proc.returncode == code, proc.stdout + proc.stderr
    err = proc.stderr
    assert "Flowfile.py" in err, err
    assert "/flow/" not in err and "site-packages" not in err, err
    assert len(err.strip().splitlines()) <= 12, err
    for name in names:
        assert name in err, (name, err)


@pytest.mark.parametrize(
    "task,names",
    [
        ("FromSource", ["Source()", "exists()", "RuntimeError: no such bucket"]),
        ("Judged", ["Judged().complete()", "KeyError"]),
        ("JudgedExternal", ["JudgedExternal().complete()", "ValueError: cannot tell"]),
        ("Down", ["Down()", "exists()", "down.txt", "RuntimeError: catalog unreachable"]),
    ],
)
def test_a_user_exists_or_complete_that_raises_while_planning_shows_only_user_frames(
    project, task, names
):
    """exists() of an ExternalTask's output, complete() of a task or an external, exists() of a
    LocalTarget subclass: exit 2 while planning, naming the task and method, the user's frames only."""
    project.flowfile(RAISING)
    project.write("break.marker", "")
    for args in (["-n", task], [task], ["-t", task], ["--json", task]):
        _user_error(project.run(*args), 2, *names)
    assert not (project.root / "up.txt").exists()


def test_a_user_exists_that_raises_after_a_task_ran_fails_that_task_with_exit_1(project):
    """Up runs and makes Down's exists() raise: Down fails (exit 1), Up stays recorded."""
    project.flowfile(RAISING)
    proc = project.run("Down")
    _user_error(proc, 1, "Down()", "exists()", "RuntimeError: catalog unreachable")
    assert "[1/2] Up()" in proc.stdout
    (project.root / "break.marker").unlink()
    assert project.ran("Down") == ["Down()"]


def test_a_user_exists_that_raises_in_the_post_run_output_check_fails_the_task(project):
    """run() makes its own output's exists() raise: the task fails (exit 1), user frames only."""
    project.flowfile(RAISING)
    for args in (["BreaksItself"], ["-j", "2", "BreaksItself"]):
        (project.root / "break.marker").unlink(missing_ok=True)
        _user_error(project.run(*args), 1, "BreaksItself()", "RuntimeError: catalog unreachable")


# -- unreadable inputs and outputs ------------------------------------------------------------------
UNREADABLE = """
import os

class Concat(flow.Task):
    def requires(self):
        return flow.Files("data/*")
    def output(self):
        return flow.LocalTarget("out/all.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write(str(len(self.input())))

class Down(flow.Task):
    def requires(self):
        return Concat()
    def output(self):
        return flow.LocalTarget("out/down.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write(self.input().open().read())

class Locks(flow.Task):
    def output(self):
        return flow.LocalTarget("out/locked.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("secret")
        os.chmod(self.output().path, 0)

class Tree(flow.Task):
    def output(self):
        return flow.LocalTarget("out/tree")
    def run(self):
        os.makedirs("out/tree/sub")
        with open("out/tree/sub/leaf.txt", "w") as f:
            f.write("leaf")
"""


class _Unprivileged(Project):
    """A project whose `flow` runs as ``prefix`` (setpriv to nobody) in a directory it can reach."""

    prefix: list[str] = []

    def run(self, *args: str, timeout: float = 60, **_: object) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*self.prefix, *FLOW, *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, "NO_COLOR": "1"},
        )


@pytest.fixture
def unprivileged():
    """A project whose `flow` lacks root's power to read anything (chmod 000 means nothing to
    root): run as `nobody` through setpriv when the tests run as root, else as we are."""
    project = _Unprivileged(Path(tempfile.mkdtemp(prefix="flow-unreadable-")))
    if os.geteuid() == 0:
        if shutil.which("setpriv") is None:
            pytest.skip("running as root without setpriv: cannot make a file unreadable")
        project.prefix = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    # tmp_path's parents are private to root: nobody needs a directory it can reach and write.
    os.chmod(project.root, 0o777)
    yield project
    subprocess.run(["chmod", "-R", "u+rwx", str(project.root)], check=False)
    shutil.rmtree(project.root, ignore_errors=True)


def _unreadable(proc, code: int, path: str) -> None:
    """Exit ``code``, one error line naming ``path``, no traceback."""
    assert proc.returncode == code, proc.stdout + proc.stderr
    lines = [ln for ln in proc.stderr.splitlines() if "cannot read" in ln]
    assert len(lines) == 1 and path in lines[0], proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr


def test_an_unreadable_input_is_one_line_naming_it_with_exit_2(unprivileged):
    """data/one.txt made unreadable after a build: -n and a run exit 2 naming it; nothing runs."""
    project = unprivileged
    project.flowfile(UNREADABLE)
    project.write("data/one.txt", "one\n")
    assert project.run("Down").returncode == 0
    (project.root / "data/one.txt").write_text("uno\n")
    os.chmod(project.root / "data/one.txt", 0)
    for args in (["-n", "Down"], ["Down"], ["-t", "Down"], ["--check", "Down"]):
        _unreadable(project.run(*args), 2, "data/one.txt")
    assert project.read("out/all.txt") == "1"


def test_an_unreadable_output_or_directory_is_one_line_naming_it_with_exit_2(unprivileged):
    """An output made unreadable, or a directory inside a directory output: exit 2 naming it."""
    project = unprivileged
    project.flowfile(UNREADABLE)
    project.write("data/one.txt", "one\n")
    assert project.run("Down").returncode == 0
    os.chmod(project.root / "out/all.txt", 0)
    _unreadable(project.run("-n", "Down"), 2, "out/all.txt")
    _unreadable(project.run("Down"), 2, "out/all.txt")
    assert project.run("Tree").returncode == 0
    os.chmod(project.root / "out/tree/sub", 0)
    _unreadable(project.run("-n", "Tree"), 2, "out/tree/sub")


def test_an_output_unreadable_after_its_task_ran_fails_the_task_with_exit_1(unprivileged):
    """run() leaves its output unreadable: that task fails naming the path, exit 1, the output is
    removed, and the next run does not mistake it for a killed run."""
    project = unprivileged
    project.flowfile(UNREADABLE)
    proc = project.run("Locks")
    _unreadable(proc, 1, "out/locked.txt")
    assert "FAILED Locks()" in proc.stderr
    assert not (project.root / "out/locked.txt").exists()
    again = project.run("Locks")
    assert "killed" not in again.stderr, again.stderr


def test_a_named_pipe_or_an_io_error_as_input_is_an_error_not_a_hang(project):
    """A FIFO matching an input pattern would block a reader forever; /proc/self/mem fails with
    EIO on read: both are one line naming the path, exit 2, promptly."""
    project.flowfile(UNREADABLE)
    project.write("data/one.txt", "one\n")
    os.mkfifo(project.root / "data/pipe.txt")
    _unreadable(project.run("-n", "Down", timeout=20), 2, "data/pipe.txt")
    _unreadable(project.run("Down", timeout=20), 2, "data/pipe.txt")
    os.unlink(project.root / "data/pipe.txt")
    if not os.path.exists("/proc/self/mem"):
        return
    os.symlink("/proc/self/mem", project.root / "data/mem.txt")
    _unreadable(project.run("-n", "Down", timeout=20), 2, "data/mem.txt")


# -- -t after a hand edit ---------------------------------------------------------------------------
THREE = """
class Numbers(flow.Task):
    def output(self):
        return flow.LocalTarget("out/numbers.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("1\\n2\\n3\\n")

class Squares(flow.Task):
    def requires(self):
        return Numbers()
    def output(self):
        return flow.LocalTarget("out/squares.txt")
    def run(self):
        with self.input().open() as fin, self.output().open("w") as fout:
            fout.write("".join(f"{int(n) ** 2}\\n" for n in fin))

class Total(flow.Task):
    def requires(self):
        return Squares()
    def output(self):
        return flow.LocalTarget("out/total.txt")
    def run(self):
        with self.input().open() as fin, self.output().open("w") as fout:
            fout.write(str(sum(int(n) for n in fin)))

default = Total
"""


def _would_run(project, *args: str) -> dict[str, str]:
    """`flow -n --json`: task id -> first reason kind, for the tasks that would run."""
    return {t: p["reasons"][0]["kind"] for t, p in project.plan(*args).items() if p["would_run"]}


@pytest.mark.parametrize("warned_by", ["run", "dry-run", "dry-run-json"])
def test_touch_accepts_a_hand_edit_and_what_was_built_from_the_old_copy_rebuilds(
    project, warned_by
):
    """Build, edit the middle output by hand, flow warns advising -t, `flow -t`: the edit is the
    record (no warning), and what was built from the old copy rebuilds from the edit; nothing else."""
    project.flowfile(THREE)
    assert project.ran() == ["Numbers()", "Squares()", "Total()"]
    project.write("out/squares.txt", "100\n")
    warned = project.run("-n") if warned_by.startswith("dry-run") else project.run()
    assert "-t" in warned.stderr and "out/squares.txt" in warned.stderr
    if warned_by == "run":  # the run already rebuilt Total from the edit, as the docs say
        assert project.read("out/total.txt") == "100"
    touched = project.run(*(["--json"] if warned_by.endswith("json") else []), "-t")
    assert touched.returncode == 0, touched.stderr
    assert project.read("out/squares.txt") == "100\n"
    after = project.run("-n", "--json")
    assert "modified by hand" not in after.stderr
    if warned_by.startswith("dry-run"):
        if warned_by.endswith("json"):
            doc = json.loads(touched.stdout)
            assert doc["left_to_rebuild"] == {"Total()": ["out/squares.txt"]}, doc
            assert doc["touched"] == ["Numbers()", "Squares()"]
        else:
            assert "left Total()" in touched.stdout  # -t says what it left to rebuild
        assert _would_run(project) == {"Total()": "input-changed"}
        assert project.ran() == ["Total()"]
    assert project.read("out/total.txt") == "100"
    assert project.read("out/squares.txt") == "100\n"
    assert _would_run(project) == {}
    assert project.run().stderr == ""


def test_touch_still_accepts_harmless_changes_below_a_hand_edit(project):
    """-t with a harmless code change marks everything up to date (make's -t); a hand edit of the
    first output is accepted, and only what was built from it rebuilds."""
    project.flowfile(THREE)
    assert project.ran() == ["Numbers()", "Squares()", "Total()"]
    project.flowfile(THREE.replace("sum(int(n) for n in fin)", "sum(map(int, fin))"))
    assert _would_run(project) == {"Total()": "code-changed"}
    assert project.run("-t").returncode == 0
    assert _would_run(project) == {}
    project.write("out/numbers.txt", "5\n")
    assert project.run("-t").returncode == 0
    assert _would_run(project) == {"Squares()": "input-changed", "Total()": "upstream"}
    assert project.ran() == ["Squares()", "Total()"]
    assert project.read("out/total.txt") == "25"


# -- adoption: outputs with no record ---------------------------------------------------------------
TOP = """
import collections

class CountWords(flow.Task):
    def requires(self):
        return flow.Files("notes/*.txt")
    def output(self):
        return flow.LocalTarget("out/counts.txt")
    def run(self):
        counts = collections.Counter()
        for target in self.input():
            with target.open() as f:
                counts.update(f.read().split())
        with self.output().open("w") as out:
            for word, n in sorted(counts.items()):
                out.write(f"{word} {n}\\n")

class TopWords(flow.Task):
    k = flow.IntParameter(default=3)
    def requires(self):
        return CountWords()
    def output(self):
        return flow.LocalTarget(OUT)
    def run(self):
        with self.input().open() as f:
            pairs = [line.split() for line in f]
        pairs.sort(key=lambda p: (-int(p[1]), p[0]))
        with self.output().open("w") as out:
            out.write(" ".join(w for w, _ in pairs[: self.k]))

default = TopWords
"""


def _top_project(project, out: str = '"out/top.txt"'):
    project.flowfile(TOP.replace("OUT", out))
    project.write("notes/a.txt", "the cat sat on the mat\n")
    project.write("notes/b.txt", "the dog sat\n")


def _forget(project) -> None:
    """rm -rf .flow"""
    shutil.rmtree(project.root / ".flow")


def test_deleting_flow_never_passes_off_output_built_with_other_parameters(project):
    """flow TopWords k=3; rm -rf .flow; flow TopWords k=5: out/top.txt (which names no k) is
    rebuilt with k=5 (`no-record`), not adopted as k=5; CountWords, which has no parameters, is."""
    _top_project(project)
    assert project.ran("TopWords", "k=3") == ["CountWords()", "TopWords(k=3)"]
    _forget(project)
    plan = project.plan("TopWords", "k=5")
    assert plan["TopWords(k=5)"]["would_run"]
    reason = plan["TopWords(k=5)"]["reasons"][0]
    assert reason["kind"] == "no-record" and "k" in reason["detail"], reason
    assert plan["CountWords()"]["adopt"] and not plan["CountWords()"]["would_run"]
    dry = project.run("-n", "TopWords", "k=5")
    assert "adopt" in dry.stdout and "CountWords()" in dry.stdout
    proc = project.run("TopWords", "k=5")
    assert proc.returncode == 0, proc.stderr
    assert "TopWords(k=5)" in proc.stdout and "no-record" in proc.stdout
    assert "adopted" in proc.stderr and "CountWords()" in proc.stderr  # said, not silent
    assert project.read("out/top.txt") == "the sat cat dog mat"
    assert project.ran("TopWords", "k=5") == []
    assert project.run("TopWords", "k=5").stderr == ""  # adopted once, recorded, quiet after


@pytest.mark.parametrize(
    "out,adopted",
    [
        ('f"out/top_{self.k}.txt"', True),
        ('f"out/top{self.k}.txt"', True),
        ('f"out/k={self.k}/top.txt"', True),
        ('f"out/top_{self.k}0.txt"', False),  # names 30, not 3
        ('"out/v3/top.txt"', True),  # coincidence: the rule cannot see that 3 is not k here
        ('"out/top.txt"', False),
    ],
)
def test_an_output_is_adopted_only_when_its_path_names_every_significant_parameter(
    project, out, adopted
):
    """After rm -rf .flow, TopWords(k=3) is adopted when its output path spells k=3 as a token of
    its own, and rebuilt (`no-record`) otherwise."""
    _top_project(project, out)
    assert project.ran() == ["CountWords()", "TopWords(k=3)"]
    _forget(project)
    entry = project.plan()["TopWords(k=3)"]
    assert entry["adopt"] is adopted and entry["would_run"] is not adopted, entry
    code, doc = project.run_json()
    assert code == 0
    ran = [t["task"] for t in doc["tasks"] if t["status"] == "ran"]
    assert ran == ([] if adopted else ["TopWords(k=3)"])
    result = {t["task"]: t for t in doc["tasks"]}
    assert result["CountWords()"].get("adopted") is True
    assert doc["summary"]["adopted"] == (2 if adopted else 1)


def test_an_output_whose_inputs_name_the_parameter_but_it_does_not_is_not_adopted(project):
    """The seed: SquaredNumbers(n) writes out/squares.txt from out/numbers_upto_{n}.txt. Both
    inputs exist, squares.txt was made with n=20; after rm -rf .flow, n=10 rebuilds it."""
    from conftest import SEED

    project.flowfile(SEED)
    assert project.run("SquaredNumbers", "n=10").returncode == 0
    assert project.run("SquaredNumbers", "n=20").returncode == 0
    _forget(project)
    for name in ("out/numbers_upto_10.txt", "out/numbers_upto_20.txt"):
        os.utime(project.root / name, ns=(1, 1))  # older than squares.txt: make would adopt
    assert project.ran("SquaredNumbers", "n=10") == ["SquaredNumbers(n=10)"]
    assert project.read("out/squares.txt").splitlines()[-1] == "10: 100"


def test_no_output_is_adopted_after_the_manifest_was_found_unreadable(project):
    """A corrupt manifest is set aside: what built the outputs is lost, so -n shows every task as
    `no-record` (naming the manifest) and the run rebuilds them all, parameters or not."""
    _top_project(project, 'f"out/top_{self.k}.txt"')
    assert project.ran() == ["CountWords()", "TopWords(k=3)"]
    (project.root / ".flow" / "manifest.sqlite").write_bytes(b"not a database\n" * 100)
    plan = project.plan()
    for tid in ("CountWords()", "TopWords(k=3)"):
        assert plan[tid]["would_run"] and not plan[tid]["adopt"], plan[tid]
    assert "manifest" in plan["CountWords()"]["reasons"][0]["detail"]
    assert project.run("--check").returncode == 1
    assert project.ran() == ["CountWords()", "TopWords(k=3)"]
    assert project.ran() == []
