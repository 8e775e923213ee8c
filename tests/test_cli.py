"""The `flow` command line end to end: a tiny Flowfile in a tmp dir, flow run as a subprocess."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from conftest import DEADLINE, FLOW, SEED, wait_until

# Frames of flow's own package must never reach the user.
FLOW_FRAMES = re.compile(r"(site-packages/flow/|src/flow/)")


def statuses(doc: dict) -> dict[str, str]:
    return {t["task"]: t["status"] for t in doc["tasks"]}


def python(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
    return subprocess.run(
        [sys.executable, *args], cwd=cwd, capture_output=True, text=True, timeout=60, env=full_env
    )


# -- discovery ------------------------------------------------------------------------------------
def test_flowfile_in_a_parent_directory_is_found_and_paths_resolve_beside_it(project):
    project.flowfile(SEED)
    sub = project.root / "src" / "deep"
    sub.mkdir(parents=True)
    proc = project.run("SquaredNumbers", "n=3", cwd=sub)
    assert proc.returncode == 0, proc.stderr
    assert project.read("out/squares.txt") == "1: 1\n2: 4\n3: 9\n"
    assert (project.root / ".flow").is_dir()
    assert not (sub / "out").exists()
    assert not (sub / ".flow").exists()


def test_flowfile_in_the_current_directory_wins_over_a_parent(project):
    project.flowfile("class Outer(flow.Task):\n    def run(self): pass\n")
    inner = project.root / "inner"
    project.flowfile("class Inner(flow.Task):\n    def run(self): pass\n", name="inner/Flowfile.py")
    proc = project.run("--json", cwd=inner)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert [t["task"] for t in doc["tasks"]] == ["Inner()"]
    assert (inner / ".flow").is_dir()


def test_dash_f_loads_any_python_file_and_resolves_paths_against_its_directory(project):
    project.flowfile(SEED, name="pipelines/numbers.py")
    proc = project.run("-f", "pipelines/numbers.py", "SquaredNumbers", "n=2")
    assert proc.returncode == 0, proc.stderr
    assert project.read("pipelines/out/squares.txt") == "1: 1\n2: 4\n"
    assert (project.root / "pipelines" / ".flow").is_dir()
    assert not (project.root / "out").exists()


def test_dash_f_loads_a_file_without_py_suffix(project):
    project.flowfile(SEED, name="Buildfile")
    proc = project.run("--flowfile", "Buildfile", "SquaredNumbers", "--n", "2")
    assert proc.returncode == 0, proc.stderr
    assert project.read("out/squares.txt") == "1: 1\n2: 4\n"


def test_dash_C_changes_directory_before_finding_the_flowfile(project):
    project.flowfile(SEED, name="proj/Flowfile.py")
    elsewhere = project.root / "elsewhere"
    elsewhere.mkdir()
    proc = project.run("-C", str(project.root / "proj"), "SquaredNumbers", "n=1", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr
    assert project.read("proj/out/squares.txt") == "1: 1\n"
    assert not (elsewhere / "out").exists()


def test_no_flowfile_anywhere_exits_2_with_a_clear_message(project):
    empty = project.root / "empty"
    empty.mkdir()
    proc = project.run("Anything", cwd=empty)
    assert proc.returncode == 2
    assert "Flowfile" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize(
    "args, needle",
    [
        (["-C", "no/such/dir"], "no/such/dir"),
        (["-f", "missing.py"], "missing.py"),
        (["-f", "empty.py"], "empty.py"),
        (["-f", "bad_default.py"], "Nope"),
    ],
)
def test_unusable_flowfile_or_directory_exits_2_naming_it(project, args, needle):
    project.flowfile("", name="empty.py")
    project.flowfile(
        "class A(flow.Task):\n    def run(self): pass\ndefault = 'Nope'\n", name="bad_default.py"
    )
    proc = project.run(*args)
    assert proc.returncode == 2
    assert needle in proc.stderr
    assert "Traceback" not in proc.stderr


# -- task names -----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["SquaredNumbers", "squarednumbers", "SQUAREDNUMBERS", "squared-numbers"]
)
def test_task_name_is_matched_exactly_case_insensitively_or_in_kebab_case(project, name):
    project.flowfile(SEED)
    assert project.ran(name, "n=2") == ["PrintNumbers(n=2)", "SquaredNumbers(n=2)"]


@pytest.mark.parametrize("name", ["HTTPFetch", "httpfetch", "http-fetch"])
def test_kebab_case_name_treats_an_acronym_as_one_word(project, name):
    project.flowfile(
        """
        class HTTPFetch(flow.Task):
            def output(self):
                return flow.LocalTarget("fetched.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write("page")
        """
    )
    assert project.ran(name) == ["HTTPFetch()"]


@pytest.mark.parametrize("name", ["examples.Bar", "Bar", "bar"])
def test_namespaced_task_is_usable_by_full_and_short_name(project, name):
    project.flowfile(
        """
        class Bar(flow.Task):
            task_namespace = "examples"
            def output(self):
                return flow.LocalTarget("bar.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write("bar")
        """
    )
    assert project.ran(name) == ["examples.Bar()"]
    assert project.read("bar.txt") == "bar"


def test_unknown_task_exits_2_and_suggests_the_nearest_name(project):
    project.flowfile(SEED)
    proc = project.run("SquaredNumber")
    assert proc.returncode == 2
    assert "SquaredNumbers" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (project.root / "out").exists()


@pytest.mark.parametrize("default", ["PrintNumbers", '"PrintNumbers"'])
def test_module_level_default_names_the_task_built_when_none_is_given(project, default):
    project.flowfile(SEED + f"\ndefault = {default}\n")
    assert project.ran() == ["PrintNumbers(n=10)"]


def test_without_default_the_first_task_class_defined_is_built(project):
    project.flowfile(
        """
        class Zeta(flow.Task):
            def output(self):
                return flow.LocalTarget("zeta.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write("z")

        class Alpha(flow.Task):
            def requires(self):
                return Zeta()
            def output(self):
                return flow.LocalTarget("alpha.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write("a")
        """
    )
    assert project.ran() == ["Zeta()"]
    assert not (project.root / "alpha.txt").exists()


# -- parameters -----------------------------------------------------------------------------------
@pytest.mark.parametrize("args", [["n=4"], ["--n", "4"], ["--n=4"]])
def test_parameter_value_is_accepted_in_each_form(project, args):
    project.flowfile(SEED)
    assert project.ran("SquaredNumbers", *args) == ["PrintNumbers(n=4)", "SquaredNumbers(n=4)"]
    assert project.read("out/squares.txt").splitlines()[-1] == "4: 16"


FLAGGED = """
class Flagged(flow.Task):
    flag = flow.BoolParameter(default=DEFAULT)
    def output(self):
        return flow.LocalTarget(f"flag_{self.flag}.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write(str(self.flag))
"""


@pytest.mark.parametrize(
    "default, args, expected",
    [
        (False, ["--flag"], True),
        (True, ["--no-flag"], False),
        (False, ["flag=true"], True),
        (True, ["flag=false"], False),
        (False, [], False),
    ],
)
def test_bool_parameter_accepts_flag_no_flag_and_assignment(project, default, args, expected):
    project.flowfile(FLAGGED.replace("DEFAULT", str(default)))
    assert project.ran("Flagged", *args) == [f"Flagged(flag={str(expected).lower()})"]
    assert project.read(f"flag_{expected}.txt") == str(expected)


UPSTREAM = """
class Upstream(flow.Task):
    size = flow.IntParameter(default=1)
    def output(self):
        return flow.LocalTarget(f"up_{self.size}.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write(str(self.size))

class Downstream(flow.Task):
    def requires(self):
        return Upstream()
    def output(self):
        return flow.LocalTarget("down.txt")
    def run(self):
        with self.input().open() as fin, self.output().open("w") as fout:
            fout.write("got " + fin.read())
"""


@pytest.mark.parametrize(
    "args",
    [["Upstream.size=5"], ["--Upstream-size", "5"], ["--Upstream-size=5"]],
)
def test_class_parameter_override_reaches_an_upstream_instance_created_without_it(project, args):
    project.flowfile(UPSTREAM)
    assert project.ran("Downstream", *args) == ["Upstream(size=5)", "Downstream()"]
    assert project.read("down.txt") == "got 5"


def test_luigi_style_override_of_the_named_tasks_own_parameter(project):
    project.flowfile(SEED)
    assert project.ran("SquaredNumbers", "--SquaredNumbers-n", "2")[-1] == "SquaredNumbers(n=2)"


@pytest.mark.parametrize(
    "args", [["examples.Bar.size=3"], ["Bar.size=3"], ["--examples.Bar-size", "3"]]
)
def test_class_parameter_override_addresses_a_namespaced_class(project, args):
    project.flowfile(
        """
        class Bar(flow.Task):
            task_namespace = "examples"
            size = flow.IntParameter(default=1)
            def output(self):
                return flow.LocalTarget(f"bar_{self.size}.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write(str(self.size))

        class Top(flow.WrapperTask):
            def requires(self):
                return Bar()
        """
    )
    assert project.ran("Top", *args) == ["examples.Bar(size=3)"]
    assert project.read("bar_3.txt") == "3"


def test_unknown_class_or_parameter_in_an_override_exits_2(project):
    project.flowfile(UPSTREAM)
    assert project.run("Downstream", "Upstrem.size=5").returncode == 2
    proc = project.run("Downstream", "Upstream.sise=5")
    assert proc.returncode == 2
    assert "size" in proc.stderr
    assert not (project.root / "down.txt").exists()


def test_class_parameter_override_does_not_beat_an_explicit_value(project):
    project.flowfile(
        UPSTREAM
        + """
class Pinned(flow.Task):
    def requires(self):
        return Upstream(size=2)
    def run(self):
        pass
"""
    )
    ran = project.ran("Pinned", "Upstream.size=5")
    assert "Upstream(size=2)" in ran
    assert "Upstream(size=5)" not in ran


def test_several_tasks_in_one_command_each_take_the_parameters_after_them(project):
    project.flowfile(
        """
        class Clean(flow.Task):
            def run(self):
                with open("cleaned.txt", "w") as f:
                    f.write("yes")

        class Build(flow.Task):
            target = flow.Parameter(default="debug")
            def output(self):
                return flow.LocalTarget(f"build_{self.target}.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write(self.target)
        """
    )
    assert project.ran("Clean", "Build", "target=release") == ["Clean()", "Build(target=release)"]
    assert project.read("build_release.txt") == "release"
    assert project.read("cleaned.txt") == "yes"
    assert project.ran("Build", "target=a", "Build", "--target", "b") == [
        "Build(target=a)",
        "Build(target=b)",
    ]


PARAMS = """
class Sized(flow.Task):
    count = flow.IntParameter(default=1)
    label = flow.Parameter(default="x")
    def run(self):
        pass

class Needy(flow.Task):
    count = flow.IntParameter()
    def run(self):
        pass
"""


@pytest.mark.parametrize("args", [["cont=3"], ["--cont", "3"], ["--cont=3"]])
def test_unknown_parameter_exits_2_naming_it_and_suggesting_the_near_one(project, args):
    project.flowfile(PARAMS)
    proc = project.run("Sized", *args)
    assert proc.returncode == 2
    assert "cont" in proc.stderr.replace("count", "")
    assert "count" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("args", [["count=abc"], ["--count", "abc"]])
def test_bad_value_exits_2_naming_parameter_value_and_expected_form(project, args):
    project.flowfile(PARAMS)
    proc = project.run("Sized", *args)
    assert proc.returncode == 2
    assert "count" in proc.stderr
    assert "abc" in proc.stderr
    assert re.search(r"\bint(eger)?\b", proc.stderr, re.I)
    assert "Traceback" not in proc.stderr


def test_missing_required_parameter_exits_2_naming_it(project):
    project.flowfile(PARAMS)
    proc = project.run("Needy")
    assert proc.returncode == 2
    assert "count" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert project.ran("Needy", "count=3") == ["Needy(count=3)"]


# -- exit statuses --------------------------------------------------------------------------------
def test_task_failure_exits_1_showing_the_task_and_the_users_traceback_only(project):
    project.flowfile(
        """
        def helper(n):
            raise ValueError(f"bad input {n}")

        class Boom(flow.Task):
            n = flow.IntParameter(default=7)
            def output(self):
                return flow.LocalTarget("boom.txt")
            def run(self):
                helper(self.n)
        """
    )
    proc = project.run("Boom")
    assert proc.returncode == 1
    assert "Boom(n=7)" in proc.stderr
    assert "ValueError: bad input 7" in proc.stderr
    assert 'raise ValueError(f"bad input {n}")' in proc.stderr
    assert "Flowfile.py" in proc.stderr
    assert not FLOW_FRAMES.search(proc.stderr), proc.stderr


def test_flowfile_syntax_error_exits_2_naming_file_and_line_without_a_traceback(project):
    project.flowfile(
        """
        class Fine(flow.Task):
            pass

        def broken(:
            pass
        """
    )
    proc = project.run()
    assert proc.returncode == 2
    # Line 1 is the prepended `import flow`, then a blank line: the bad line is line 6.
    assert re.search(r"Flowfile\.py.*\b6\b", proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr
    assert not FLOW_FRAMES.search(proc.stderr), proc.stderr


def test_flowfile_raising_at_import_exits_2_with_the_users_error(project):
    project.flowfile(
        """
        CONFIG = {}
        PORT = CONFIG["port"]
        """
    )
    proc = project.run()
    assert proc.returncode == 2
    assert "KeyError" in proc.stderr
    assert 'CONFIG["port"]' in proc.stderr
    assert not FLOW_FRAMES.search(proc.stderr), proc.stderr


def test_dependency_cycle_exits_2_naming_the_tasks(project):
    project.flowfile(
        """
        class Egg(flow.Task):
            def requires(self):
                return Chicken()
            def output(self):
                return flow.LocalTarget("egg.txt")
            def run(self):
                self.output().open("w").close()

        class Chicken(flow.Task):
            def requires(self):
                return Egg()
            def output(self):
                return flow.LocalTarget("chicken.txt")
            def run(self):
                self.output().open("w").close()
        """
    )
    proc = project.run("Egg")
    assert proc.returncode == 2
    assert "Egg()" in proc.stderr and "Chicken()" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (project.root / "egg.txt").exists() and not (project.root / "chicken.txt").exists()


@pytest.mark.parametrize("other", ["./shared.txt", "sub/../shared.txt", "ABS"])
def test_two_tasks_declaring_one_output_exit_2_naming_both(project, other):
    other = str(project.root / "shared.txt") if other == "ABS" else other
    project.flowfile(
        """
        class Writer(flow.Task):
            def output(self):
                return flow.LocalTarget("shared.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write("writer")

        class Scribbler(flow.Task):
            def output(self):
                return flow.LocalTarget(OTHER)
            def run(self):
                with self.output().open("w") as f:
                    f.write("scribbler")

        class Both(flow.WrapperTask):
            def requires(self):
                return [Writer(), Scribbler()]
        """.replace("OTHER", repr(other))
    )
    for args in (["Both"], ["Writer", "Scribbler"]):
        proc = project.run(*args)
        assert proc.returncode == 2
        assert "Writer()" in proc.stderr and "Scribbler()" in proc.stderr
        assert "Traceback" not in proc.stderr
        assert not (project.root / "shared.txt").exists()


SLEEPER = """
import time
from pathlib import Path

class Sleeper(flow.Task):
    def output(self):
        return flow.LocalTarget("out/result.txt")
    def run(self):
        MODE
"""
ATOMIC = """with self.output().open("w") as f:
            f.write("partial" * 1000)
            f.flush()
            Path("started.marker").write_text("x")
            time.sleep(600)  # until the signal"""
DIRECT = """with open("out/result.txt", "w") as f:
            f.write("partial" * 1000)
            f.flush()
            Path("started.marker").write_text("x")
            time.sleep(600)  # until the signal"""


def _ended(proc: subprocess.Popen[str]) -> str:
    """The output of a process that has exited (nothing while it runs: reading would block)."""
    return str(proc.communicate()) if proc.poll() is not None else ""


@pytest.mark.parametrize("mode", [ATOMIC, DIRECT], ids=["atomic", "direct"])
@pytest.mark.parametrize(
    "sig, status", [(signal.SIGTERM, 143), (signal.SIGINT, 130)], ids=["TERM", "INT"]
)
def test_signal_during_a_task_exits_128_plus_signal_leaving_no_partial_output(
    project, mode, sig, status
):
    project.flowfile(SLEEPER.replace("MODE", mode))
    (project.root / "out").mkdir()
    proc = subprocess.Popen(
        [*FLOW, "Sleeper"],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "NO_COLOR": "1"},
    )
    try:
        started = project.root / "started.marker"
        wait_until(started.exists, "the task to start", proc=proc, output=lambda: _ended(proc))
        proc.send_signal(sig)
        out, err = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == status, err
    assert list((project.root / "out").iterdir()) == []
    assert "Traceback" not in err
    # Nothing was recorded: the next plan still wants to run the task.
    assert project.plan("Sleeper")["Sleeper()"]["would_run"]


# -- failure rules (SPEC §4) ----------------------------------------------------------------------
CHAIN = """
from pathlib import Path

class First(flow.Task):
    def output(self):
        return flow.LocalTarget("out/first.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("first")

class Middle(flow.Task):
    def requires(self):
        return First()
    def output(self):
        return flow.LocalTarget("out/middle.txt")
    def run(self):
        FAILURE

class Last(flow.Task):
    def requires(self):
        return Middle()
    def output(self):
        return flow.LocalTarget("out/last.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("last")
"""
ATOMIC_FAIL = """with self.output().open("w") as f:
            f.write("half")
            if Path("fail.flag").exists():
                raise RuntimeError("failed mid-write")
            f.write(" and the rest")"""
DIRECT_FAIL = """with open("out/middle.txt", "w") as f:
            f.write("half")
        if Path("fail.flag").exists():
            raise RuntimeError("failed after writing directly")
        with open("out/middle.txt", "a") as f:
            f.write(" and the rest")"""


@pytest.mark.parametrize("failure", [ATOMIC_FAIL, DIRECT_FAIL], ids=["atomic", "direct"])
def test_failing_task_leaves_no_output_skips_downstream_and_records_nothing(project, failure):
    project.flowfile(CHAIN.replace("FAILURE", failure))
    project.write("fail.flag", "")
    code, doc = project.run_json("Last")
    assert code == 1
    assert doc["exit_status"] == 1
    assert statuses(doc) == {"First()": "ran", "Middle()": "failed", "Last()": "skipped"}
    assert doc["summary"]["failed"] == 1 and doc["summary"]["skipped"] == 1
    assert sorted(p.name for p in (project.root / "out").iterdir()) == ["first.txt"]
    # Nothing recorded: once the cause is gone the failed task runs, and First is not redone.
    (project.root / "fail.flag").unlink()
    assert project.ran("Last") == ["Middle()", "Last()"]
    assert project.read("out/middle.txt") == "half and the rest"


def test_failure_of_a_task_whose_output_existed_before_does_not_leave_it_recorded(project):
    # Middle succeeds once, then its code is made to fail: the old output must not pass as current.
    project.flowfile(CHAIN.replace("FAILURE", DIRECT_FAIL))
    assert project.ran("Last") == ["First()", "Middle()", "Last()"]
    project.write("fail.flag", "")
    code, doc = project.run_json("-B", "Last")
    assert code == 1
    assert statuses(doc)["Middle()"] == "failed"
    assert not (project.root / "out" / "middle.txt").exists()
    (project.root / "fail.flag").unlink()
    assert "Middle()" in project.ran("Last")


BRANCHES = """
class Bad(flow.Task):
    def output(self):
        return flow.LocalTarget("out/bad.txt")
    def run(self):
        raise RuntimeError("bad branch")

class Good(flow.Task):
    def output(self):
        return flow.LocalTarget("out/good.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("good")

class Top(flow.Task):
    def requires(self):
        return [Bad(), Good()]
    def output(self):
        return flow.LocalTarget("out/top.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("top")
"""


def test_without_keep_going_no_new_task_starts_after_a_failure(project):
    project.flowfile(BRANCHES)
    order = [p["task"] for p in project.run_json("-n", "Top")[1]["plan"]]
    assert order.index("Bad()") < order.index("Good()"), "premise: Bad is tried first"
    code, doc = project.run_json("Top")
    assert code == 1
    st = statuses(doc)
    assert st["Bad()"] == "failed"
    assert st.get("Good()") != "ran"
    assert st["Top()"] == "skipped"
    assert not (project.root / "out" / "good.txt").exists()


@pytest.mark.parametrize("flag", ["-k", "--keep-going"])
def test_keep_going_still_runs_independent_branches(project, flag):
    project.flowfile(BRANCHES)
    code, doc = project.run_json(flag, "Top")
    assert code == 1
    assert statuses(doc) == {"Bad()": "failed", "Good()": "ran", "Top()": "skipped"}
    assert project.read("out/good.txt") == "good"
    assert not (project.root / "out" / "top.txt").exists()


def test_run_that_does_not_create_its_output_fails_naming_the_path(project):
    project.flowfile(
        """
        class Forgetful(flow.Task):
            def output(self):
                return flow.LocalTarget("out/never-written.txt")
            def run(self):
                pass
        """
    )
    proc = project.run("Forgetful")
    assert proc.returncode == 1
    assert "never-written.txt" in proc.stderr
    code, doc = project.run_json("Forgetful")
    assert code == 1
    assert statuses(doc) == {"Forgetful()": "failed"}
    assert "never-written.txt" in doc["tasks"][0]["error"]


EXTERNAL = """
class RawData(flow.ExternalTask):
    def output(self):
        return flow.LocalTarget("data/raw.csv")

class Independent(flow.Task):
    def output(self):
        return flow.LocalTarget("out/independent.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("ok")

class Clean(flow.Task):
    def requires(self):
        return RawData()
    def output(self):
        return flow.LocalTarget("out/clean.csv")
    def run(self):
        with self.input().open() as fin, self.output().open("w") as fout:
            fout.write(fin.read().upper())

class All(flow.WrapperTask):
    def requires(self):
        return [Independent(), Clean()]
"""


def test_missing_external_input_exits_1_naming_path_and_needing_task_before_anything_runs(project):
    project.flowfile(EXTERNAL)
    proc = project.run("All")
    assert proc.returncode == 1
    assert "data/raw.csv" in proc.stderr
    assert "Clean()" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (project.root / "out").exists()
    code, doc = project.run_json("All")
    assert code == 1 and doc["exit_status"] == 1
    assert [t["task"] for t in doc.get("tasks", []) if t["status"] == "ran"] == []
    assert doc["missing_external"] == [{"output": "data/raw.csv", "needed_by": ["Clean()"]}]


def test_a_missing_input_of_many_tasks_names_the_first_three_and_counts_the_rest(project):
    """A fan-in's missing source would otherwise print hundreds of task ids on one line;
    --json still lists them all."""
    project.flowfile("""
        class Raw(flow.ExternalTask):
            def output(self):
                return flow.LocalTarget("data/raw.csv")
        class Part(flow.Task):
            i = flow.IntParameter()
            def requires(self):
                return Raw()
            def output(self):
                return flow.LocalTarget(f"out/{self.i}.csv")
            def run(self):
                pass
        class Whole(flow.WrapperTask):
            def requires(self):
                return [Part(i=i) for i in range(20)]
        """)
    proc = project.run("Whole")
    assert proc.returncode == 1
    line = next(x for x in proc.stderr.splitlines() if "missing external input" in x)
    assert "(needed by Part(i=0), Part(i=1), Part(i=10) and 17 more)" in line
    code, doc = project.run_json("Whole")
    assert code == 1 and len(doc["missing_external"][0]["needed_by"]) == 20


def test_missing_external_input_with_keep_going_still_runs_tasks_not_needing_it(project):
    project.flowfile(EXTERNAL)
    code, doc = project.run_json("-k", "All")
    assert code == 1
    st = statuses(doc)
    assert st["Independent()"] == "ran"
    assert st["Clean()"] == "skipped"
    assert project.read("out/independent.txt") == "ok"
    assert not (project.root / "out" / "clean.csv").exists()
    project.write("data/raw.csv", "a,b\n")
    assert "Clean()" in project.ran("All")
    assert project.read("out/clean.csv") == "A,B\n"


# -- output ---------------------------------------------------------------------------------------
def test_run_prints_a_counted_line_with_duration_per_task_and_a_summary(project):
    project.flowfile(SEED)
    proc = project.run("SquaredNumbers", "n=3")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert re.search(r"\[1/2\].*PrintNumbers\(n=3\).*\d+(\.\d+)?s", proc.stdout), proc.stdout
    assert re.search(r"\[2/2\].*SquaredNumbers\(n=3\).*\d+(\.\d+)?s", proc.stdout), proc.stdout
    assert "[1/2]" not in lines[-1] and "[2/2]" not in lines[-1]
    assert re.search(r"\b2\b.*\bran\b", lines[-1]), lines[-1]


def test_json_summary_counts_ran_and_up_to_date(project):
    project.flowfile(SEED)
    project.ran("PrintNumbers", "n=3")
    code, doc = project.run_json("SquaredNumbers", "n=3")
    assert code == 0 and doc["exit_status"] == 0
    assert statuses(doc) == {"PrintNumbers(n=3)": "up-to-date", "SquaredNumbers(n=3)": "ran"}
    assert doc["summary"]["ran"] == 1 and doc["summary"]["up_to_date"] == 1
    assert all(isinstance(t["seconds"], (int, float)) for t in doc["tasks"])


@pytest.mark.parametrize("flag", ["-q", "--quiet"])
def test_quiet_prints_nothing_on_success(project, flag):
    project.flowfile(SEED)
    proc = project.run(flag, "SquaredNumbers", "n=2")
    assert proc.returncode == 0
    assert proc.stdout == "" and proc.stderr == ""
    assert project.read("out/squares.txt") == "1: 1\n2: 4\n"


def test_output_printed_by_a_failing_task_is_shown(project):
    project.flowfile(
        """
        import sys

        class Talky(flow.Task):
            def output(self):
                return flow.LocalTarget("talky.txt")
            def run(self):
                print("hint-on-stdout")
                print("hint-on-stderr", file=sys.stderr)
                raise RuntimeError("talky failed")
        """
    )
    proc = project.run("Talky")
    assert proc.returncode == 1
    both = proc.stdout + proc.stderr
    assert "hint-on-stdout" in both and "hint-on-stderr" in both


def test_nothing_is_colored_when_output_is_not_a_terminal(project):
    project.flowfile(BRANCHES)
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    env["TERM"] = "xterm-256color"
    proc = subprocess.run(
        [*FLOW, "-k", "Top"], cwd=project.root, capture_output=True, text=True, timeout=60, env=env
    )
    assert proc.returncode == 1
    assert "Bad()" in proc.stderr
    assert "\x1b[" not in proc.stdout + proc.stderr


def test_dry_run_changes_nothing_and_check_exits_1_until_up_to_date(project):
    project.flowfile(SEED)
    plan = project.plan("SquaredNumbers", "n=3")
    assert plan["PrintNumbers(n=3)"]["would_run"] and plan["SquaredNumbers(n=3)"]["would_run"]
    assert not (project.root / "out").exists()
    assert project.run("--check", "SquaredNumbers", "n=3").returncode == 1
    assert project.run("SquaredNumbers", "n=3").returncode == 0
    assert project.run("--check", "SquaredNumbers", "n=3").returncode == 0
    assert not any(p["would_run"] for p in project.plan("SquaredNumbers", "n=3").values())


def test_quiet_still_reports_a_failure(project):
    project.flowfile(BRANCHES)
    proc = project.run("-q", "Bad")
    assert proc.returncode == 1
    assert "Bad()" in proc.stderr


def test_version_prints_a_version_number(project):
    proc = project.run("--version")
    assert proc.returncode == 0
    assert re.search(r"\d+\.\d+", proc.stdout)


def test_version_needs_no_flowfile(project):
    proc = project.run("--version", cwd=project.root)
    assert proc.returncode == 0


LISTED = (
    SEED
    + '''
class _Private(flow.Task):
    """Hidden helper."""
    def run(self):
        pass
'''
)


def test_list_shows_tasks_params_and_first_doc_line_but_hides_underscored(project):
    project.flowfile(LISTED)
    proc = project.run("--list")
    assert proc.returncode == 0, proc.stderr
    assert "PrintNumbers" in proc.stdout and "SquaredNumbers" in proc.stdout
    sq = next(ln for ln in proc.stdout.splitlines() if "SquaredNumbers" in ln)
    assert "n" in sq.replace("SquaredNumbers", "") and "10" in sq
    assert "Square every number up to n." in proc.stdout
    assert "second docstring line" not in proc.stdout
    assert "_Private" not in proc.stdout
    assert not (project.root / "out").exists()


def test_list_json_describes_tasks_and_parameters(project):
    project.flowfile(LISTED)
    code, doc = project.run_json("--list")
    assert code == 0
    by_name = {t["name"]: t for t in doc["tasks"]}
    assert set(by_name) == {"PrintNumbers", "SquaredNumbers"}
    sq = by_name["SquaredNumbers"]
    assert sq["doc"] == "Square every number up to n."
    assert "second docstring line" in sq["full_doc"]
    [n] = sq["params"]
    assert (
        n["name"] == "n" and n["default"] in ("10", 10) and n["description"] == "how many numbers"
    )
    assert "int" in n["type"].lower()


def test_graph_json_shows_nodes_edges_and_statuses(project):
    project.flowfile(SEED)
    proc = project.run("--graph", "json", "SquaredNumbers", "n=3")
    assert proc.returncode == 0, proc.stderr
    nodes = {n["task"]: n for n in json.loads(proc.stdout)["nodes"]}
    assert nodes["SquaredNumbers(n=3)"]["deps"] == ["PrintNumbers(n=3)"]
    assert nodes["PrintNumbers(n=3)"]["deps"] == []
    assert "up to date" not in nodes["SquaredNumbers(n=3)"]["status"]
    assert not (project.root / "out").exists()  # the graph view builds nothing
    project.ran("SquaredNumbers", "n=3")
    nodes = json.loads(project.run("--graph", "json", "SquaredNumbers", "n=3").stdout)["nodes"]
    assert {n["status"] for n in nodes} == {"up to date"}


def test_graph_json_marks_a_missing_external_input(project):
    project.flowfile(EXTERNAL)
    proc = project.run("--graph", "json", "All")
    nodes = {n["task"]: n for n in json.loads(proc.stdout)["nodes"]}
    assert "missing" in nodes["RawData()"]["status"]
    assert nodes["Clean()"]["deps"] == ["RawData()"]
    assert sorted(nodes["All()"]["deps"]) == ["Clean()", "Independent()"]
    project.write("data/raw.csv", "x\n")
    nodes = {
        n["task"]: n for n in json.loads(project.run("--graph", "json", "All").stdout)["nodes"]
    }
    assert "missing" not in nodes["RawData()"]["status"]


@pytest.mark.parametrize(
    "args, edge", [(["--graph"], "->"), (["--graph", "dot"], "->"), (["--graph", "mermaid"], "-->")]
)
def test_graph_text_formats_show_both_tasks_and_an_edge(project, args, edge):
    project.flowfile(SEED)
    proc = project.run(*args, "SquaredNumbers", "n=3")
    assert proc.returncode == 0, proc.stderr
    assert "PrintNumbers(n=3)" in proc.stdout and "SquaredNumbers(n=3)" in proc.stdout
    assert edge in proc.stdout
    assert ("digraph" in proc.stdout) == (edge == "->")
    assert not (project.root / "out").exists()


# -- Luigi habits (SPEC §8) -----------------------------------------------------------------------
def test_luigi_script_runs_unchanged_and_second_run_is_a_no_op(project):
    script = (
        "import flow as luigi\n"
        + SEED.replace("flow.", "luigi.")
        + ('\nif __name__ == "__main__":\n    luigi.run()\n')
    )
    project.write("pipeline.py", script)
    first = python(
        "pipeline.py", "SquaredNumbers", "--n", "20", "--local-scheduler", cwd=project.root
    )
    assert first.returncode == 0, first.stderr
    assert project.read("out/squares.txt").splitlines()[-1] == "20: 400"
    assert len(project.read("out/numbers_upto_20.txt").splitlines()) == 20
    second = python(
        "pipeline.py",
        "--json",
        "SquaredNumbers",
        "--n",
        "20",
        "--local-scheduler",
        cwd=project.root,
    )
    assert second.returncode == 0, second.stderr
    doc = json.loads(second.stdout)
    assert [t["task"] for t in doc["tasks"] if t["status"] == "ran"] == []
    assert statuses(doc) == {
        "PrintNumbers(n=20)": "up-to-date",
        "SquaredNumbers(n=20)": "up-to-date",
    }


def test_script_run_from_elsewhere_works_like_dash_f_on_it(project):
    script = (
        "import flow as luigi\n"
        + SEED.replace("flow.", "luigi.")
        + ('\nif __name__ == "__main__":\n    luigi.run()\n')
    )
    project.write("proj/pipeline.py", script)
    elsewhere = project.root / "elsewhere"
    elsewhere.mkdir()
    proc = python(
        str(project.root / "proj" / "pipeline.py"), "SquaredNumbers", "--n", "3", cwd=elsewhere
    )
    assert proc.returncode == 0, proc.stderr
    assert project.read("proj/out/squares.txt") == "1: 1\n2: 4\n3: 9\n"
    assert not (elsewhere / "out").exists() and not (elsewhere / ".flow").exists()
    # The same tasks, the same record: flow -f on the script finds nothing to do.
    code, doc = project.run_json("-f", "proj/pipeline.py", "SquaredNumbers", "--n", "3")
    assert code == 0
    assert set(statuses(doc).values()) == {"up-to-date"}


def test_luigi_run_with_an_argument_list(project):
    project.write(
        "hello.py",
        """
        import flow as luigi

        class HelloWorldTask(luigi.Task):
            task_namespace = "examples"
            def output(self):
                return luigi.LocalTarget("hello.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write("hello")

        if __name__ == "__main__":
            luigi.run(["examples.HelloWorldTask", "--workers", "1", "--local-scheduler"])
        """,
    )
    proc = python("hello.py", cwd=project.root)
    assert proc.returncode == 0, proc.stderr
    assert project.read("hello.txt") == "hello"


def test_workers_option_is_accepted(project):
    project.flowfile(SEED)
    assert project.ran("SquaredNumbers", "--workers", "1", "--n", "2") == [
        "PrintNumbers(n=2)",
        "SquaredNumbers(n=2)",
    ]
    proc = project.run("--workers", "2", "-B", "SquaredNumbers", "--n", "2")
    assert proc.returncode == 0, proc.stderr


def test_module_option_imports_tasks_from_a_module_on_pythonpath(project):
    project.write("lib/mytasks.py", "import flow\n" + textwrap.dedent(SEED))
    work = project.root / "work"
    work.mkdir()
    proc = project.run(
        "--module",
        "mytasks",
        "SquaredNumbers",
        "--n",
        "2",
        "--local-scheduler",
        cwd=work,
        env={"PYTHONPATH": str(project.root / "lib")},
    )
    assert proc.returncode == 0, proc.stderr
    # As in Luigi, a module's relative paths resolve against the working directory.
    assert (work / "out" / "squares.txt").read_text() == "1: 1\n2: 4\n"


def test_luigi_worker_and_scheduler_options_are_ignored_with_a_warning(project):
    """Luigi's command lines carry worker and scheduler options flow has no use for: each is
    skipped (with its value) and named in a warning, and the parameters around them still
    count; a value given as --opt=value is skipped too."""
    project.flowfile(SEED)
    proc = project.run(
        "SquaredNumbers", "--worker-keep-alive", "--n", "3", "--scheduler-retry-delay", "5",
        "--logging-conf-file=logging.cfg", "--retcode-task-failed", "3", "--local-scheduler",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert project.read("out/squares.txt") == "1: 1\n2: 4\n3: 9\n"
    for option in ("--worker-keep-alive", "--scheduler-retry-delay", "--logging-conf-file",
                   "--retcode-task-failed"):  # fmt: skip
        assert f"ignoring Luigi's {option}" in proc.stderr
    assert "exit statuses are fixed" in proc.stderr


@pytest.mark.parametrize("option", ["--scheduler-url", "--scheduler-host", "--assistant"])
def test_luigi_central_scheduler_options_are_refused_naming_the_flow_way(project, option):
    project.flowfile(SEED)
    args = [option] if option == "--assistant" else [option, "http://sched:8082"]
    proc = project.run("SquaredNumbers", *args)
    assert proc.returncode == 2
    assert "--serve" in proc.stderr and "--dask" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not (project.root / "out").exists()


def test_unknown_module_exits_2(project):
    proc = project.run("--module", "no_such_module_here", "Anything")
    assert proc.returncode == 2
    assert "no_such_module_here" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_requires_may_be_a_generator(project):
    project.flowfile(
        """
        class Part(flow.Task):
            i = flow.IntParameter()
            def output(self):
                return flow.LocalTarget(f"parts/{self.i}.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write(str(self.i * 10))

        class Whole(flow.Task):
            def requires(self):
                for i in range(3):
                    yield Part(i)
            def output(self):
                return flow.LocalTarget("whole.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write(",".join(t.open().read() for t in self.input()))
        """
    )
    ran = project.ran("Whole")
    assert sorted(ran[:3]) == ["Part(i=0)", "Part(i=1)", "Part(i=2)"] and ran[3:] == ["Whole()"]
    assert project.read("whole.txt") == "0,10,20"


def test_run_may_yield_dynamic_dependencies_built_before_it_resumes(project):
    project.flowfile(
        """
        class Part(flow.Task):
            i = flow.IntParameter()
            def output(self):
                return flow.LocalTarget(f"parts/{self.i}.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write(str(self.i + 100))

        class Dynamic(flow.Task):
            def output(self):
                return flow.LocalTarget("dynamic.txt")
            def run(self):
                targets = yield [Part(i) for i in range(2)]
                more = yield Part(5)
                text = ",".join(t.open().read() for t in targets) + "," + more.open().read()
                with self.output().open("w") as f:
                    f.write(text)
        """
    )
    code, doc = project.run_json("Dynamic")
    assert code == 0, doc
    assert statuses(doc).get("Dynamic()") == "ran"
    assert project.read("dynamic.txt") == "100,101,105"
    assert (project.root / "parts" / "5.txt").exists()
    assert project.ran("Dynamic") == []


def test_positional_constructor_arguments_follow_parameter_order(project):
    project.flowfile(
        """
        class Foo(flow.Task):
            a = flow.IntParameter()
            b = flow.IntParameter(default=0)
            def output(self):
                return flow.LocalTarget(f"foo_{self.a}_{self.b}.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write(str(self.a + self.b))

        class Bar(flow.WrapperTask):
            def requires(self):
                return [Foo(100, 2 * i) for i in range(2)]
        """
    )
    assert sorted(project.ran("Bar")) == ["Foo(a=100, b=0)", "Foo(a=100, b=2)"]
    assert project.read("foo_100_2.txt") == "102"


def test_target_opened_for_writing_and_closed_with_close_is_committed(project):
    project.flowfile(
        """
        class Plain(flow.Task):
            def output(self):
                return flow.LocalTarget("out/plain.txt")
            def run(self):
                f = self.output().open("w")
                f.write("committed")
                f.close()
        """
    )
    assert project.ran("Plain") == ["Plain()"]
    assert project.read("out/plain.txt") == "committed"
    assert [p.name for p in (project.root / "out").iterdir()] == ["plain.txt"]


BUILD_SCRIPT = """
import sys
import flow

class Ok(flow.Task):
    def output(self):
        return flow.LocalTarget("ok.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("ok")

class Broken(flow.Task):
    def output(self):
        return flow.LocalTarget("broken.txt")
    def run(self):
        raise RuntimeError("broken")

task = Broken() if sys.argv[1:] == ["broken"] else Ok()
result = flow.build([task], local_scheduler=True)
print("RESULT", bool(result))
"""


def test_flow_build_from_a_script_is_truthy_on_success_and_falsy_on_failure(project):
    project.write("script.py", BUILD_SCRIPT)
    ok = python("script.py", cwd=project.root)
    assert ok.returncode == 0, ok.stderr
    assert "RESULT True" in ok.stdout
    assert project.read("ok.txt") == "ok"
    broken = python("script.py", "broken", cwd=project.root)
    assert broken.returncode == 0, broken.stderr  # a task failure raises nothing
    assert "RESULT False" in broken.stdout


def test_date_interval_parameter_given_with_dashes_and_its_dates(project):
    project.flowfile(
        """
        class Daily(flow.Task):
            date_interval = flow.DateIntervalParameter()
            def output(self):
                return flow.LocalTarget("days.txt")
            def run(self):
                with self.output().open("w") as f:
                    for d in self.date_interval.dates():
                        f.write(d.isoformat() + "\\n")
        """
    )
    proc = project.run("Daily", "--date-interval", "2026-11-01-2026-11-03")
    assert proc.returncode == 0, proc.stderr
    assert project.read("days.txt") == "2026-11-01\n2026-11-02\n"


# -- a closed stdout ------------------------------------------------------------------------------
def _piped_to_head(project, flow_args: str) -> tuple[int, subprocess.CompletedProcess[str]]:
    """Run `flow ARGS | head -1` in bash; return flow's own exit status and the pipeline."""
    status_file = project.root / "flow.status"
    cmd = f"{sys.executable} -m flow {flow_args} | head -1; echo ${{PIPESTATUS[0]}} > {status_file}"
    proc = subprocess.run(
        ["bash", "-c", cmd],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1"},
    )
    return int(status_file.read_text()), proc


def test_stdout_closed_early_during_a_listing_gives_no_traceback(project):
    classes = "".join(
        f'\nclass Task{i:04d}(flow.Task):\n    """Task number {i} with a docstring long enough."""\n'
        f"    size = flow.IntParameter(default={i})\n    def run(self):\n        pass\n"
        for i in range(1500)
    )
    project.flowfile(classes)
    status, proc = _piped_to_head(project, "--list")
    assert status in (0, 141)  # quiet success, or killed by SIGPIPE as `make | head` would be
    assert proc.stdout.startswith("Task0000")
    assert proc.stdout.count("\n") == 1
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


def test_stdout_closed_early_during_a_run_gives_no_traceback(project):
    project.flowfile(
        """
        import time

        class Slow(flow.Task):
            i = flow.IntParameter()
            def run(self):
                time.sleep(0.2)

        class Many(flow.WrapperTask):
            def requires(self):
                return [Slow(i) for i in range(4)]
        """
    )
    status, proc = _piped_to_head(project, "Many")
    # The reader leaving is not a task failure (exit 1 would say one failed).
    assert status in (0, 141), f"flow exited {status}"
    assert proc.stdout.count("\n") == 1
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr, proc.stderr


DYNAMIC_AND_WRAPPER = """
class Part(flow.Task):
    i = flow.IntParameter()
    def output(self):
        return flow.LocalTarget(f"part{self.i}.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write(str(self.i))

class Gather(flow.Task):
    def output(self):
        return flow.LocalTarget("gather.txt")
    def run(self):
        parts = yield [Part(i=1), Part(i=2)]
        with self.output().open("w") as f:
            f.write(",".join(p.open().read() for p in parts))

class All(flow.WrapperTask):
    def requires(self):
        return [Part(i=3), Gather()]
"""


def test_progress_counter_grows_with_dynamic_dependencies_and_ends_at_its_total(project):
    """[k/N] counts finished runs; dynamic dependencies raise N, so the last line reads [N/N]."""
    project.flowfile(DYNAMIC_AND_WRAPPER)
    proc = project.run("Gather")
    assert proc.returncode == 0, proc.stderr
    counters = re.findall(r"^\[(\d+)/(\d+)\]", proc.stdout, re.M)
    assert [int(k) for k, _ in counters] == [1, 2, 3]
    assert counters[-1] == ("3", "3")
    assert project.read("gather.txt") == "1,2"


def test_plan_and_summary_count_the_same_tasks_when_a_wrapper_is_involved(project):
    """A wrapper has nothing of its own to run: neither the plan nor the summary counts it."""
    project.flowfile(DYNAMIC_AND_WRAPPER)
    code, plan = project.run_json("-n", "All")
    assert code == 0
    assert plan["would_run"] == ["Part(i=3)", "Gather()"]
    code, doc = project.run_json("All")
    assert code == 0
    assert doc["summary"]["total"] == 4  # Part 3, Gather, and Gather's two dynamic parts
    assert doc["summary"]["ran"] == 4


def test_graph_shows_a_wrapper_over_stale_tasks_as_stale(project):
    project.flowfile(DYNAMIC_AND_WRAPPER)
    proc = project.run("--graph", "json", "All")
    nodes = {n["task"]: n["status"] for n in json.loads(proc.stdout)["nodes"]}
    assert nodes["All()"] == "stale: upstream"
    assert project.run("All").returncode == 0
    proc = project.run("--graph", "json", "All")
    nodes = {n["task"]: n["status"] for n in json.loads(proc.stdout)["nodes"]}
    assert nodes["All()"] == "up to date"


def test_dry_run_json_lists_missing_external_inputs(project):
    project.flowfile(
        """
        class Raw(flow.ExternalTask):
            def output(self):
                return flow.LocalTarget("raw.csv")
        class Use(flow.Task):
            def requires(self):
                return Raw()
            def output(self):
                return flow.LocalTarget("use.txt")
        """
    )
    code, doc = project.run_json("-n", "Use")
    assert code == 1
    assert doc["missing_external"] == [{"output": "raw.csv", "needed_by": ["Use()"]}]


def test_custom_target_whose_fingerprint_raises_gives_a_clean_error(project):
    """A bug in a user's fingerprint() is reported with the user's traceback, not flow's."""
    project.flowfile(
        """
        class Broken(flow.Target):
            key = "broken"
            def exists(self):
                return True
            def fingerprint(self):
                raise RuntimeError("no metadata")
        class Up(flow.Task):
            def output(self):
                return Broken()
        class Down(flow.Task):
            def requires(self):
                return Up()
            def output(self):
                return flow.LocalTarget("down.txt")
        """
    )
    proc = project.run("Down")
    assert proc.returncode == 2
    assert "RuntimeError: no metadata" in proc.stderr
    assert "fingerprint() raised" in proc.stderr
    assert "/flow/fingerprint.py" not in proc.stderr


def test_explain_says_an_existence_only_target_has_no_content_record(project):
    project.flowfile(
        """
        import os
        class Exists(flow.Target):
            def exists(self):
                return os.path.exists("marker")
        class Mark(flow.Task):
            def output(self):
                return Exists()
            def run(self):
                open("marker", "w").close()
        """
    )
    assert project.run("Mark").returncode == 0
    proc = project.run("-n", "--explain", "Mark")
    assert "no content record" in proc.stdout
    assert "match the record" not in proc.stdout


def test_run_calling_exit_is_a_task_failure_not_the_end_of_flow(project):
    """sys.exit() inside run() fails that task; flow still reports and exits 1."""
    project.flowfile(
        """
        import sys
        class Quits(flow.Task):
            def output(self):
                return flow.LocalTarget("q.txt")
            def run(self):
                sys.exit(3)
        """
    )
    code, doc = project.run_json("Quits")
    assert code == 1
    assert [t["status"] for t in doc["tasks"]] == ["failed"]
    assert "exit(3)" in doc["tasks"][0]["error"]


def test_bad_parameter_inside_requires_names_the_task_whose_requires_it_is(project):
    project.flowfile(
        """
        class Leaf(flow.Task):
            n = flow.IntParameter()
        class Root(flow.Task):
            def requires(self):
                return Leaf(m=1)
        """
    )
    proc = project.run("Root")
    assert proc.returncode == 2
    assert "Root().requires()" in proc.stderr
    assert "unknown parameter 'm' for Leaf" in proc.stderr


def test_json_stdout_holds_only_the_document_when_the_flowfile_and_tasks_print(project):
    """--json: prints at import, in run() and from flow.sh go to stderr; stdout parses as JSON."""
    project.flowfile("""
        print("importing the Flowfile")
        class Loud(flow.Task):
            def output(self):
                return flow.LocalTarget("out/loud.txt")
            def run(self):
                print("print in run")
                flow.sh("echo from a command")
                with self.output().open("w") as f:
                    f.write("x")
        """)
    proc = project.run("--json", "Loud")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["summary"]["ran"] == 1
    for line in ("importing the Flowfile", "print in run", "from a command"):
        assert line in proc.stderr
    assert json.loads(project.run("--json", "--list").stdout)
