"""Trust in runs: recovery that touches only the graph's outputs, decisions that look again after
a task ran, commands that die with flow, directory outputs, and tasks that misbehave (os._exit,
chdir, flow.run() without a guard). Each test failed before its fix."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import wait_for_file, wait_until


def _processes_with(token: str, anywhere: bool = False) -> list[int]:
    """Pids of live (non-zombie) processes whose command line starts with ``token`` (the
    `sleep TOKEN` itself, not the shells whose command lines mention it), or holds it."""
    found = []
    for name in os.listdir("/proc"):
        if not name.isdigit() or int(name) == os.getpid():
            continue
        try:
            cmdline = Path(f"/proc/{name}/cmdline").read_bytes().replace(b"\0", b" ")
            state = Path(f"/proc/{name}/stat").read_text().rsplit(") ", 1)[1][0]
        except OSError:
            continue
        hit = token.encode() in cmdline if anywhere else cmdline.startswith(token.encode())
        if hit and state != "Z":
            found.append(int(name))
    return found


# -- 1. a crafted journal never deletes files outside the graph ---------------------------------
def _journal_row(project, key: str, path: str, before) -> None:
    db = sqlite3.connect(project.root / ".flow" / "manifest.sqlite")
    with db:
        db.execute(
            "INSERT OR REPLACE INTO running VALUES (?,?,?,?,?)",
            (key, "Evil()", path, json.dumps(before), 1),
        )
    db.close()


SIMPLE = """
class Out(flow.Task):
    def output(self):
        return flow.LocalTarget("out.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("built")
"""


@pytest.mark.parametrize("where", ["absolute", "parent", "inside"])
def test_a_crafted_journal_row_never_deletes_a_file_outside_the_graph(project, tmp_path, where):
    """Rows naming /abs/victim, ../victim or a project file no task declares: all survive, and
    so do the `.victim.*.flow-tmp` files beside them."""
    project.flowfile(SIMPLE)
    assert project.run("Out").returncode == 0
    victim = {
        "absolute": tmp_path.parent / f"victim-{tmp_path.name}.txt",
        "parent": project.root.parent / f"victim-{tmp_path.name}.txt",
        "inside": project.root / "notes.txt",
    }[where]
    victim.write_text("precious")
    tmp = victim.parent / f".{victim.name}.abcd1234.flow-tmp"
    tmp.write_text("also precious")
    path = {"absolute": str(victim), "parent": f"../{victim.name}", "inside": "notes.txt"}[where]
    _journal_row(project, path, path, [1, 2, 3])
    try:
        proc = project.run("Out")
        assert proc.returncode == 0, proc.stderr
        assert victim.read_text() == "precious"
        assert tmp.read_text() == "also precious"
        assert "removed" not in proc.stderr
    finally:
        victim.unlink(missing_ok=True)
        tmp.unlink(missing_ok=True)


def test_a_journal_row_never_deletes_external_data_or_matched_files(project):
    """Rows naming an ExternalTask's output and a file `flow.Files` matched: flow never writes
    those, so a row for them is forged, and both files survive."""
    project.write("data/raw.csv", "x")
    project.write("data/notes.txt", "y")
    project.flowfile("""
        class Raw(flow.ExternalTask):
            def output(self):
                return flow.LocalTarget("data/raw.csv")
        class Clean(flow.Task):
            def requires(self):
                return [Raw(), flow.Files("data/*.txt")]
            def output(self):
                return flow.LocalTarget("out/clean.csv")
            def run(self):
                with self.output().open("w") as f:
                    f.write(self.input()[0].open().read())
        """)
    assert project.run("Clean").returncode == 0
    _journal_row(project, "data/raw.csv", "data/raw.csv", None)
    _journal_row(project, "data/notes.txt", "data/notes.txt", None)
    proc = project.run("Clean")
    assert proc.returncode == 0, proc.stderr
    assert project.read("data/raw.csv") == "x" and project.read("data/notes.txt") == "y"


@pytest.mark.parametrize("declared", ["up/", "up"])
def test_a_failed_task_with_an_output_that_is_a_link_removes_the_link_not_its_target(
    project, declared
):
    """An output declared as `up/` where `up -> keep` (a directory of the user's): the task
    writes through it and fails. The clean-up removes the link, never what it points to."""
    project.write("keep/canary.txt", "alive")
    (project.root / "up").symlink_to("keep")
    project.flowfile("""
        import os
        class Out(flow.Task):
            p = flow.Parameter()
            def output(self):
                return flow.LocalTarget(self.p)
            def run(self):
                with open(os.path.join(self.p, "new.txt"), "w") as f:
                    f.write("x")
                raise RuntimeError("fail")
        """)
    proc = project.run("-B", "Out", f"p={declared}")
    assert proc.returncode == 1, proc.stderr
    assert project.read("keep/canary.txt") == "alive"


def test_a_generator_run_that_changes_directory_yields_tasks_built_from_the_project(project):
    """run() changes directory, then yields Cd(): Cd runs, is checked and recorded from the
    project's directory, and the parent's own directory is back when it resumes."""
    project.flowfile("""
        import os
        class Cd(flow.Task):
            def output(self):
                return flow.LocalTarget("out/cd.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write("c")
        class Gen(flow.Task):
            def output(self):
                return flow.LocalTarget("out/gen.txt")
            def run(self):
                os.makedirs("elsewhere", exist_ok=True)
                os.chdir("elsewhere")
                yield Cd()
                assert os.path.basename(os.getcwd()) == "elsewhere"
                os.chdir("..")
                with self.output().open("w") as f:
                    f.write("g")
        """)
    proc = project.run("Gen")
    assert proc.returncode == 0, proc.stderr
    assert project.read("out/cd.txt") == "c"
    assert not (project.root / "elsewhere" / "out").exists()
    assert project.run("--check", "Gen").returncode == 0


def test_a_journal_row_for_a_graph_output_never_follows_its_own_path(project, tmp_path):
    """A row keyed by a real output but whose path column names another file: the output is
    cleaned up (the task reruns), the other file is left alone."""
    project.flowfile(SIMPLE)
    assert project.run("Out").returncode == 0
    victim = project.root / "victim.txt"
    victim.write_text("precious")
    _journal_row(project, "out.txt", str(victim), [1, 2, 3])
    proc = project.run("Out")
    assert proc.returncode == 0, proc.stderr
    assert "removed out.txt" in proc.stderr
    assert victim.read_text() == "precious"
    assert project.read("out.txt") == "built"


def test_overlapping_external_inputs_are_not_two_writers_of_one_file(project):
    """`Files("src/*.c")`, `Files("src/a.c")` and an ExternalTask of the directory `src` all
    declare src/a.c: they only read it, so the build goes on (it was refused as two writers)."""
    project.write("src/a.c", "a")
    project.write("src/b.c", "b")
    project.flowfile("""
        class Src(flow.ExternalTask):
            def output(self):
                return flow.LocalTarget("src")
        class Count(flow.Task):
            def requires(self):
                return [Src(), flow.Files("src/*.c"), flow.Files("src/a.c")]
            def output(self):
                return flow.LocalTarget("count.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write(str(len(self.input()[1])))
        """)
    proc = project.run("Count")
    assert proc.returncode == 0, proc.stderr
    assert project.read("count.txt") == "2"


# -- 4. a decision after an upstream ran looks at the disk again ------------------------------
PREPARE = """
class Prepare(flow.Task):
    def run(self):
        flow.sh("rm -rf build && mkdir build")
class Compile(flow.Task):
    def requires(self):
        return Prepare()
    def output(self):
        return flow.LocalTarget("build/app.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("app")
"""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_an_upstream_task_that_deletes_an_output_makes_its_task_run_again(project, jobs):
    """A phony Prepare wipes build/ before Compile every time: every run ends with
    build/app.txt present, and Compile ran each time."""
    project.flowfile(PREPARE)
    for _ in range(3):
        code, doc = project.run_json("-j", jobs, "Compile")
        assert code == 0, doc
        statuses = {t["task"]: t["status"] for t in doc["tasks"]}
        assert statuses == {"Prepare()": "ran", "Compile()": "ran"}
        assert project.read("build/app.txt") == "app"


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_an_upstream_task_that_changes_an_output_makes_its_task_run_again(project, jobs):
    """A phony step overwrites B's output (and removes part of S's directory output) before
    B and S are decided again: that is not a hand edit to keep, so both rebuild (the changed
    copy saved under .flow/backup/), and each run ends with the right content."""
    project.flowfile("""
        import os
        class Mess(flow.Task):
            def run(self):
                flow.sh("mkdir -p out; [ -f out/b.txt ] && echo junk > out/b.txt; rm -rf site/sub; true")
        class B(flow.Task):
            def requires(self):
                return Mess()
            def output(self):
                return flow.LocalTarget("out/b.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write("good")
        class S(flow.Task):
            def requires(self):
                return Mess()
            def output(self):
                return flow.LocalTarget("site")
            def run(self):
                os.makedirs("site/sub", exist_ok=True)
                with open("site/sub/i.html", "w") as f:
                    f.write("ok")
        class Both(flow.WrapperTask):
            def requires(self):
                return [B(), S()]
        """)
    for _ in range(3):
        proc = project.run("-j", jobs, "Both")
        assert proc.returncode == 0, proc.stderr
        assert project.read("out/b.txt") == "good"
        assert project.read("site/sub/i.html") == "ok"
    assert "modified by another task of this run" in proc.stderr


def test_a_clean_step_that_removes_the_flow_directory_gives_no_traceback(project):
    """A phony step deleting out/ and .flow/ upstream of a chain, run three times: each run
    rebuilds the chain, with no FileNotFoundError traceback."""
    project.flowfile("""
        class Clean(flow.Task):
            def run(self):
                flow.sh("rm -rf out .flow")
        class Compile(flow.Task):
            def requires(self):
                return Clean()
            def output(self):
                return flow.LocalTarget("out/app.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write("app")
        class Link(flow.Task):
            def requires(self):
                return Compile()
            def output(self):
                return flow.LocalTarget("out/link.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write("link")
        """)
    for _ in range(3):
        proc = project.run("Link")
        assert "Traceback" not in proc.stderr, proc.stderr
        assert proc.returncode == 0, proc.stderr
        assert project.read("out/link.txt") == "link"


# -- 5. commands die with flow ------------------------------------------------------------------
ORPHAN = """
class Two(flow.Task):
    def output(self):
        return flow.LocalTarget("out/two.txt")
    def run(self):
        flow.sh("touch started.marker; sh -c 'sleep TOKEN; echo step1 > out/late.txt' && echo step2 >> {output}")
"""


def _wait_for_command(project, proc, token: str, early: bool = False) -> None:
    """Wait until the task has started its command and the command its `sleep TOKEN` child
    (``early``: only the shell, which may be forking the child right then)."""
    wait_for_file(project.root / "started.marker", proc)
    sleeping = lambda: bool(_processes_with(f"sleep {token}", anywhere=early))  # noqa: E731
    wait_until(sleeping, "the command's child", proc=proc)


@pytest.mark.parametrize("early", [False, True], ids=["child-running", "shell-forking"])
@pytest.mark.parametrize(
    "jobs, sig", [("1", signal.SIGTERM), ("1", signal.SIGINT), ("2", signal.SIGTERM)]
)
def test_a_signal_stops_the_commands_a_task_started_and_their_children(project, jobs, sig, early):
    """flow.sh ran `sh -c 'sleep …; echo … > out/late.txt'`: after flow exits on the signal no
    process of that command is left, so nothing writes an output after the clean-up. Also when
    the signal comes while the shell is still forking its child."""
    token = f"{3000 + os.getpid() % 1000}.{len(jobs)}{sig}{int(early)}"
    project.flowfile(ORPHAN.replace("TOKEN", token))
    proc = project.popen("-j", jobs, "Two")
    try:
        _wait_for_command(project, proc, token, early)
        proc.send_signal(sig)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == {signal.SIGTERM: 143, signal.SIGINT: 130}[sig]
    wait_until(lambda: not _processes_with(f"sleep {token}"), "the command's child to end")
    assert not (project.root / "out" / "two.txt").exists()


def test_after_sigkill_of_flow_the_commands_of_its_workers_die_too(project):
    """-j 2 and SIGKILL: no clean-up can run in flow, yet the workers take their commands (and
    the commands' children) with them."""
    token = f"{4000 + os.getpid() % 1000}.5"
    project.flowfile(ORPHAN.replace("TOKEN", token))
    proc = project.popen("-j", "2", "Two")
    try:
        _wait_for_command(project, proc, token)
        proc.kill()
        proc.wait()
    finally:
        if proc.poll() is None:
            proc.kill()
    wait_until(lambda: not _processes_with(f"sleep {token}"), "the workers' commands to end")


# -- 6. directory outputs are judged by their content --------------------------------------------
SITE = """
import os
from pathlib import Path
class Site(flow.Task):
    def output(self):
        return flow.LocalTarget("site")
    def run(self):
        os.makedirs("site", exist_ok=True)
        Path("site/a.html").write_text("a " + Path("version.txt").read_text())
        HOOK
        Path("site/b.html").write_text("b " + Path("version.txt").read_text())
"""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_a_task_that_fails_halfway_through_a_directory_output_leaves_no_mix(project, jobs):
    """Built once; then a forced rebuild fails after rewriting a.html in place (the directory's
    own stat does not change): the mix of new and old files is removed rather than taken for a
    hand edit, --check says the task must run, and the next run rebuilds it whole."""
    project.write("version.txt", "1")
    project.flowfile(
        SITE.replace("HOOK", "if Path('fail.flag').exists(): raise RuntimeError('halfway')")
    )
    assert project.run("Site").returncode == 0
    project.write("version.txt", "2")
    project.write("fail.flag", "x")
    assert project.run("-j", jobs, "-B", "Site").returncode == 1
    assert not (project.root / "site").exists()
    assert project.run("--check", "Site").returncode == 1
    (project.root / "fail.flag").unlink()
    assert project.run("Site").returncode == 0
    assert project.read("site/a.html") == "a 2" and project.read("site/b.html") == "b 2"
    assert project.run("--check", "Site").returncode == 0


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_after_sigkill_a_half_rewritten_directory_output_is_rebuilt(project, jobs):
    """flow killed while a task rewrote part of a directory output: the next run sees the
    journal, removes the directory and rebuilds it whole."""
    project.write("version.txt", "1")
    hook = (
        "if Path('hang.flag').exists(): Path('started.marker').write_text('x'); "
        "import time; time.sleep(60)"
    )
    project.flowfile(SITE.replace("HOOK", hook))
    assert project.run("Site").returncode == 0
    project.write("version.txt", "2")
    project.write("hang.flag", "x")
    proc = project.popen("-j", jobs, "-B", "Site")
    wait_for_file(project.root / "started.marker", proc)
    proc.kill()
    proc.wait()
    (project.root / "hang.flag").unlink()
    assert project.run("--check", "Site").returncode == 1
    rerun = project.run("Site")
    assert rerun.returncode == 0, rerun.stderr
    assert "removed site" in rerun.stderr
    assert project.read("site/a.html") == "a 2" and project.read("site/b.html") == "b 2"


# -- 20. tasks that misbehave -------------------------------------------------------------------
def test_os_exit_in_run_fails_the_task_instead_of_ending_flow(project):
    """-j 1: os._exit(3) inside run() is a failed task with a message, exit 1, and -k goes on."""
    project.flowfile("""
        import os
        class Exits(flow.Task):
            def output(self):
                return flow.LocalTarget("exits.txt")
            def run(self):
                os._exit(3)
        class Fine(flow.Task):
            def output(self):
                return flow.LocalTarget("fine.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write("ok")
        class Top(flow.WrapperTask):
            def requires(self):
                return [Exits(), Fine()]
        """)
    proc = project.run("-k", "Top")
    assert proc.returncode == 1
    assert "os._exit(3)" in proc.stderr
    assert project.read("fine.txt") == "ok"
    assert "1 failed" in proc.stdout


def test_a_run_that_changes_directory_does_not_confuse_later_tasks(project):
    """A task that chdir()s inside run(): the working directory is restored, so the next task's
    relative output is checked and written where it belongs."""
    project.flowfile("""
        import os
        class Wanders(flow.Task):
            def output(self):
                return flow.LocalTarget("wanders.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write("w")
                os.makedirs("elsewhere", exist_ok=True)
                os.chdir("elsewhere")
        class Next(flow.Task):
            def requires(self):
                return Wanders()
            def output(self):
                return flow.LocalTarget("next.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write("n")
        """)
    proc = project.run("Next")
    assert proc.returncode == 0, proc.stderr
    assert project.read("next.txt") == "n"
    assert not (project.root / "elsewhere" / "next.txt").exists()
    assert project.run("--check", "Next").returncode == 0


@pytest.mark.parametrize("fmt", ["json", "dot", "mermaid"])
def test_the_graph_on_stdout_is_not_mixed_with_what_the_flowfile_prints(project, fmt):
    """A Flowfile that prints while imported: --graph's stdout is the graph alone."""
    project.flowfile('print("hello from the Flowfile")\n' + SIMPLE)
    proc = project.run("--graph", fmt, "Out")
    assert proc.returncode == 0, proc.stderr
    assert "hello from the Flowfile" not in proc.stdout
    assert "hello from the Flowfile" in proc.stderr
    if fmt == "json":
        assert json.loads(proc.stdout)["nodes"][0]["task"] == "Out()"


def test_flow_run_without_a_main_guard_fails_with_advice_under_workers(project):
    """A script calling flow.run() at top level: a -j 2 worker importing it must not start a
    second flow (which waited forever for the first one's locks)."""
    script = project.write(
        "pipeline.py",
        "import flow\n"
        "class A(flow.Task):\n"
        "    def output(self):\n"
        "        return flow.LocalTarget('a.txt')\n"
        "    def run(self):\n"
        "        with self.output().open('w') as f:\n"
        "            f.write('a')\n"
        "flow.run()\n",
    )
    proc = subprocess.run(
        [sys.executable, str(script), "A", "-j", "2"],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 1, proc.stderr
    assert '__name__ == "__main__"' in proc.stderr
    assert "waiting for another flow" not in proc.stderr


# -- dynamic dependencies and locks ----------------------------------------------------------
def test_a_yielded_task_already_running_in_a_worker_runs_only_once(project):
    """-j 2: A starts in a worker; Parent (a generator run(), in the flow process) yields A.
    Parent waits for that run of A rather than running A again beside it."""
    project.flowfile("""
        import time
        def log(line):
            with open("log.txt", "a") as f:
                f.write(line + "\\n")
        class A(flow.Task):
            def output(self):
                return flow.LocalTarget("a.txt")
            def run(self):
                log("A")
                # Still running when Parent yields it, however slow the machine: A ends only
                # after Parent has begun (rather than after a 1 s sleep).
                deadline = time.monotonic() + 60
                while "Parent" not in open("log.txt").read().split():
                    assert time.monotonic() < deadline, "Parent never began"
                    time.sleep(0.01)
                with self.output().open("w") as f:
                    f.write("a")
        class Parent(flow.Task):
            def output(self):
                return flow.LocalTarget("parent.txt")
            def run(self):
                log("Parent")
                a = yield A()
                with self.output().open("w") as f:
                    f.write(a.open().read() + "!")
        class Top(flow.WrapperTask):
            def requires(self):
                return [A(), Parent()]
        """)
    proc = project.run("-j", "2", "Top")
    assert proc.returncode == 0, proc.stderr
    assert project.read("log.txt").splitlines().count("A") == 1
    assert project.read("parent.txt") == "a!"
