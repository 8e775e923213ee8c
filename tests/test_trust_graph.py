"""Trust: outputs two tasks would both write, adoption only when nothing is known to differ,
-t after a hand edit, and a user's exists()/complete() or an unreadable file failing cleanly."""

from __future__ import annotations

import os
import time

import pytest

from flow.errors import GraphError
from flow.graph import TaskGraph, _check_outputs
from flow.target import LocalTarget


def _refused(proc, *names: str) -> None:
    """Exit 2, a short error naming every one of ``names``, no traceback, nothing ran."""
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


def test_the_output_check_stays_linear_at_ten_thousand_outputs_a_hundred_deep(tmp_path):
    """20,000 outputs (half of them directories holding the other half's parents): well under a
    second, where a pairwise check would take minutes."""
    cwd = os.getcwd()
    os.chdir(tmp_path)
    try:
        graph = TaskGraph()
        deep = "/".join(f"d{i}" for i in range(100))
        for i in range(10_000):
            graph.outputs[f"T{i}"] = [LocalTarget(f"{deep}/f{i}.txt")]
            graph.outputs[f"U{i}"] = [LocalTarget(f"out/{i}/data.txt")]
        started = time.perf_counter()
        _check_outputs(graph)
        assert time.perf_counter() - started < 2.0
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
