"""The seams, tested with small fakes: a backend that records what ran (and fails or dies on
demand), an in-memory target with a settable fingerprint, and the event stream. These run in
milliseconds, in this process; the subprocess tests elsewhere prove what a user sees."""

from __future__ import annotations

import os
from typing import Any

import pytest

import flow
from flow.backends import Completion, Job
from flow.codehash import CodeHasher
from flow.decide import Context, decide
from flow.events import Fanout, Status
from flow.fingerprint import Fingerprinter
from flow.graph import build_graph
from flow.plan import make_plan
from flow.store.records import Manifest
from flow.target import Info

STORE: dict[str, str] = {}  # the in-memory "disk" of MemoryTarget
LOOKS: list[str] = []  # every info() a MemoryTarget answered


class MemoryTarget(flow.Target):
    """A target held in a dict: its content is its fingerprint."""

    def __init__(self, name: str) -> None:
        self.key = f"memory://{name}"

    def exists(self) -> bool:
        return self.key in STORE

    def info(self) -> Info:
        LOOKS.append(self.key)
        return Info(self.key in STORE, STORE.get(self.key))

    def snapshot(self) -> Any:
        return STORE.get(self.key)

    def write(self, text: str) -> None:
        STORE[self.key] = text

    def read(self) -> str:
        return STORE[self.key]

    def remove(self) -> None:
        STORE.pop(self.key, None)


class Source(flow.ExternalTask):
    def output(self):
        return MemoryTarget("source")


class Length(flow.Task):
    """Its output depends only on the length of the source: a rerun may change nothing."""

    def requires(self):
        return Source()

    def output(self):
        return MemoryTarget("length")

    def run(self):
        self.output().write(str(len(self.input().read())))


class Report(flow.Task):
    def requires(self):
        return Length()

    def output(self):
        return MemoryTarget("report")

    def run(self):
        self.output().write(f"length {self.input().read()}")


class Other(flow.Task):
    def output(self):
        return MemoryTarget("other")

    def run(self):
        self.output().write("other")


class Both(flow.WrapperTask):
    def requires(self):
        return [Report(), Other()]


class FakeBackend:
    """Runs each job's ``run()`` here and records its id; ``fail`` ids fail, ``die`` ids end as
    a dead worker would (nothing written, an error)."""

    def __init__(self, fail: tuple[str, ...] = (), die: tuple[str, ...] = (), slots: int = 2):
        self.slots = slots
        self.fail, self.die = set(fail), set(die)
        self.ran: list[str] = []
        self.killed = False
        self.closed = False
        self._done: list[Completion] = []

    def accepts(self, task) -> bool:
        return True

    def submit(self, job: Job) -> None:
        self.ran.append(job.task_id)
        if job.task_id in self.die:
            self._done.append(Completion(job.task_id, "its worker process died"))
            return
        job.task.run()
        error = "it failed on purpose" if job.task_id in self.fail else None
        self._done.append(Completion(job.task_id, error))

    def wait(self, timeout: float | None) -> list[Completion]:
        done, self._done = self._done, []
        return done

    def kill(self) -> None:
        self.killed = True

    def close(self) -> None:
        self.closed = True


class Recorder:
    """A subscriber that keeps the events it was sent, as (name, task id or None)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, str | None]] = []

    def run_started(self, plan) -> None:
        self.seen.append(("run_started", None))

    def task_started(self, tid, k, n) -> None:
        self.seen.append(("task_started", tid))

    def task_finished(self, result, k, n) -> None:
        self.seen.append(("task_finished", result.task_id))

    def run_finished(self, results, elapsed, missing) -> None:
        self.seen.append(("run_finished", None))


class Quiet:
    """A reporter that prints nothing."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: None


@pytest.fixture(autouse=True)
def in_tmp(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    STORE.clear()
    LOOKS.clear()
    STORE["memory://source"] = "abc"


def _build(task, backend, **options):
    return flow.build([task], reporter=Quiet(), backend=backend, **options)


def test_stale_tasks_run_through_the_backend_in_dependency_order():
    """Nothing built yet: the backend is handed Length, then Report, and closed afterwards."""
    backend = FakeBackend()
    result = _build(Report(), backend)
    assert backend.ran == ["Length()", "Report()"]
    assert result.ran == ["Length()", "Report()"]
    assert STORE["memory://report"] == "length 3"
    assert backend.closed


def test_a_second_build_hands_the_backend_nothing():
    """Everything was built and recorded: the no-op runs nothing."""
    _build(Report(), FakeBackend())
    backend = FakeBackend()
    result = _build(Report(), backend)
    assert backend.ran == []
    assert result.up_to_date == ["Length()", "Report()"]


def test_rebuilt_task_with_identical_output_does_not_rerun_dependents():
    """The source changes but keeps its length: Length reruns, writes the same bytes, and
    Report (whose input fingerprint is unchanged) does not run: early cutoff."""
    _build(Report(), FakeBackend())
    STORE["memory://source"] = "xyz"
    backend = FakeBackend()
    _build(Report(), backend)
    assert backend.ran == ["Length()"]


def test_after_a_failure_nothing_new_starts_without_keep_going():
    """Length (first in order) fails with one slot: Report is skipped for it, and Other, which
    does not need it, never starts."""
    backend = FakeBackend(fail=("Length()",), slots=1)
    result = _build(Both(), backend)
    assert backend.ran == ["Length()"]
    assert result.results["Length()"].status is Status.FAILED
    assert result.results["Other()"].status is Status.SKIPPED
    assert "an earlier task failed" in result.results["Other()"].error
    assert result.results["Report()"].status is Status.SKIPPED
    assert result.exit_status == 1
    assert "memory://length" not in STORE  # a failed task's output is removed


def test_a_failed_task_skips_its_dependents():
    """Length fails: Report is skipped because of it."""
    backend = FakeBackend(fail=("Length()",), slots=1)
    result = _build(Report(), backend)
    assert backend.ran == ["Length()"]
    assert result.results["Report()"].status is Status.SKIPPED
    assert "upstream Length() failed" in result.results["Report()"].error


def test_keep_going_runs_what_does_not_depend_on_the_failure():
    """-k: Other does not need Length, so it runs; Report is still skipped."""
    backend = FakeBackend(fail=("Length()",), slots=1)
    result = _build(Both(), backend, keep_going=True)
    assert sorted(backend.ran) == ["Length()", "Other()"]
    assert result.results["Other()"].status is Status.RAN
    assert result.results["Report()"].status is Status.SKIPPED


def test_a_dead_worker_fails_only_its_task():
    """A job that ends as a dead worker would: a failure like any other, the rest goes on."""
    backend = FakeBackend(die=("Other()",))
    result = _build(Both(), backend, keep_going=True)
    assert result.results["Other()"].status is Status.FAILED
    assert result.results["Report()"].status is Status.RAN


def test_every_subscriber_gets_the_same_event_stream():
    """Two subscribers beside the reporter see run_started, each task, run_finished, in order."""
    one, two = Recorder(), Recorder()
    flow.build([Report()], reporter=Quiet(), backend=FakeBackend(slots=1), subscribers=(one, two))
    assert (
        one.seen
        == two.seen
        == [
            ("run_started", None),
            ("task_started", "Length()"),
            ("task_finished", "Length()"),
            ("task_started", "Report()"),
            ("task_finished", "Report()"),
            ("run_finished", None),
        ]
    )


def test_a_subscriber_may_handle_only_some_events():
    """Fan-out skips subscribers without a handler for an event."""

    class OnlyWarnings:
        def __init__(self):
            self.messages = []

        def warning(self, message):
            self.messages.append(message)

    only = OnlyWarnings()
    bus = Fanout(only, Recorder())
    bus.warning("careful")
    bus.task_started("T()", 1, 1)
    assert only.messages == ["careful"]


def test_a_target_is_looked_at_once_per_run_on_a_no_op():
    """info() answers existence and fingerprint together: one call per target per run, though
    Length's output is both an output (Length) and an input (Report)."""
    _build(Report(), FakeBackend())
    LOOKS.clear()
    _build(Report(), FakeBackend())
    assert sorted(LOOKS) == ["memory://length", "memory://report", "memory://source"]


def test_a_decision_after_a_task_ran_looks_at_targets_again():
    """A task may change any target (a clean step): what was seen before it ran is forgotten."""
    fps = Fingerprinter(lambda key: None)
    target = MemoryTarget("x")
    STORE[target.key] = "1"
    assert fps.info(target) == Info(True, "1")
    del STORE[target.key]
    assert fps.exists(target)  # the same run remembers
    fps.forget_all()
    assert not fps.exists(target)


def _context(graph, tmp_path):
    manifest = Manifest(str(tmp_path / ".flow"))
    return Context(graph, manifest, Fingerprinter(manifest.get_stat), CodeHasher(os.getcwd()))


def test_decide_gives_missing_output_then_input_changed(tmp_path):
    """decide() is a pure function of the task, the targets and the records."""
    graph = build_graph([Report()])
    ctx = _context(graph, tmp_path)
    assert [r.kind for r in decide(Length(), ctx).reasons] == ["missing-output"]
    _build(Report(), FakeBackend())
    STORE["memory://source"] = "abcd"
    ctx = _context(graph, tmp_path)
    reasons = decide(Length(), ctx).reasons
    assert [r.kind for r in reasons] == ["input-changed"]
    assert reasons[0].detail == "memory://source"


def test_the_plan_marks_tasks_below_a_stale_one_as_upstream(tmp_path):
    """A dry-run plan cannot know whether Length's output will change: Report is `upstream`."""
    _build(Report(), FakeBackend())
    STORE["memory://source"] = "abcd"
    graph = build_graph([Report()])
    plan = make_plan(graph, _context(graph, tmp_path))
    assert plan.to_run == ["Length()", "Report()"]
    assert [r.kind for r in plan.decisions["Report()"].reasons] == ["upstream"]


class FixedFingerprint(flow.LocalTarget):
    """A LocalTarget subclass that vouches for its own content (e.g. a stamp file)."""

    def fingerprint(self) -> str | None:
        return "always the same" if self.exists() else None


class Stamp(flow.Task):
    def output(self):
        return FixedFingerprint("stamp.txt")

    def run(self):
        with self.output().open("w") as f:
            f.write(str(os.getpid()) + STORE.get("memory://source", ""))


class AfterStamp(flow.Task):
    def requires(self):
        return Stamp()

    def output(self):
        return MemoryTarget("after-stamp")

    def run(self):
        self.output().write("done")


def test_a_local_target_subclass_fingerprint_is_honoured():
    """Editing stamp.txt changes its bytes, not its own fingerprint(): nothing reruns."""
    _build(AfterStamp(), FakeBackend())
    with open("stamp.txt", "a") as f:
        f.write("edited")
    backend = FakeBackend()
    _build(AfterStamp(), backend)
    assert backend.ran == []


def test_a_failed_task_leaves_no_partial_directory_output(tmp_path):
    """A task that wrote part of a directory output and failed: the directory is removed."""

    class Site(flow.Task):
        def output(self):
            return flow.LocalTarget("site")

        def run(self):
            os.makedirs("site", exist_ok=True)
            with open("site/a.html", "w") as f:
                f.write("a")
            raise RuntimeError("before b.html")

    result = flow.build([Site()], reporter=Quiet())
    assert result.failed == ["Site()"]
    assert not os.path.exists("site")
