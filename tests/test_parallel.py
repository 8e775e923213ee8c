"""-j N: worker processes, overlap, captured output, keep-going, and -j 1 staying in-process."""

from __future__ import annotations

import json
import os
import subprocess

from conftest import FLOW

SLEEPERS = """
import json, os, time

class Nap(flow.Task):
    i = flow.IntParameter()
    def output(self):
        return flow.LocalTarget(f"out/nap{self.i}.json")
    def run(self):
        start = time.time()
        time.sleep(0.8)
        with self.output().open("w") as f:
            json.dump({"start": start, "end": time.time(), "pid": os.getpid()}, f)

class Naps(flow.WrapperTask):
    n = flow.IntParameter(default=2)
    def requires(self):
        return [Nap(i) for i in range(self.n)]
"""


# Tasks that meet: each marks that it has started, then waits until all have. Run one at a
# time, the first would wait in vain (and fail after a minute); run together, all finish at once.
MEETING = """
import json, os, time
from pathlib import Path

class Meet(flow.Task):
    i = flow.IntParameter()
    n = flow.IntParameter()
    def output(self):
        return flow.LocalTarget(f"out/meet{self.i}.json")
    def run(self):
        start = time.time()
        Path(f"started{self.i}").write_text("x")
        deadline = time.monotonic() + 60
        while not all(Path(f"started{k}").exists() for k in range(self.n)):
            if time.monotonic() > deadline:
                raise RuntimeError("the other tasks never started beside this one")
            time.sleep(0.01)
        with self.output().open("w") as f:
            json.dump({"start": start, "end": time.time(), "pid": os.getpid()}, f)

class Meeting(flow.WrapperTask):
    n = flow.IntParameter(default=2)
    def requires(self):
        return [Meet(i=i, n=self.n) for i in range(self.n)]
"""


def _stamps(project, n, name="nap"):
    return [json.loads(project.read(f"out/{name}{i}.json")) for i in range(n)]


def test_two_jobs_run_two_tasks_at_the_same_time(project):
    """-j 2 with two independent tasks that each wait for the other to start: both finish, in
    two processes, and their recorded intervals overlap."""
    project.flowfile(MEETING)
    proc = project.run("-j", "2", "Meeting", timeout=120)
    assert proc.returncode == 0, proc.stderr
    a, b = _stamps(project, 2, "meet")
    assert max(a["start"], b["start"]) < min(a["end"], b["end"]), (a, b)
    assert a["pid"] != b["pid"]


def test_one_job_runs_tasks_in_the_flow_process_one_after_the_other(project):
    """-j 1: the tasks run in flow's own process, and never overlap."""
    project.flowfile(SLEEPERS)
    proc = subprocess.Popen(
        [*FLOW, "-j", "1", "Naps"],
        cwd=project.root,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    a, b = sorted(_stamps(project, 2), key=lambda s: s["start"])
    assert a["pid"] == b["pid"] == proc.pid
    assert a["end"] <= b["start"]


def test_with_several_jobs_each_task_runs_in_a_worker_process_not_in_flow(project):
    """-j 2: run() executes in a worker, whose pid is not flow's."""
    project.flowfile(SLEEPERS)
    proc = subprocess.Popen(
        [*FLOW, "-j", "2", "Naps", "n=1"],
        cwd=project.root,
        text=True,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 0, err
    assert _stamps(project, 1)[0]["pid"] != proc.pid


def test_one_job_keeps_the_terminal_so_breakpoint_works(project):
    """-j 1: a breakpoint() in run() reads its commands from flow's stdin."""
    project.flowfile("""
        class Debug(flow.Task):
            def output(self):
                return flow.LocalTarget("out/debug.txt")
            def run(self):
                answer = 6 * 7
                breakpoint()
                with self.output().open("w") as f:
                    f.write(str(answer))
        """)
    env = {k: v for k, v in os.environ.items() if k != "PYTHONBREAKPOINT"}
    proc = subprocess.run(
        [*FLOW, "-j", "1", "Debug"],
        cwd=project.root,
        input="p answer\nc\n",
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    assert "(Pdb)" in proc.stdout and "42" in proc.stdout
    assert project.read("out/debug.txt") == "42"


CHATTY = """
import sys, time

class Talk(flow.Task):
    name = flow.Parameter()
    fail = flow.BoolParameter(default=False)
    def output(self):
        return flow.LocalTarget(f"out/{self.name}.txt")
    def run(self):
        for i in range(5):
            print(f"{self.name} line {i}", flush=True)
            print(f"{self.name} err {i}", file=sys.stderr, flush=True)
            time.sleep(0.1)
        if self.fail:
            raise RuntimeError(f"{self.name} gave up")
        with self.output().open("w") as f:
            f.write("done")

class Both(flow.WrapperTask):
    def requires(self):
        return [Talk(name="alpha", fail=True), Talk(name="beta")]
"""


def test_parallel_task_output_is_captured_and_shown_unmixed_on_failure(project):
    """-j 2: a failing task's output (stdout and stderr) is shown in one block, not interleaved
    with the other task's; the task that worked prints nothing of its own without -v."""
    project.flowfile(CHATTY)
    proc = project.run("-j", "2", "-k", "Both")
    assert proc.returncode == 1
    block = [ln for ln in proc.stderr.splitlines() if ln.startswith("  | ")]
    assert block == [f"  | alpha {kind} {i}" for i in range(5) for kind in ("line", "err")]
    assert "beta line" not in proc.stdout + proc.stderr
    assert "RuntimeError: alpha gave up" in proc.stderr


def test_parallel_task_output_is_shown_with_verbose(project):
    """-j 2 -v: the captured output of a task that worked follows its line."""
    project.flowfile(CHATTY)
    proc = project.run("-j", "2", "-v", "Talk", "name=beta")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    at = next(i for i, ln in enumerate(lines) if ln.startswith("[1/1] Talk(name=beta"))
    assert lines[at + 1] == "  | beta line 0"


def test_keep_going_with_jobs_finishes_independent_branches_and_lists_failures(project):
    """-j 2 -k: a failure skips only its dependents; the rest is built; exit 1."""
    project.flowfile("""
        class Leaf(flow.Task):
            name = flow.Parameter()
            def output(self):
                return flow.LocalTarget(f"out/{self.name}.txt")
            def run(self):
                if self.name == "bad":
                    raise ValueError("bad leaf")
                with self.output().open("w") as f:
                    f.write(self.name)

        class Over(flow.Task):
            name = flow.Parameter()
            def requires(self):
                return Leaf(name=self.name)
            def output(self):
                return flow.LocalTarget(f"out/over-{self.name}.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write("over")

        class Top(flow.WrapperTask):
            def requires(self):
                return [Over(name=n) for n in ("bad", "a", "b", "c")]
        """)
    code, doc = project.run_json("-j", "2", "-k", "Top")
    assert code == 1
    status = {t["task"]: t["status"] for t in doc["tasks"]}
    assert status["Leaf(name=bad)"] == "failed"
    assert status["Over(name=bad)"] == "skipped"
    for n in "abc":
        assert status[f"Over(name={n})"] == "ran"
    proc = project.run("-j", "2", "-k", "Top")
    assert "failed: Leaf(name=bad)" in proc.stdout and "skipped: Over(name=bad)" in proc.stdout


def test_without_keep_going_a_failure_starts_nothing_new_but_lets_running_tasks_finish(project):
    """-j 2: when one task fails, the one running beside it still completes and is recorded;
    nothing else starts; exit 1."""
    project.flowfile("""
        import time
        from pathlib import Path
        class Slow(flow.Task):
            def output(self):
                return flow.LocalTarget("out/slow.txt")
            def run(self):
                # Finish only once the test has seen flow report Quick's failure.
                deadline = time.monotonic() + 60
                while not Path("go").exists():
                    if time.monotonic() > deadline:
                        raise RuntimeError("never told to go on")
                    time.sleep(0.01)
                with self.output().open("w") as f:
                    f.write("slow")
        class Quick(flow.Task):
            def output(self):
                return flow.LocalTarget("out/quick.txt")
            def run(self):
                raise ValueError("quick failure")
        class Later(flow.Task):
            def requires(self):
                return [Slow()]
            def output(self):
                return flow.LocalTarget("out/later.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write("later")
        class Top(flow.WrapperTask):
            def requires(self):
                return [Slow(), Quick(), Later()]
        """)
    live = project.start("--json", "-j", "2", "Top")
    live.wait_for_line("FAILED Quick()")  # flow has taken the failure in; Slow still runs
    (project.root / "go").write_text("x")
    code, out, err = live.finish()
    assert code == 1, err
    status = {t["task"]: t["status"] for t in json.loads(out)["tasks"]}
    assert status["Slow()"] == "ran" and status["Quick()"] == "failed"
    assert status["Later()"] == "skipped"
    assert not (project.root / "out/later.txt").exists()
    assert project.ran("Slow") == []  # recorded: up to date now


def test_workers_see_upstream_class_overrides_from_the_command_line(project):
    """-j 2 with Task.param=value: a worker builds the same upstream task the plan had."""
    project.flowfile("""
        class Base(flow.Task):
            n = flow.IntParameter(default=1)
            def output(self):
                return flow.LocalTarget(f"out/base{self.n}.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write(str(self.n))
        class Use(flow.Task):
            def requires(self):
                return Base()
            def output(self):
                return flow.LocalTarget("out/use.txt")
            def run(self):
                with self.input().open() as fin, self.output().open("w") as f:
                    f.write(fin.read() + " used")
        """)
    proc = project.run("-j", "2", "Use", "Base.n=5")
    assert proc.returncode == 0, proc.stderr
    assert project.read("out/use.txt") == "5 used"


def test_dynamic_dependencies_run_under_several_jobs(project):
    """-j 2: a run() that yields tasks is driven in flow's process; what it yields gets built."""
    project.flowfile("""
        class Part(flow.Task):
            i = flow.IntParameter()
            def output(self):
                return flow.LocalTarget(f"out/part{self.i}.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write(str(self.i))
        class Gather(flow.Task):
            def output(self):
                return flow.LocalTarget("out/gather.txt")
            def run(self):
                parts = yield [Part(i) for i in range(3)]
                with self.output().open("w") as f:
                    f.write("".join(p.open().read() for p in parts))
        """)
    proc = project.run("-j", "2", "Gather")
    assert proc.returncode == 0, proc.stderr
    assert project.read("out/gather.txt") == "012"


def test_a_task_that_kills_its_worker_fails_and_the_build_goes_on_with_keep_going(project):
    """-j 2 -k: os._exit() in run() takes its worker down; that task fails, others still run."""
    project.flowfile("""
        import os, time
        class Crash(flow.Task):
            def output(self):
                return flow.LocalTarget("out/crash.txt")
            def run(self):
                os.kill(os.getpid(), 9)  # SIGKILL: the worker dies
        class Fine(flow.Task):
            i = flow.IntParameter()
            def output(self):
                return flow.LocalTarget(f"out/fine{self.i}.txt")
            def run(self):
                time.sleep(0.2)
                with self.output().open("w") as f:
                    f.write("ok")
        class Top(flow.WrapperTask):
            def requires(self):
                return [Crash()] + [Fine(i) for i in range(3)]
        """)
    proc = project.run("-j", "2", "-k", "Top")
    assert proc.returncode == 1
    assert "worker process died" in proc.stderr
    assert "Traceback" not in proc.stderr
    code, doc = project.run_json("-j", "2", "-k", "Top")
    status = {t["task"]: t["status"] for t in doc["tasks"]}
    assert status["Crash()"] == "failed"
    assert all(status[f"Fine(i={i})"] == "up-to-date" for i in range(3))


def test_on_a_terminal_the_status_line_names_the_tasks_running_at_once(project):
    """-j 2 with stderr on a pty: the live status line lists both running tasks."""
    import pty

    project.flowfile(SLEEPERS)
    master, slave = pty.openpty()
    env = {k: v for k, v in os.environ.items() if k != "NO_COLOR"}
    proc = subprocess.Popen(
        [*FLOW, "-j", "2", "Naps"],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=slave,
        text=True,
        env=env,
    )
    os.close(slave)
    seen = b""
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # the pty closes when flow exits
            break
        if not chunk:
            break
        seen += chunk
    os.close(master)
    proc.communicate(timeout=60)
    assert proc.returncode == 0
    text = seen.decode()
    assert "running Nap(i=0), Nap(i=1)" in text or "running Nap(i=1), Nap(i=0)" in text, text
