"""Dynamic requirements are part of the trace: what a run() yielded is recorded with its outputs,
and the next run puts it back into the graph, decides it, and treats its outputs as inputs."""

from __future__ import annotations

import json
import sqlite3

# Top's run() yields Part; Part requires the external src.txt.
PART_AND_TOP = """
class Src(flow.ExternalTask):
    def output(self):
        return flow.LocalTarget("src.txt")

class Part(flow.Task):
    def requires(self):
        return Src()
    def output(self):
        return flow.LocalTarget("part.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write(self.input().open().read().upper())

class Top(flow.Task):
    def output(self):
        return flow.LocalTarget("top.txt")
    def run(self):
        part = yield Part()
        with self.output().open("w") as f:
            f.write(part.open().read() + "!")
"""


def built(project, flowfile: str = PART_AND_TOP, src: str = "hello", *args: str):
    project.flowfile(flowfile)
    project.write("src.txt", src)
    code, doc = project.run_json(*args, "Top")
    assert code == 0, doc
    return project


def test_editing_the_input_of_a_dynamic_requirement_makes_the_task_that_yielded_it_stale(project):
    """Top yielded Part last time: an edit of Part's input shows Top stale through Part, and a
    run rebuilds Part, then Top."""
    built(project)
    assert project.ran("Top") == []
    project.write("src.txt", "world")
    plan = project.plan("Top")
    assert plan["Part()"]["would_run"]
    assert plan["Part()"]["reasons"][0] == {"kind": "input-changed", "detail": "src.txt"}
    assert plan["Top()"]["would_run"]
    assert plan["Top()"]["reasons"][0]["kind"] == "upstream"
    assert project.ran("Top") == ["Part()", "Top()"]
    assert project.read("top.txt") == "WORLD!"
    assert project.ran("Top") == []


def test_a_dry_run_lists_the_recorded_dynamic_requirements_in_the_plan(project):
    """-n --json: before any run, run() has not said what it yields; afterwards the plan holds
    the recorded dynamic requirement, as a dependency of the task that yielded it."""
    project.flowfile(PART_AND_TOP)
    project.write("src.txt", "hello")
    assert set(project.plan("Top")) == {"Top()"}
    assert project.ran("Top") == ["Part()", "Top()"]
    plan = project.plan("Top")
    assert set(plan) == {"Src()", "Part()", "Top()"}
    assert plan["Top()"]["dynamic"] == ["Part()"]
    assert "Part()" in plan["Top()"]["deps"]
    assert not any(p["would_run"] for p in plan.values())


def test_a_dynamic_requirement_rebuilt_with_identical_output_does_not_rerun_its_parent(project):
    """Early cutoff through a dynamic requirement: Part reruns (its input changed) but writes
    the same bytes, so Top, which yielded it, stays up to date."""
    built(project, src="hello")
    project.write("src.txt", "HELLO")  # Part upper-cases it: the same part.txt
    assert project.ran("Top") == ["Part()"]
    assert project.read("top.txt") == "HELLO!"
    assert project.ran("Top") == []


CHAIN = """
class Src(flow.ExternalTask):
    def output(self):
        return flow.LocalTarget("src.txt")

class Leaf(flow.Task):
    def requires(self):
        return Src()
    def output(self):
        return flow.LocalTarget("leaf.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write(self.input().open().read() + "<leaf")

class Mid(flow.Task):
    def output(self):
        return flow.LocalTarget("mid.txt")
    def run(self):
        leaf = yield Leaf()
        with self.output().open("w") as f:
            f.write(leaf.open().read() + "<mid")

class Top(flow.Task):
    def output(self):
        return flow.LocalTarget("top.txt")
    def run(self):
        mid = yield Mid()
        with self.output().open("w") as f:
            f.write(mid.open().read() + "<top")
"""


def test_two_levels_of_dynamic_requirements_are_traced(project):
    """Top yields Mid, Mid yields Leaf: an edit of Leaf's input reaches Top through both."""
    built(project, CHAIN)
    assert project.read("top.txt") == "hello<leaf<mid<top"
    assert project.ran("Top") == []
    project.write("src.txt", "bye")
    plan = project.plan("Top")
    assert [t for t, p in plan.items() if p["would_run"]] == ["Leaf()", "Mid()", "Top()"]
    assert plan["Mid()"]["dynamic"] == ["Leaf()"]
    assert project.ran("Top") == ["Leaf()", "Mid()", "Top()"]
    assert project.read("top.txt") == "bye<leaf<mid<top"
    assert project.ran("Top") == []


CHOSEN = """
class Which(flow.ExternalTask):
    def output(self):
        return flow.LocalTarget("which.txt")

class Part(flow.Task):
    i = flow.IntParameter()
    def output(self):
        return flow.LocalTarget(f"part{self.i}.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write(open(f"src{self.i}.txt").read())

class Top(flow.Task):
    def requires(self):
        return Which()
    def output(self):
        return flow.LocalTarget("top.txt")
    def run(self):
        i = int(self.input().open().read())
        part = yield Part(i=i)
        with self.output().open("w") as f:
            f.write(part.open().read())
"""


def test_a_changed_set_of_yielded_tasks_is_built_and_recorded_in_place_of_the_old(project):
    """Top yields Part(i=1), then (which.txt edited) Part(i=2): the new set is built and
    recorded; Part(i=1) leaves the graph."""
    project.flowfile(CHOSEN)
    project.write("src1.txt", "one")
    project.write("src2.txt", "two")
    project.write("which.txt", "1")
    assert project.ran("Top") == ["Part(i=1)", "Top()"]
    project.write("which.txt", "2")
    plan = project.plan("Top")
    # A dry run knows only what the last run yielded: run() alone says what it yields now.
    assert plan["Top()"]["dynamic"] == ["Part(i=1)"]
    assert plan["Top()"]["reasons"][0] == {"kind": "input-changed", "detail": "which.txt"}
    assert project.ran("Top") == ["Part(i=2)", "Top()"]
    assert project.read("top.txt") == "two"
    plan = project.plan("Top")
    assert "Part(i=1)" not in plan
    assert plan["Top()"]["dynamic"] == ["Part(i=2)"]
    assert project.ran("Top") == []


def test_a_recorded_dynamic_requirement_whose_class_is_gone_makes_its_parent_stale(project):
    """Part is renamed to Piece: the recorded Part() cannot be re-created. Top is stale, with a
    reason naming it; nothing crashes, and the new set is recorded."""
    built(project)
    project.flowfile(PART_AND_TOP.replace("Part(", "Piece("))
    proc = project.run("-n", "Top")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    plan = project.plan("Top")
    details = [r["detail"] for r in plan["Top()"]["reasons"] if r["kind"] == "input-changed"]
    assert any("Part() (yielded by its last run) cannot be re-created" in d for d in details)
    assert "no task class Part" in " ".join(details)
    assert project.ran("Top") == ["Piece()", "Top()"]
    assert project.ran("Top") == []


def test_a_recorded_dynamic_requirement_with_a_parameter_gone_makes_its_parent_stale(project):
    """Part(i=1) was recorded; Part's parameter is now called n: Top is stale, saying why."""
    project.flowfile(CHOSEN)
    project.write("src1.txt", "one")
    project.write("which.txt", "1")
    assert project.ran("Top") == ["Part(i=1)", "Top()"]
    project.flowfile(
        CHOSEN.replace("i = flow.IntParameter()", "n = flow.IntParameter()")
        .replace("self.i}", "self.n}")
        .replace("Part(i=i)", "Part(n=i)")
    )
    details = [r["detail"] for r in project.plan("Top")["Top()"]["reasons"]]
    assert any("Part has no parameter i any more" in d for d in details), details
    assert project.ran("Top") == ["Part(n=1)", "Top()"]


def test_dynamic_requirements_are_traced_under_several_jobs(project):
    """-j 2: the recorded Part runs in a worker before Top, which is driven in flow's process."""
    built(project, PART_AND_TOP, "hello", "-j", "2")
    project.write("src.txt", "again")
    assert project.ran("-j", "2", "Top") == ["Part()", "Top()"]
    assert project.read("top.txt") == "AGAIN!"
    assert project.ran("-j", "2", "Top") == []


def test_a_damaged_row_of_dynamic_requirements_is_moved_aside_like_any_damaged_row(project):
    """A row flow did not write: the manifest is moved aside with a warning; the run goes on."""
    built(project)
    db = sqlite3.connect(project.root / ".flow" / "manifest.sqlite")
    with db:
        db.execute("UPDATE dynamic SET specs = '[{\"tid\": 3}]'")
    db.close()
    proc = project.run("Top")
    assert proc.returncode == 0, proc.stderr
    assert "moved it to" in proc.stderr
    assert project.ran("Top") == []


def test_a_manifest_from_before_dynamic_requirements_is_read_and_upgraded(project):
    """An older manifest has no dynamic table: a dry run reads it as it is; a real run adds it."""
    built(project)
    db = sqlite3.connect(project.root / ".flow" / "manifest.sqlite")
    with db:
        db.execute("DROP TABLE dynamic")
    db.close()
    proc = project.run("-n", "Top")
    assert proc.returncode == 0, proc.stderr
    assert "warning" not in proc.stderr
    # Its dynamic requirements unknown, Top's recorded inputs differ: it runs to say them again.
    assert project.ran("Top") == ["Top()"]
    assert project.plan("Top")["Top()"]["dynamic"] == ["Part()"]
    assert project.ran("Top") == []


def test_a_recorded_dynamic_requirement_missing_its_external_input_does_not_block(project):
    """Top yielded Part(i=1), whose source is now gone, and would yield Part(i=2) now: the
    missing source of a task Top may not need again makes Top stale, not the run refused."""
    project.flowfile(
        CHOSEN.replace(
            """    def run(self):
        with self.output().open("w") as f:
            f.write(open(f"src{self.i}.txt").read())""",
            """    def requires(self):
        return Source(i=self.i)
    def run(self):
        with self.output().open("w") as f:
            f.write(self.input().open().read())""",
        )
        + """
class Source(flow.ExternalTask):
    i = flow.IntParameter()
    def output(self):
        return flow.LocalTarget(f"src{self.i}.txt")
"""
    )
    project.write("src1.txt", "one")
    project.write("src2.txt", "two")
    project.write("which.txt", "1")
    assert project.ran("Top") == ["Part(i=1)", "Top()"]
    (project.root / "src1.txt").unlink()
    project.write("which.txt", "2")
    details = [r["detail"] for r in project.plan("Top")["Top()"]["reasons"]]
    assert any("needs Source(i=1), which is missing" in d for d in details), details
    assert project.ran("Top") == ["Part(i=2)", "Top()"]
    assert project.read("top.txt") == "two"


def test_the_graph_shows_a_recorded_dynamic_requirement_as_a_dashed_edge(project):
    """--graph: the edge from Part to Top, which yielded it, is drawn dashed and listed."""
    built(project)
    proc = project.run("--graph", "json", "Top")
    nodes = {n["task"]: n for n in json.loads(proc.stdout)["nodes"]}
    assert nodes["Top()"]["dynamic"] == ["Part()"]
    assert '"Part()" -> "Top()" [style=dashed];' in project.run("--graph", "dot", "Top").stdout
    assert "-.->" in project.run("--graph", "mermaid", "Top").stdout


def test_touch_keeps_the_recorded_dynamic_requirements(project):
    """-t records outputs as up to date without running: what run() yielded stays recorded."""
    built(project)
    assert project.run("-t", "Top").returncode == 0
    assert project.plan("Top")["Top()"]["dynamic"] == ["Part()"]
    project.write("src.txt", "after touch")
    assert project.ran("Top") == ["Part()", "Top()"]


def test_a_private_parameter_of_a_yielded_task_is_never_written_to_the_store(project):
    """A yielded task's private value stays out of .flow/. So flow cannot re-create that task
    (a default or configured value might not be the one run() yields): the parent runs each
    time and yields it again, saying why, and is never passed off as up to date."""
    project.flowfile(
        PART_AND_TOP.replace(
            "class Part(flow.Task):\n",
            "class Part(flow.Task):\n"
            "    token = flow.Parameter(default='hunter2', visibility=flow.parameter."
            "ParameterVisibility.PRIVATE)\n",
        )
    )
    project.write("src.txt", "hello")
    assert project.ran("Top") == ["Part()", "Top()"]
    for name in (".flow/manifest.sqlite", ".flow/manifest.sqlite-wal"):
        path = project.root / name
        assert not path.exists() or b"hunter2" not in path.read_bytes()
    reasons = project.plan("Top")["Top()"]["reasons"]
    assert any("private parameter (token)" in r["detail"] for r in reasons), reasons
    project.write("src.txt", "world")
    assert project.ran("Top") == ["Part()", "Top()"]
    assert project.read("top.txt") == "WORLD!"
