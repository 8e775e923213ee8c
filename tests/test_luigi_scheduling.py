"""Luigi's scheduling attributes (resources, priority, retry_count, worker_timeout) and ranges."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

import pytest

# Each Step notes when it starts and ends in a log of its own; the test then counts how many ran
# at the same time from the logs, without any timing assumption.
STEPS = """
import os, time, uuid

class Step(flow.Task):
    i = flow.IntParameter()
    resources = {"db": 1}
    def output(self):
        return flow.LocalTarget(f"out/{self.i}.txt")
    def run(self):
        os.makedirs("running", exist_ok=True)
        me = f"running/{self.i}"
        open(me, "w").close()
        time.sleep(0.3)
        peers = len(os.listdir("running"))
        os.unlink(me)
        with self.output().open("w") as f:
            f.write(str(peers))

class All(flow.WrapperTask):
    def requires(self):
        return [Step(i) for i in range(6)]
"""


def most_at_once(project) -> int:
    return max(int(project.read(f"out/{i}.txt")) for i in range(6))


@pytest.mark.parametrize(
    ("name", "text", "total"),
    [
        ("luigi.cfg", "[resources]\ndb = 1\n", 1),
        ("pyproject.toml", "[tool.flow.resources]\ndb = 2\n", 2),
    ],
)
def test_tasks_never_hold_more_of_a_resource_than_its_total(project, name, text, total):
    """Six tasks needing db=1 under -j 4 never run more than the configured total at once."""
    project.flowfile(STEPS)
    project.write(name, text)
    proc = project.run("All", "-j", "4")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert 1 <= most_at_once(project) <= total
    assert "warning" not in proc.stderr  # [tool.flow.resources] is a known setting


def test_a_task_needing_more_than_the_total_fails_with_the_setting_to_raise(project):
    """resources = {"db": 3} with [resources] db = 2: the task fails at once, naming the fix."""
    project.flowfile(STEPS.replace('resources = {"db": 1}', 'resources = {"db": 3}'))
    project.write("luigi.cfg", "[resources]\ndb = 2\n")
    proc = project.run("Step", "--i", "1")
    assert proc.returncode == 1
    assert "needs 3 of resource 'db' but the total is 2" in proc.stdout + proc.stderr
    assert not (project.root / "out/1.txt").exists()


def test_a_bad_resource_total_is_an_error_naming_the_file_and_line(project):
    """[resources] db = many: exit 2 with the file and line, no traceback."""
    project.flowfile(STEPS)
    project.write("luigi.cfg", "[resources]\ndb = many\n")
    proc = project.run("All", "-j", "2")
    assert proc.returncode == 2
    assert "luigi.cfg:2" in proc.stderr and "whole number" in proc.stderr


def test_higher_priority_tasks_start_first_among_ready_ones(project):
    """Four independent tasks: they run in priority order, highest first (ties as given)."""
    project.flowfile(
        """
        class P(flow.Task):
            name = flow.Parameter()
            @property
            def priority(self):
                return {"low": 0, "mid": 5, "high": 10, "top": 100}[self.name]
            def output(self):
                return flow.LocalTarget(f"out/{self.name}")
            def run(self):
                self.output().open("w").close()

        class All(flow.WrapperTask):
            def requires(self):
                return [P("low"), P("mid"), P("top"), P("high")]
        """
    )
    assert project.ran("All") == ["P(name=top)", "P(name=high)", "P(name=mid)", "P(name=low)"]


def test_what_an_urgent_task_needs_starts_before_a_less_urgent_task(project):
    """Priority passes upstream as in Luigi: Need (0) required by Urgent (10) runs before Other (5)."""
    project.flowfile(
        """
        class Base(flow.Task):
            def output(self):
                return flow.LocalTarget(f"out/{type(self).__name__}")
            def run(self):
                self.output().open("w").close()

        class Other(Base):
            priority = 5

        class Need(Base):
            pass

        class Urgent(Base):
            priority = 10
            def requires(self):
                return Need()

        class All(flow.WrapperTask):
            def requires(self):
                return [Other(), Urgent()]
        """
    )
    assert project.ran("All") == ["Need()", "Urgent()", "Other()"]


RETRY = """
import os

class Flaky(flow.Task):
    retry_count = 2
    fail_times = flow.IntParameter()
    def output(self):
        return flow.LocalTarget("out/ok.txt")
    def run(self):
        with open("tries", "a") as f:
            f.write("x")
        if len(open("tries").read()) <= self.fail_times:
            with self.output().open("w") as f:
                f.write("partial")
                raise ValueError(f"try {len(open('tries').read())} failed")
        with self.output().open("w") as f:
            f.write("done")
"""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_retry_count_reruns_a_failing_task_in_the_same_build(project, jobs):
    """A task failing twice with retry_count = 2 succeeds on its third run; each retry is shown."""
    project.flowfile(RETRY)
    proc = project.run("--json", "Flaky", "--fail-times", "2", "-j", jobs)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert project.read("tries") == "xxx" and project.read("out/ok.txt") == "done"
    (task,) = json.loads(proc.stdout)["tasks"]
    assert task["status"] == "ran" and task["attempts"] == 3
    retries = [w for w in proc.stderr.splitlines() if "running it again" in w]
    assert len(retries) == 2
    assert "attempt 1 of 3" in retries[0] and "try 1 failed" in retries[0]


def test_a_task_failing_more_often_than_its_retry_count_fails(project):
    """Three runs (one plus two retries), then the failure stands and nothing is left behind."""
    project.flowfile(RETRY)
    proc = project.run("Flaky", "--fail-times", "5")
    assert proc.returncode == 1
    assert project.read("tries") == "xxx"
    assert "try 3 failed" in proc.stdout + proc.stderr
    assert not (project.root / "out/ok.txt").exists()


TIMEOUT = """
class Slow(flow.Task):
    worker_timeout = 1
    def output(self):
        return flow.LocalTarget("out/slow.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("partial")
            flow.sh("sleep 120 && echo finished > late.txt")

class Fast(flow.Task):
    def output(self):
        return flow.LocalTarget("out/fast.txt")
    def run(self):
        self.output().open("w").close()

class All(flow.WrapperTask):
    def requires(self):
        return [Slow(), Fast()]
"""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_worker_timeout_stops_an_overrunning_task_and_fails_it_cleanly(project, jobs):
    """A run past worker_timeout is stopped with the command it started; the task fails with
    the reason, leaves no output, and the other task still runs (-k)."""
    project.flowfile(TIMEOUT)
    proc = project.run("All", "-k", "-j", jobs, timeout=100)
    assert proc.returncode == 1
    assert "Slow() ran longer than its worker_timeout of 1 s" in proc.stdout + proc.stderr
    assert (project.root / "out/fast.txt").exists()
    assert not (project.root / "out/slow.txt").exists()
    assert not list((project.root / "out").glob(".*flow-tmp"))
    procs = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "sleep 120 && echo finished" not in procs


# -- ranges -----------------------------------------------------------------------------------------
def days_ago(n: int) -> str:
    return (dt.date.today() - dt.timedelta(days=n)).isoformat()


REPORT = """
import json, os

class Report(flow.Task):
    date = flow.DateParameter()
    region = flow.Parameter(default="eu")
    def output(self):
        return flow.LocalTarget(f"out/{self.region}/{self.date}.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write(str(self.date))
"""

BULK = """
    @classmethod
    def bulk_complete(cls, parameter_tuples):
        dates = list(parameter_tuples)
        with open("bulk.log", "a") as f:
            f.write(json.dumps([str(d) for d in dates]) + "\\n")
        return [d for d in dates if os.path.exists(f"out/eu/{d}.txt")]
"""


def test_range_daily_from_the_command_line_builds_missing_dates_stop_excluded(project):
    """`flow RangeDaily --of Report --start A --stop B` with nothing imported: A..B-1 built;
    a second run with a later stop builds only the new date."""
    project.flowfile(REPORT)
    start, stop = days_ago(5), days_ago(2)
    ran = project.ran("RangeDaily", "--of", "Report", "--start", start, "--stop", stop)
    assert [t for t in ran if t.startswith("Report")] == [
        f"Report(date={days_ago(n)}, region=eu)" for n in (5, 4, 3)
    ]
    assert not (project.root / f"out/eu/{stop}.txt").exists()
    ran = project.ran("RangeDaily", "--of", "Report", "--start", start, "--stop", days_ago(1))
    assert [t for t in ran if t.startswith("Report")] == [f"Report(date={stop}, region=eu)"]


def test_range_daily_asks_bulk_complete_once_and_passes_of_params(project):
    """A task with bulk_complete answers for every date at once; --of-params sets the others."""
    project.flowfile(REPORT + BULK)
    (project.root / "out/eu").mkdir(parents=True)
    (project.root / f"out/eu/{days_ago(3)}.txt").write_text("old")
    args = ["--of", "Report", "--start", days_ago(4), "--stop", days_ago(1)]
    ran = project.ran("RangeDaily", *args, "--of-params", '{"region": "eu"}')
    assert [t for t in ran if t.startswith("Report")] == [
        f"Report(date={days_ago(n)}, region=eu)" for n in (4, 2)
    ]
    calls = [json.loads(line) for line in project.read("bulk.log").splitlines()]
    assert calls == [[days_ago(n) for n in (4, 3, 2)]]


def test_range_hourly_and_a_range_without_start_or_stop(project):
    """RangeHourly builds each hour; a range with neither start nor stop is a usage error."""
    project.flowfile(
        """
        class Hourly(flow.Task):
            hour = flow.DateHourParameter()
            def output(self):
                return flow.LocalTarget(f"out/{self.hour:%Y%m%d%H}.txt")
            def run(self):
                self.output().open("w").close()
        """
    )
    day = days_ago(1)
    ran = project.ran(
        "RangeHourly", "--of", "Hourly", "--start", f"{day}T22", "--stop", f"{days_ago(0)}T01"
    )
    assert [t for t in ran if t.startswith("Hourly")] == [
        f"Hourly(hour={day}T22)",
        f"Hourly(hour={day}T23)",
        f"Hourly(hour={days_ago(0)}T00)",
    ]
    proc = project.run("RangeDaily", "--of", "Hourly")
    assert proc.returncode == 2
    assert "needs --start or --stop" in proc.stderr and "Traceback" not in proc.stderr
