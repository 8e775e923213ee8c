"""--dask: stale tasks run on a real Dask distributed cluster (a scheduler and worker processes
started here, on 127.0.0.1), with flow's loop, locks and records where they are in local runs."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from conftest import DEADLINE, FLOW, Project, wait_for_file, wait_until

distributed = pytest.importorskip("distributed", reason="--dask needs dask[distributed]")


class Cluster:
    """A running `dask scheduler` and its `dask worker` processes."""

    def __init__(self, address: str, scheduler: subprocess.Popen[bytes]) -> None:
        self.address = address
        self.scheduler = scheduler
        self.client = distributed.Client(address, timeout=DEADLINE, set_as_default=False)

    def worker_pids(self) -> set[int]:
        return set(self.client.run(os.getpid).values())

    def wanted_by(self) -> dict[str, int]:
        """Key -> how many clients want it, on the scheduler."""
        return self.client.run_on_scheduler(
            lambda dask_scheduler: {k: len(t.who_wants) for k, t in dask_scheduler.tasks.items()}
        )


def _dask_command() -> str:
    here = Path(sys.executable).parent / "dask"
    found = str(here) if here.exists() else shutil.which("dask")
    if found is None:
        pytest.skip("the `dask` command is not installed")
    return found


@contextlib.contextmanager
def running_cluster(where: Path, workers: int = 2) -> Iterator[Cluster]:
    """`dask scheduler` and `dask worker --nworkers N --nthreads 1` on 127.0.0.1; always killed
    after. The scheduler gives up on a task after one worker death (Dask's default retries it 3
    times), so that the worker-death test stays short."""
    file = where / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0"}
    dask = _dask_command()
    procs: list[subprocess.Popen[bytes]] = []

    def start(*args: str) -> subprocess.Popen[bytes]:
        log = open(where / f"{args[0]}-{len(procs)}.log", "wb")  # noqa: SIM115
        procs.append(
            subprocess.Popen(
                [dask, *args, "--host", "127.0.0.1", "--no-dashboard"],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=env,
                cwd=where,
                start_new_session=True,
            )
        )
        return procs[-1]

    cluster = None
    try:
        scheduler = start("scheduler", "--port", "0", "--scheduler-file", str(file))
        wait_until(lambda: file.exists() and "address" in file.read_text(), "the scheduler file")
        address = json.loads(file.read_text())["address"]
        start("worker", address, "--nworkers", str(workers), "--nthreads", "1")
        cluster = Cluster(address, scheduler)
        cluster.client.wait_for_workers(workers, timeout=DEADLINE)
        yield cluster
    finally:
        if cluster is not None:
            cluster.client.close()
        for proc in reversed(procs):
            with contextlib.suppress(OSError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    """One cluster for the module's tests."""
    with running_cluster(tmp_path_factory.mktemp("dask")) as cluster:
        yield cluster


FAN_IN = """
import os

class Leaf(flow.Task):
    i = flow.IntParameter()
    def output(self):
        return flow.LocalTarget(f"out/leaf{self.i}.txt")
    def run(self):
        with open("ran.log", "a") as log:
            log.write(f"{self.task_id} {os.getppid()}\\n")
        with self.output().open("w") as f:
            f.write(str(self.i * self.i))

class Sum(flow.Task):
    n = flow.IntParameter(default=4)
    def requires(self):
        return [Leaf(i=i) for i in range(self.n)]
    def output(self):
        return flow.LocalTarget("out/sum.txt")
    def run(self):
        with open("ran.log", "a") as log:
            log.write(f"{self.task_id} {os.getppid()}\\n")
        total = sum(int(t.open().read()) for t in self.input())
        with self.output().open("w") as f:
            f.write(str(total))
"""


def _unused_address() -> str:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return f"tcp://127.0.0.1:{s.getsockname()[1]}"


def _statuses(doc: dict) -> dict[str, str]:
    return {t["task"]: t["status"] for t in doc["tasks"]}


def test_fan_in_graph_runs_on_the_dask_workers_and_a_second_run_submits_nothing(
    project: Project, cluster: Cluster
):
    """Sum of four leaves: every task runs in a process of a Dask worker, the result is right,
    and the no-op that follows never even reaches a scheduler (an unreachable one does not fail
    it)."""
    project.flowfile(FAN_IN)
    code, doc = project.run_json("--dask", cluster.address, "Sum")
    assert code == 0, doc
    assert project.read("out/sum.txt") == str(0 + 1 + 4 + 9)
    lines = project.read("ran.log").split()
    parents = {int(pid) for pid in lines[1::2]}
    assert parents <= cluster.worker_pids()
    assert sorted(lines[0::2]) == sorted(["Sum(n=4)", *(f"Leaf(i={i})" for i in range(4))])
    again = project.run("--dask", _unused_address(), "Sum")
    assert again.returncode == 0, again.stderr
    assert project.read("ran.log").split() == lines
    assert project.ran("Sum") == []  # and the records are flow's own: a local no-op too


def test_a_changed_input_reruns_only_what_depends_on_it_on_the_cluster(
    project: Project, cluster: Cluster
):
    """Early cutoff and the records work as locally: after a parameter change only the new leaf
    and the sum run."""
    project.flowfile(FAN_IN)
    assert project.run("--dask", cluster.address, "Sum").returncode == 0
    code, doc = project.run_json("--dask", cluster.address, "Sum", "n=5")
    assert code == 0, doc
    assert sorted(t for t, s in _statuses(doc).items() if s == "ran") == ["Leaf(i=4)", "Sum(n=5)"]
    assert project.read("out/sum.txt") == str(0 + 1 + 4 + 9 + 16)


def test_an_edited_flowfile_runs_its_new_code_on_the_same_workers(
    project: Project, cluster: Cluster
):
    """Dask workers outlive a flow run: the next run, after an edit, must not run the code the
    workers imported before (it would be recorded as built by the new code)."""
    project.flowfile(FAN_IN)
    assert project.run("--dask", cluster.address, "Sum").returncode == 0
    project.flowfile(FAN_IN.replace("str(self.i * self.i)", "str(self.i * self.i * 10)"))
    proc = project.run("--dask", cluster.address, "Sum")
    assert proc.returncode == 0, proc.stderr
    assert project.read("out/sum.txt") == str(10 * (0 + 1 + 4 + 9))
    # Each run's task processes end with it: none are left idle on the workers.
    idle = "len(__import__('flow.backends.daskworker', fromlist=['_idle'])._idle)"
    assert set(cluster.client.run(eval, idle).values()) == {0}


FAILING = """
import os

def explode():
    raise ValueError("boom from the user's code")

class Bad(flow.Task):
    def output(self):
        return flow.LocalTarget("out/bad.txt")
    def run(self):
        os.makedirs("out", exist_ok=True)
        with open("out/bad.txt", "w") as f:
            f.write("half")
        print("about to explode")
        explode()

class Down(flow.Task):
    def requires(self):
        return Bad()
    def output(self):
        return flow.LocalTarget("out/down.txt")
    def run(self):
        self.output().open("w").close()

class Good(flow.Task):
    i = flow.IntParameter()
    def requires(self):
        return Good(i=self.i - 1) if self.i else []
    def output(self):
        return flow.LocalTarget(f"out/good{self.i}.txt")
    def run(self):
        self.output().open("w").close()

class All(flow.WrapperTask):
    def requires(self):
        return [Down(), Good(i=3)]
"""


def test_a_failing_task_shows_its_traceback_skips_downstream_and_exits_1(
    project: Project, cluster: Cluster
):
    """Without -k: the failure names the task and shows the user's traceback; what it wrote
    is removed; its dependent is skipped; the build stops."""
    project.flowfile(FAILING)
    proc = project.run("--dask", cluster.address, "All")
    assert proc.returncode == 1, proc.stderr
    assert "FAILED Bad()" in proc.stderr
    assert "ValueError: boom from the user's code" in proc.stderr
    assert "explode" in proc.stderr  # the user's frame
    assert "  | about to explode" in proc.stderr  # what it printed on the worker
    assert not (project.root / "out/bad.txt").exists()
    code, doc = project.run_json("--dask", cluster.address, "All")
    statuses = _statuses(doc)
    assert code == 1
    assert statuses["Bad()"] == "failed" and statuses["Down()"] == "skipped"


def test_with_keep_going_the_independent_branch_finishes_after_a_failure(
    project: Project, cluster: Cluster
):
    """-k: the chain of Good tasks runs to its end although Bad failed at once."""
    project.flowfile(FAILING)
    code, doc = project.run_json("-k", "--dask", cluster.address, "All")
    statuses = _statuses(doc)
    assert code == 1
    assert statuses["Bad()"] == "failed" and statuses["Down()"] == "skipped"
    assert [statuses[f"Good(i={i})"] for i in range(4)] == ["ran"] * 4


SHARED = """
import os, time

# Workers do not get the client's environment: the test writes its paths into the Flowfile.
GO, LOG, OUT = GO_FILE, SHARED_LOG, SHARED_OUT

class Shared(flow.Task):
    def output(self):
        return flow.LocalTarget(OUT)
    def run(self):
        with open(LOG, "a") as log:
            log.write("computed\\n")
        deadline = time.monotonic() + 120
        while not os.path.exists(GO) and time.monotonic() < deadline:
            time.sleep(0.05)
        with self.output().open("w") as f:
            f.write("shared")

class A(flow.Task):
    def requires(self):
        return Shared()
    def output(self):
        return flow.LocalTarget("out/a.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write(self.input().open().read() + " " + self.task_family.lower())

class B(A):
    def output(self):
        return flow.LocalTarget("out/b.txt")
"""


def _shared(tmp_path: Path, out: str) -> str:
    paths = {"GO_FILE": tmp_path / "go", "SHARED_LOG": tmp_path / "shared.log", "SHARED_OUT": out}
    return SHARED.replace(
        "GO, LOG, OUT = GO_FILE, SHARED_LOG, SHARED_OUT",
        "GO, LOG, OUT = " + ", ".join(repr(str(paths[k])) for k in paths),
    )


def test_two_flow_clients_on_one_project_compute_their_shared_task_once(
    project: Project, cluster: Cluster, tmp_path: Path
):
    """Two flows on one Flowfile and one scheduler both need Shared: flow's lock makes the second
    wait (it does not deadlock on the cluster), then it finds Shared built and recorded."""
    project.flowfile(_shared(tmp_path, "out/shared.txt"))
    first = project.start("--dask", cluster.address, "A")
    first.wait_for(lambda: (tmp_path / "shared.log").exists(), "Shared to start")
    second = project.start("--dask", cluster.address, "B")
    second.wait_for_line("waiting for another flow process to finish Shared()")
    (tmp_path / "go").touch()
    assert first.finish()[0] == 0, first.text
    assert second.finish()[0] == 0, second.text
    assert (tmp_path / "shared.log").read_text() == "computed\n"
    assert project.read("out/a.txt") == "shared a" and project.read("out/b.txt") == "shared b"
    _assert_up_to_date(project, "B")


@pytest.mark.parametrize("interrupt_first", [False, True], ids=["both-finish", "first-ctrl-c"])
def test_two_checkouts_sharing_an_output_share_one_dask_key_and_both_record_it(
    tmp_path: Path, cluster: Cluster, interrupt_first: bool
):
    """Two copies of a project (no common lock) write Shared to one absolute path: both flows
    submit the same key, the scheduler runs it once, and each flow records the output. Ctrl-C in
    the first does not stop the computation the second still waits for."""
    flowfile = _shared(tmp_path, str(tmp_path / "common" / "shared.txt"))
    one, two = Project(tmp_path / "one"), Project(tmp_path / "two")
    for p in (one, two):
        p.root.mkdir()
        p.flowfile(flowfile)
    try:
        first = one.start("--dask", cluster.address, "A")
        first.wait_for(lambda: (tmp_path / "shared.log").exists(), "Shared to start")
        second = two.start("--dask", cluster.address, "B")

        def shared() -> bool:
            return any(k.startswith("Shared()-") and n == 2 for k, n in cluster.wanted_by().items())

        second.wait_for(shared, "both flows to want Shared's key")
        if interrupt_first:
            first.proc.send_signal(signal.SIGINT)
            assert first.finish()[0] == 130, first.text
        (tmp_path / "go").touch()
        if not interrupt_first:
            assert first.finish()[0] == 0, first.text
        assert second.finish()[0] == 0, second.text
    finally:
        for p in (one, two):
            for live in p.started:
                live.stop()
    assert (tmp_path / "shared.log").read_text() == "computed\n"
    assert two.read("out/b.txt") == "shared b"
    _assert_up_to_date(two, "B")
    if not interrupt_first:
        _assert_up_to_date(one, "A")


def _assert_up_to_date(project: Project, task: str) -> None:
    proc = project.run("--json", "-n", task)
    doc = json.loads(proc.stdout)
    assert proc.returncode == 0 and not [p for p in doc["plan"] if p["would_run"]], doc


SLOW = """
import subprocess

class Slow(flow.Task):
    def output(self):
        return flow.LocalTarget("out/slow.txt")
    def run(self):
        with open("out/slow.txt", "w") as f:  # directly, not atomically: flow must remove it
            f.write("partial")
        sleeper = subprocess.Popen(["sleep", "300"])
        with open("started.marker", "w") as f:
            f.write(str(sleeper.pid))
        sleeper.wait()
"""


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ", 1)[1][0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_cancels_the_running_task_on_the_worker_and_exits_130(
    project: Project, cluster: Cluster, sig: int, status: int
):
    """SIGINT while a task runs on a worker: flow exits 130, the partial output is gone, and the
    task's process on the worker (with the command it started) is stopped, so nothing writes
    later."""
    project.flowfile(SLOW)
    (project.root / "out").mkdir()
    proc = project.popen("--dask", cluster.address, "Slow")
    try:
        wait_for_file(project.root / "started.marker", proc)
        wait_until(lambda: project.read("started.marker").strip() != "", "the sleeper's pid")
        sleeper = int(project.read("started.marker"))
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == status, err
    assert "Traceback" not in err
    assert not (project.root / "out/slow.txt").exists()
    wait_until(lambda: not _alive(sleeper), "the task's command to be stopped")
    assert project.run("-n", "Slow").returncode == 0  # the manifest is readable, nothing recorded


def test_a_killed_flow_leaves_no_task_running_on_the_workers(project: Project, cluster: Cluster):
    """flow dies by SIGKILL (no clean-up can run in it): the scheduler sees its client go, Dask
    cancels the task, and the task's process on the worker stops with the command it started."""
    project.flowfile(SLOW)
    (project.root / "out").mkdir()
    proc = project.popen("--dask", cluster.address, "Slow")
    try:
        wait_for_file(project.root / "started.marker", proc)
        wait_until(lambda: project.read("started.marker").strip() != "", "the sleeper's pid")
        sleeper = int(project.read("started.marker"))
    finally:
        proc.kill()
        proc.communicate(timeout=DEADLINE)
    wait_until(lambda: not _alive(sleeper), "the task's command to be stopped")


CANCEL = """
import os, sys, time
from flow.backends import Job
from flow.backends.dask import DaskBackend
from flow.flowfile import load_flowfile
from flow.task import flatten

class Quiet:
    def info(self, message): pass
    def warning(self, message): pass

task = load_flowfile("Flowfile.py").module.Slow()
backend = DaskBackend(sys.argv[1], {}, Quiet())
assert backend.accepts(task)
backend.submit(Job(task, flatten(task.output()), []))
while not (os.path.exists("started.marker") and open("started.marker").read()):
    time.sleep(0.05)
print(backend.cancel(task.task_id), backend.cancel(task.task_id), backend.wait(0.5))
backend.close()
"""


def test_cancelling_one_task_stops_its_process_and_reports_nothing_more(
    project: Project, cluster: Cluster
):
    """The backend's cancel(task id), for a worker_timeout: the task's process and its command
    stop, a second cancel finds nothing, and no completion comes for it."""
    project.flowfile(SLOW)
    (project.root / "out").mkdir()
    project.write("cancel.py", CANCEL)
    proc = subprocess.run(
        [sys.executable, "cancel.py", cluster.address],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert proc.stdout.strip() == "True False []", proc.stdout + proc.stderr
    sleeper = int(project.read("started.marker"))
    wait_until(lambda: not _alive(sleeper), "the task's command to be stopped")


def test_ctrl_c_at_the_terminal_stops_a_local_cluster_quietly(project: Project):
    """A terminal's Ctrl-C reaches the whole process group, the local cluster's workers too:
    flow exits 130 with one line, no traceback from Dask's processes, nothing left running."""
    project.flowfile(SLOW)
    (project.root / "out").mkdir()
    proc = subprocess.Popen(
        [*FLOW, "--dask", "local:2", "Slow"],
        cwd=project.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        wait_for_file(project.root / "started.marker", proc, timeout=DEADLINE * 2)
        wait_until(lambda: project.read("started.marker").strip() != "", "the sleeper's pid")
        sleeper = int(project.read("started.marker"))
        os.killpg(proc.pid, signal.SIGINT)
        _, err = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err, err
    assert not (project.root / "out/slow.txt").exists()
    wait_until(lambda: not _alive(sleeper), "the task's command to be stopped")


def test_a_scheduler_lost_mid_run_fails_the_running_tasks_without_a_traceback(
    project: Project, tmp_path: Path
):
    """The scheduler dies while a task runs: flow does not hang; the task fails, naming the
    lost connection; exit 1. (A cluster of its own: this one is killed.)"""
    project.flowfile(SLOW)
    (project.root / "out").mkdir()
    (tmp_path / "cluster").mkdir()
    with running_cluster(tmp_path / "cluster", workers=1) as doomed:
        proc = project.popen("--dask", doomed.address, "Slow")
        try:
            wait_for_file(project.root / "started.marker", proc)
            doomed.scheduler.kill()
            _, err = proc.communicate(timeout=DEADLINE)
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert proc.returncode == 1, err
    assert "FAILED Slow()" in err and "connection to the Dask scheduler" in err
    assert "Traceback" not in err
    assert not (project.root / "out/slow.txt").exists()


def test_an_unreachable_scheduler_is_a_clear_error_with_exit_2(project: Project):
    """Nothing listens at the address: one clear line, exit 2, within the connect timeout."""
    pytest.importorskip("distributed")
    project.flowfile(FAN_IN)
    proc = project.run("--dask", _unused_address(), "Sum", timeout=DEADLINE)
    assert proc.returncode == 2, proc.stderr
    assert "cannot reach the Dask scheduler at tcp://127.0.0.1:" in proc.stderr
    assert "Traceback" not in proc.stderr


@pytest.mark.parametrize("value", ["local:0", "local:x", "nonsense"])
def test_a_bad_dask_value_is_a_usage_error(project: Project, value: str):
    project.flowfile(FAN_IN)
    proc = project.run("--dask", value, "Sum")
    assert proc.returncode == 2, proc.stderr
    assert "bad --dask value" in proc.stderr and "Traceback" not in proc.stderr


def test_dask_local_starts_a_local_cluster_and_prints_its_dashboard(project: Project):
    """--dask local:2: a LocalCluster of two worker processes on 127.0.0.1 runs the graph."""
    project.flowfile(FAN_IN)
    proc = project.run("--dask", "local:2", "Sum", timeout=DEADLINE * 2)
    assert proc.returncode == 0, proc.stderr
    assert project.read("out/sum.txt") == "14"
    assert "running on a local Dask cluster: 2 workers" in proc.stderr
    assert "dashboard http://127.0.0.1:" in proc.stderr


def test_flow_build_takes_a_dask_address(project: Project, cluster: Cluster):
    """The library entry point: flow.build([...], dask=ADDRESS)."""
    project.flowfile(FAN_IN)
    script = textwrap.dedent(
        f"""
        import flow, sys
        sys.path.insert(0, ".")
        from flow.flowfile import load_flowfile
        tasks = load_flowfile("Flowfile.py").module
        result = flow.build([tasks.Sum(n=3)], dask={cluster.address!r})
        print("OK" if result else "FAILED", sorted(result.ran))
        """
    )
    proc = subprocess.run(
        [sys.executable, "-c", script],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=DEADLINE,
    )
    assert proc.stdout.splitlines()[-1].startswith("OK"), proc.stdout + proc.stderr
    assert project.read("out/sum.txt") == str(0 + 1 + 4)


def test_dask_comes_from_tool_flow_and_a_bad_value_there_names_the_file(project: Project):
    """[tool.flow] dask = ... is --dask's default; its value is checked like the option's."""
    project.flowfile(FAN_IN)
    project.write("pyproject.toml", '[tool.flow]\ndask = "local:0"\n')
    proc = project.run("Sum")
    assert proc.returncode == 2 and "bad --dask value 'local:0'" in proc.stderr, proc.stderr
    shown = project.run("--show-config")
    assert 'dask = "local:0"' in shown.stdout


GENERATOR = """
class Leaf(flow.Task):
    def output(self):
        return flow.LocalTarget("out/leaf.txt")
    def run(self):
        self.output().open("w").close()

class Parent(flow.Task):
    def output(self):
        return flow.LocalTarget("out/parent.txt")
    def run(self):
        yield Leaf()
        self.output().open("w").close()
"""


def test_a_task_with_dynamic_dependencies_runs_in_the_flow_process_under_dask(
    project: Project, cluster: Cluster
):
    """A generator run() cannot go to a worker (its yields are scheduled by flow): it runs here,
    its dynamic dependency is built, and the next run is a no-op."""
    project.flowfile(GENERATOR)
    proc = project.run("--dask", cluster.address, "Parent")
    assert proc.returncode == 0, proc.stderr
    assert (project.root / "out/parent.txt").exists() and (project.root / "out/leaf.txt").exists()
    assert project.ran("--dask", _unused_address(), "Parent") == []


def test_a_task_key_changes_with_code_parameters_inputs_and_outputs_and_forced_is_unique(
    tmp_path: Path,
):
    """The key is the task id plus a digest of what the task computes: equal for equal work,
    different when any fingerprint differs; a forced or phony run never shares one."""
    from flow.backends import Job
    from flow.backends.dask import task_key
    from flow.decide import Decision, Reason
    from flow.target import LocalTarget

    class Keyed:
        task_id = "Keyed(n=1)"

    def key(code: str = "c1", inputs: str = "i1", out: str = "a.txt", why: str = "input-changed"):
        d = Decision("Keyed(n=1)", [Reason(why)], code=code, params={"n": "1"})
        d.inputs = {"in.txt": inputs}
        return task_key(Job(Keyed(), [LocalTarget(str(tmp_path / out))], [], None, d))  # type: ignore[arg-type]

    assert key() == key() and key().startswith("Keyed(n=1)-")
    assert len({key(), key(code="c2"), key(inputs="i2"), key(out="b.txt")}) == 4
    assert key(why="forced") != key(why="forced")
    assert key(why="phony") != key(why="phony")


DYING = """
import os, signal, time

class Dies(flow.Task):
    how = flow.Parameter()
    def output(self):
        return flow.LocalTarget(f"out/dies-{self.how}.txt")
    def run(self):
        # Fine first: a worker that dies takes every task it holds with it, not only this one.
        deadline = time.monotonic() + 120
        while not os.path.exists("out/fine.txt") and time.monotonic() < deadline:
            time.sleep(0.05)
        # "process": the task's own process dies; "worker": the Dask worker process does.
        os.kill(os.getpid() if self.how == "process" else os.getppid(), signal.SIGKILL)

class Fine(flow.Task):
    def output(self):
        return flow.LocalTarget("out/fine.txt")
    def run(self):
        self.output().open("w").close()

class All(flow.WrapperTask):
    how = flow.Parameter()
    def requires(self):
        return [Dies(how=self.how), Fine()]
"""


@pytest.mark.parametrize("how", ["process", "worker"])
def test_a_task_whose_process_or_worker_dies_fails_and_keep_going_goes_on(
    project: Project, cluster: Cluster, how: str
):
    """A task that kills its process (or its whole Dask worker) fails, named as such; with -k
    the other task still runs. (Last in the module: it costs the cluster a worker restart.)"""
    project.flowfile(DYING)
    code, doc = project.run_json("-k", "--dask", cluster.address, "All", f"how={how}")
    statuses = _statuses(doc)
    assert code == 1, doc
    assert statuses[f"Dies(how={how})"] == "failed"
    assert statuses["Fine()"] == "ran"
    error = next(t["error"] for t in doc["tasks"] if t["task"] == f"Dies(how={how})")
    assert "died" in error
    cluster.client.wait_for_workers(2, timeout=DEADLINE)


def test_a_worker_that_cannot_see_the_project_is_named_in_a_clear_error(tmp_path: Path):
    """The up-front check workers answer: a missing directory, an unreadable or different
    Flowfile."""
    from flow.backends.daskworker import probe
    from flow.fingerprint import hash_bytes

    flowfile = tmp_path / "Flowfile.py"
    flowfile.write_text("import flow\n")
    assert probe(str(tmp_path), str(flowfile), hash_bytes(flowfile.read_bytes())) is None
    assert "does not exist" in (probe(str(tmp_path / "gone"), None, None) or "")
    assert "cannot read" in (probe(str(tmp_path), str(tmp_path / "nope.py"), None) or "")
    assert "differs" in (probe(str(tmp_path), str(flowfile), "0" * 32) or "")


def test_workers_on_other_hosts_are_told_apart_from_this_machine():
    """LocalTargets with remote workers draw a warning: which worker addresses are remote."""
    from flow.backends.dask import remote_hosts

    addresses = ["tcp://127.0.0.1:4000", "tcp://[::1]:4001", "tcp://10.255.0.7:4002"]
    assert remote_hosts(addresses) in ([], ["10.255.0.7"])  # [] only if that is this machine
    assert remote_hosts(["tcp://127.0.0.1:1", "tcp://localhost:2"]) == []


@pytest.mark.parametrize(
    "address", ["http://127.0.0.1:8787/status", "tcp://127.0.0.1", "tcp://u:pw1234@127.0.0.1:1"]
)
def test_an_unusable_scheduler_address_is_one_line_and_exit_2(project: Project, address: str):
    """Found by a tester: the dashboard's URL, a missing port or credentials in the address
    ended in a traceback with exit 1."""
    pytest.importorskip("distributed")
    project.flowfile(FAN_IN)
    proc = project.run("--dask", address, "Sum", timeout=DEADLINE)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and "pw1234" not in proc.stderr


def test_retry_count_reruns_the_task_on_the_cluster(project: Project, cluster: Cluster):
    """Found by a tester: a retry went to Dask under the same key, and Dask handed back the
    failed result without running the task again."""
    from test_luigi_scheduling import RETRY

    project.flowfile(RETRY)
    proc = project.run("--dask", cluster.address, "Flaky", "--fail-times", "2")
    assert proc.returncode == 0, proc.stderr
    assert project.read("tries") == "xxx" and project.read("out/ok.txt") == "done"
