"""-j N with tasks queued in workers: a failure, -k and a dead worker with tasks waiting behind it.

The pool keeps more tasks in flight than it has workers (the next one waits in a worker's queue
while the worker runs the one before). These tests give four tasks of falling priority to two
workers: the first fails (or kills its worker) only once the second has started, so the third
and fourth are in flight but not started when it does.
"""

from __future__ import annotations

import json
import os

# Lead (priority 4) ends first: it fails, kills its worker or works, depending on `how`, once
# Busy (3) has started. Busy finishes when the test writes "go". Third (2) and Fourth (1) only
# mark that they started and write their output.
QUEUED = """
import os, time
from pathlib import Path

def wait_for(name):
    deadline = time.monotonic() + 60
    while not Path(name).exists():
        if time.monotonic() > deadline:
            raise RuntimeError(f"never saw {name}")
        time.sleep(0.01)

class Lead(flow.Task):
    priority = 4
    how = flow.Parameter(default="fail")
    def output(self):
        return flow.LocalTarget("out/lead.txt")
    def run(self):
        wait_for("started-busy")
        if self.how == "fail":
            raise ValueError("lead failed")
        if self.how == "die":
            os.kill(os.getpid(), 9)
        with self.output().open("w") as f:
            f.write("lead")

class Busy(flow.Task):
    priority = 3
    def output(self):
        return flow.LocalTarget("out/busy.txt")
    def run(self):
        Path("started-busy").write_text("x")
        wait_for("go")
        with self.output().open("w") as f:
            f.write("busy")

class Mark(flow.Task):
    name = flow.Parameter()
    def output(self):
        return flow.LocalTarget(f"out/{self.name}.txt")
    def run(self):
        Path(f"started-{self.name}").write_text(str(os.getpid()))
        with self.output().open("w") as f:
            f.write(self.name)

class Third(Mark):
    priority = 2

class Fourth(Mark):
    priority = 1

class Top(flow.WrapperTask):
    how = flow.Parameter(default="fail")
    def requires(self):
        return [Lead(how=self.how), Busy(), Third(name="third"), Fourth(name="fourth")]
"""


def _statuses(out: str) -> dict[str, dict]:
    return {t["task"]: t for t in json.loads(out)["tasks"]}


def test_without_keep_going_tasks_waiting_in_a_worker_queue_never_start(project):
    """-j 2: Lead fails while Busy runs; Third and Fourth were handed to workers but had not
    started: they never start, are reported skipped, and write nothing. Busy completes."""
    project.flowfile(QUEUED)
    live = project.start("--json", "-j", "2", "Top")
    live.wait_for_line("FAILED Lead(how=fail)")
    (project.root / "go").write_text("x")
    code, out, err = live.finish()
    assert code == 1, err
    tasks = _statuses(out)
    assert tasks["Lead(how=fail)"]["status"] == "failed"
    assert tasks["Busy()"]["status"] == "ran"
    for name, tid in (("third", "Third(name=third)"), ("fourth", "Fourth(name=fourth)")):
        assert tasks[tid]["status"] == "skipped", tasks[tid]
        assert "not started" in tasks[tid]["error"]
        assert not (project.root / f"started-{name}").exists()
        assert not (project.root / f"out/{name}.txt").exists()
    # Nothing was left half-done: the next run builds exactly what did not run.
    (project.root / "out").mkdir(exist_ok=True)
    ran = project.ran("-j", "2", "Top", "--how", "work")
    assert sorted(ran) == ["Fourth(name=fourth)", "Lead(how=work)", "Third(name=third)"]


def test_with_keep_going_a_failure_lets_the_tasks_queued_behind_it_run(project):
    """-j 2 -k: the worker whose task failed goes on with the task queued behind it."""
    project.flowfile(QUEUED)
    (project.root / "go").write_text("x")
    live = project.start("--json", "-j", "2", "-k", "Top")
    code, out, err = live.finish()
    assert code == 1, err
    tasks = _statuses(out)
    assert tasks["Lead(how=fail)"]["status"] == "failed"
    for tid in ("Busy()", "Third(name=third)", "Fourth(name=fourth)"):
        assert tasks[tid]["status"] == "ran", tasks[tid]
    assert project.read("out/third.txt") == "third" and project.read("out/fourth.txt") == "fourth"


def test_a_worker_killed_with_tasks_queued_fails_only_its_running_task(project):
    """-j 2 -k: Lead kills its worker; the tasks queued behind it run in a worker that lives."""
    project.flowfile(QUEUED)
    (project.root / "go").write_text("x")
    live = project.start("--json", "-j", "2", "-k", "Top", "--how", "die")
    code, out, err = live.finish()
    assert code == 1, err
    tasks = _statuses(out)
    assert tasks["Lead(how=die)"]["status"] == "failed"
    assert "worker process died" in tasks["Lead(how=die)"]["error"]
    for tid in ("Busy()", "Third(name=third)", "Fourth(name=fourth)"):
        assert tasks[tid]["status"] == "ran", tasks[tid]
    pids = {int(project.read(f"started-{n}")) for n in ("third", "fourth")}
    assert os.getpid() not in pids


def test_without_keep_going_a_dead_worker_leaves_its_queued_tasks_unstarted(project):
    """-j 2: Lead kills its worker; without -k the tasks waiting behind it never start."""
    project.flowfile(QUEUED)
    live = project.start("--json", "-j", "2", "Top", "--how", "die")
    live.wait_for_line("FAILED Lead(how=die)")
    (project.root / "go").write_text("x")
    code, out, err = live.finish()
    assert code == 1, err
    tasks = _statuses(out)
    assert tasks["Busy()"]["status"] == "ran"
    for name in ("third", "fourth"):
        assert not (project.root / f"started-{name}").exists()


def test_many_small_tasks_under_two_jobs_all_run_once_in_workers(project):
    """-j 2 with 200 tiny tasks and a fan-in: every task runs exactly once, in a worker
    process, and the second run has nothing to do."""
    project.flowfile("""
        import os
        class Leaf(flow.Task):
            i = flow.IntParameter()
            def output(self):
                return flow.LocalTarget(f"out/{self.i}.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write(f"{self.i} {os.getpid()}")
        class Sum(flow.Task):
            def requires(self):
                return [Leaf(i=i) for i in range(200)]
            def output(self):
                return flow.LocalTarget("out/sum.txt")
            def run(self):
                total = sum(int(t.open().read().split()[0]) for t in self.input())
                with self.output().open("w") as f:
                    f.write(str(total))
        """)
    code, doc = project.run_json("-j", "2", "Sum")
    assert code == 0, doc
    assert sorted(t["status"] for t in doc["tasks"]) == ["ran"] * 201
    assert project.read("out/sum.txt") == str(sum(range(200)))
    pids = {project.read(f"out/{i}.txt").split()[1] for i in range(200)}
    assert 1 <= len(pids) <= 2
    assert project.ran("-j", "2", "Sum") == []


def test_a_task_queued_behind_another_reports_only_its_own_run_time(project):
    """-j 2: Later waits in a worker's queue behind a 2-second task; its reported duration is
    that of its own run (a few milliseconds), not the wait."""
    project.flowfile("""
        import time
        class Nap(flow.Task):
            i = flow.IntParameter()
            priority = 2
            def output(self):
                return flow.LocalTarget(f"out/nap{self.i}.txt")
            def run(self):
                time.sleep(2)
                with self.output().open("w") as f:
                    f.write("nap")
        class Later(flow.Task):
            priority = 1
            def output(self):
                return flow.LocalTarget("out/later.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write("later")
        class Top(flow.WrapperTask):
            def requires(self):
                return [Nap(i=0), Nap(i=1), Later()]
        """)
    code, doc = project.run_json("-j", "2", "Top")
    assert code == 0, doc
    seconds = {t["task"]: t["seconds"] for t in doc["tasks"]}
    assert seconds["Nap(i=0)"] >= 2 and seconds["Nap(i=1)"] >= 2
    assert seconds["Later()"] < 1.0


def test_a_task_with_a_worker_timeout_never_waits_in_a_queue_on_its_clock(project):
    """-j 2 with worker_timeout: a task's clock starts when it is handed to a worker, so none
    waits in a worker's queue: Third starts when a worker is free and finishes in its 5 s, though
    it ends 6 s after the build began."""
    project.flowfile("""
        import time
        class Nap(flow.Task):
            name = flow.Parameter()
            worker_timeout = 5
            def output(self):
                return flow.LocalTarget(f"out/{self.name}.txt")
            def run(self):
                time.sleep(3)
                with self.output().open("w") as f:
                    f.write(self.name)
        class First(Nap):
            priority = 2
        class Third(Nap):
            priority = 1
        class Top(flow.WrapperTask):
            def requires(self):
                return [First(name="a"), First(name="b"), Third(name="c")]
        """)
    code, doc = project.run_json("-j", "2", "Top")
    assert code == 0, doc
    assert {t["task"]: t["status"] for t in doc["tasks"]}["Third(name=c)"] == "ran"
