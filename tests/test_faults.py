"""Faults: interrupts, killed runs, concurrent runs, a damaged or unwritable .flow/, awkward paths,
and bad outputs. docs/faults.md is the table of what flow guarantees; each row names its test."""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from conftest import DEADLINE, FLOW, immutable, wait_for_file
from flow.store.records import Manifest

ROOT = Path(__file__).resolve().parent.parent

# A chain: Done (quick) -> Slow (writes half its output, says so, then sleeps) -> After.
KILLABLE = """
import os, time
from pathlib import Path

class Done(flow.Task):
    def output(self):
        return flow.LocalTarget("out/done.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("done")

class Slow(flow.Task):
    def requires(self):
        return Done()
    def output(self):
        return flow.LocalTarget("out/slow.txt")
    def run(self):
        Path("slow.pid").write_text(str(os.getpid()))
        WRITE
        Path("started.marker").write_text("x")
        time.sleep(60)
        f.write(" and the rest")
        f.close()

class After(flow.Task):
    def requires(self):
        return Slow()
    def output(self):
        return flow.LocalTarget("out/after.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("after")
"""
DIRECT = 'f = open("out/slow.txt", "w"); f.write("half"); f.flush()'
ATOMIC = 'f = self.output().open("w"); f.write("half"); f.flush()'


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie still answers kill(0); it no longer runs.
    with contextlib.suppress(OSError):
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] != "Z"
    return True


def _gone(pid: int, timeout=DEADLINE) -> bool:
    deadline = time.monotonic() + timeout
    while _alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def _interrupt(project, sig, jobs):
    project.flowfile(KILLABLE.replace("WRITE", DIRECT))
    proc = project.popen("-j", str(jobs), "After")
    try:
        wait_for_file(project.root / "started.marker", proc)
        proc.send_signal(sig)
        _, err = proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    return proc.returncode, err


# -- interrupts --------------------------------------------------------------------------------------
@pytest.mark.parametrize("jobs", [1, 2])
@pytest.mark.parametrize("sig, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_interrupt_stops_the_task_removes_its_partial_output_and_keeps_finished_records(
    project, jobs, sig, status
):
    """A signal mid-task: exit 128+signal, the half-written output gone, the task that finished
    before stays recorded, the worker process is stopped, and a rerun does only what is left."""
    code, err = _interrupt(project, sig, jobs)
    assert code == status, err
    assert "Traceback" not in err
    assert not (project.root / "out/slow.txt").exists()
    assert not list((project.root / "out").glob(".*flow-tmp"))
    assert _gone(int(project.read("slow.pid")))
    (project.root / "started.marker").unlink()
    plan = project.plan("After")
    assert not plan["Done()"]["would_run"]
    assert plan["Slow()"]["would_run"] and plan["After()"]["would_run"]


def test_interrupt_of_a_worker_stops_the_commands_it_started(project):
    """-j 2 and SIGTERM: a shell command started by the task (flow.sh) dies with its worker."""
    project.flowfile("""
        from pathlib import Path
        class Shell(flow.Task):
            def output(self):
                return flow.LocalTarget("out/shell.txt")
            def run(self):
                flow.sh("echo $$ > cmd.pid; touch started.marker; sleep 60")
        """)
    proc = project.popen("-j", "2", "Shell")
    try:
        wait_for_file(project.root / "started.marker", proc)
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=DEADLINE)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143
    assert _gone(int(project.read("cmd.pid").strip()))


# -- killed runs ---------------------------------------------------------------------------------
@pytest.mark.parametrize("write", [DIRECT, ATOMIC], ids=["direct", "atomic"])
@pytest.mark.parametrize("jobs", [1, 2])
def test_after_sigkill_the_next_run_sees_no_half_written_output_and_reruns_the_task(
    project, write, jobs
):
    """flow killed with SIGKILL mid-task: no cleanup could run. The next run removes what the
    task half wrote (or its atomic temporary), says so, reruns it, and does not wait on a lock."""
    project.flowfile(KILLABLE.replace("WRITE", write).replace("time.sleep(60)", "SLEEP"))
    (project.root / "Flowfile.py").write_text(
        project.read("Flowfile.py").replace(
            "SLEEP", "time.sleep(60) if Path('hang.flag').exists() else None"
        )
    )
    (project.root / "hang.flag").write_text("x")
    proc = project.popen("-j", str(jobs), "After")
    wait_for_file(project.root / "started.marker", proc)
    proc.kill()
    proc.wait()
    assert _gone(int(project.read("slow.pid")))  # a worker dies with its flow process
    (project.root / "hang.flag").unlink()
    assert project.plan("After")["Slow()"]["would_run"]
    rerun = project.run("-j", str(jobs), "After")
    assert rerun.returncode == 0, rerun.stderr
    if write == DIRECT:
        assert "removed out/slow.txt" in rerun.stderr
    assert project.read("out/slow.txt") == "half and the rest"
    assert not list((project.root / "out").glob(".*flow-tmp"))
    assert "Slow()" in rerun.stdout and "Done()" not in rerun.stdout


# -- concurrent runs ----------------------------------------------------------------------------
LOGGED = """
import os, time

def log(line):
    with open("log.txt", "a") as f:
        f.write(line + "\\n")

class Leaf(flow.Task):
    i = flow.IntParameter()
    def output(self):
        return flow.LocalTarget(f"out/leaf{self.i}.txt")
    def run(self):
        log(self.task_id)
        time.sleep(0.3)
        with self.output().open("w") as f:
            f.write(str(self.i))

class Sum(flow.Task):
    lo = flow.IntParameter()
    hi = flow.IntParameter()
    def requires(self):
        return [Leaf(i) for i in range(self.lo, self.hi)]
    def output(self):
        return flow.LocalTarget(f"out/sum{self.lo}-{self.hi}.txt")
    def run(self):
        log(self.task_id)
        total = sum(int(t.open().read()) for t in self.input())
        with self.output().open("w") as f:
            f.write(str(total))
"""


@pytest.mark.parametrize("jobs", [("1", "2"), ("2", "2")])
def test_two_flow_processes_on_overlapping_graphs_run_each_task_exactly_once(project, jobs):
    """Two flows started together on graphs sharing four of their tasks: both exit 0, every
    task ran once (the log has no repeats), and the manifest lost no record."""
    project.flowfile(LOGGED)
    a = project.popen("-j", jobs[0], "Sum", "lo=0", "hi=6")
    b = project.popen("-j", jobs[1], "Sum", "lo=2", "hi=8")
    outs = [p.communicate(timeout=90) for p in (a, b)]
    assert (a.returncode, b.returncode) == (0, 0), outs
    lines = project.read("log.txt").splitlines()
    assert sorted(lines) == sorted(
        [f"Leaf(i={i})" for i in range(8)] + ["Sum(lo=0, hi=6)", "Sum(lo=2, hi=8)"]
    )
    assert project.read("out/sum0-6.txt") == "15" and project.read("out/sum2-8.txt") == "27"
    code, doc = project.run_json("-n", "Sum", "lo=0", "hi=8")
    would = set(doc["would_run"])
    assert would == {"Sum(lo=0, hi=8)"}  # every Leaf is recorded as up to date


# Instead of LOGGED's short sleep: hold the task until the test creates the file "release".
HELD = """deadline = time.monotonic() + 60
        while not os.path.exists("release"):
            assert time.monotonic() < deadline, "never released"
            time.sleep(0.01)"""


def test_a_second_flow_waits_for_the_running_task_then_finds_it_up_to_date(project):
    """flow B asks for the task flow A is running: B says it waits, then does not rerun it."""
    project.flowfile(LOGGED.replace("time.sleep(0.3)", HELD))
    a = project.start("Leaf", "i=1")
    a.wait_for(lambda: (project.root / "log.txt").exists(), "flow A to start Leaf(i=1)")
    b = project.start("Leaf", "i=1")
    # A holds the task until B has said it waits, however long B takes to get there.
    b.wait_for_line("waiting for another flow process to finish Leaf(i=1)")
    (project.root / "release").write_text("x")
    code_b, out_b, err_b = b.finish()
    code_a, _, err_a = a.finish()
    assert (code_a, code_b) == (0, 0), (err_a, err_b)
    assert "everything is up to date" in out_b
    assert project.read("log.txt").splitlines() == ["Leaf(i=1)"]


# -- the manifest under stress ------------------------------------------------------------------
def _real_manifest(project) -> bytes:
    project.flowfile(LOGGED.replace("time.sleep(0.3)", "pass"))
    assert project.run("Sum", "lo=0", "hi=2").returncode == 0
    db = project.root / ".flow" / "manifest.sqlite"
    return db.read_bytes()


def test_a_manifest_cut_at_any_byte_offset_is_never_trusted_and_never_raises(project, tmp_path):
    """Every truncation of a real manifest, opened for planning: a warning, no exception."""
    data = _real_manifest(project)
    work = tmp_path / "cut" / ".flow"
    work.mkdir(parents=True)
    silent = []
    for offset in range(1, len(data)):
        (work / "manifest.sqlite").write_bytes(data[:offset])
        m = Manifest(str(work), readonly=True)
        try:
            m.get("out/leaf0.txt")
            m.get_stat("out/leaf0.txt")
            if not m.warnings:
                silent.append(offset)
        finally:
            m.close()
    assert silent == []


@pytest.mark.parametrize("cut", [1, 99, 100, 4095, 4096, 4097, 8192, -1])
def test_a_run_on_a_truncated_manifest_recovers_and_rebuilds_what_it_cannot_vouch_for(project, cut):
    """flow run on a cut manifest: a warning naming where it went, exit 0; the outputs are
    rebuilt, not adopted (the lost records may have said they were built from other values),
    and the next run is a no-op."""
    data = _real_manifest(project)
    (project.root / ".flow" / "manifest.sqlite").write_bytes(data[: cut % len(data)])
    proc = project.run("Sum", "lo=0", "hi=2")
    assert proc.returncode == 0, proc.stderr
    assert "moved it to" in proc.stderr and "Traceback" not in proc.stderr
    assert "3 ran" in proc.stdout
    assert "everything is up to date" in project.run("Sum", "lo=0", "hi=2").stdout


def test_a_read_only_flow_directory_is_a_clear_error_with_exit_2(project):
    """.flow/ that flow may not write (read-only, another owner): exit 2, one clear line."""
    project.flowfile(LOGGED.replace("time.sleep(0.3)", "pass"))
    (project.root / ".flow").mkdir()
    undo = immutable(project.root / ".flow")
    try:
        proc = project.run("Leaf", "i=1")
    finally:
        undo()
    assert proc.returncode == 2
    assert ".flow" in proc.stderr and "Traceback" not in proc.stderr
    assert not (project.root / "out/leaf1.txt").exists()


def test_a_dry_run_works_with_a_read_only_flow_directory(project):
    """-n writes nothing, so an unwritable .flow/ does not stop it."""
    project.flowfile(LOGGED.replace("time.sleep(0.3)", "pass"))
    assert project.run("Leaf", "i=1").returncode == 0
    undo = immutable(project.root / ".flow")
    try:
        proc = project.run("-n", "Leaf", "i=1")
    finally:
        undo()
    assert proc.returncode == 0, proc.stderr
    assert "nothing to do" in proc.stdout


def test_flow_path_that_is_a_file_is_a_clear_error_with_exit_2(project):
    """A file named .flow where flow's directory belongs: exit 2 naming it."""
    project.flowfile(LOGGED)
    (project.root / ".flow").write_text("not a directory")
    proc = project.run("Leaf", "i=1")
    assert proc.returncode == 2
    assert ".flow" in proc.stderr and "Traceback" not in proc.stderr


def test_an_output_inside_the_flow_directory_is_refused_before_anything_runs(project):
    """A task declaring an output under .flow/ would write into flow's store: exit 2."""
    project.flowfile("""
        class Sneaky(flow.Task):
            def output(self):
                return flow.LocalTarget(".flow/mine.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write("x")
        """)
    proc = project.run("Sneaky")
    assert proc.returncode == 2
    assert ".flow/mine.txt" in proc.stderr
    assert not (project.root / ".flow" / "mine.txt").exists()


@pytest.mark.parametrize(
    "vandalism",
    [
        'open(".flow/manifest.sqlite", "wb").write(b"garbage" * 1000)',
        'open(".flow/manifest.sqlite", "wb").close()',  # truncated to nothing
        'open("junk", "wb").write(b"junk" * 500); os.replace("junk", ".flow/manifest.sqlite")',
        'os.remove(".flow/manifest.sqlite")',
    ],
    ids=["overwritten", "truncated", "replaced", "removed"],
)
def test_a_task_that_clobbers_the_manifest_loses_no_record(project, vandalism):
    """run() overwriting, truncating, replacing or removing .flow/manifest.sqlite: flow warns,
    keeps this run's records in a fresh store (in WAL mode its writes would go on into the old
    file's log unless it checked the file before each write), exits 0; the next run is a
    no-op."""
    project.flowfile(f"""
        import os
        class Vandal(flow.Task):
            def output(self):
                return flow.LocalTarget("out/vandal.txt")
            def run(self):
                {vandalism}
                with self.output().open("w") as f:
                    f.write("x")
        class Next(flow.Task):
            def requires(self):
                return Vandal()
            def output(self):
                return flow.LocalTarget("out/next.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write("y")
        """)
    assert project.run("Next").returncode == 0  # creates the manifest first
    (project.root / "out/vandal.txt").unlink()
    (project.root / "out/next.txt").unlink()
    proc = project.run("Next")
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stderr
    said = "was removed while flow ran" if "remove" in vandalism else "overwritten or replaced"
    assert said in proc.stderr
    again = project.run("Next")
    assert again.returncode == 0, again.stderr
    assert project.ran("Next") == []


def test_a_closed_stdout_pipe_gives_no_traceback(project):
    """`flow ... | head -1`: flow finishes the build and prints no BrokenPipe traceback."""
    project.flowfile(LOGGED.replace("time.sleep(0.3)", "pass"))
    proc = subprocess.run(
        f"{' '.join(FLOW)} -v Sum lo=0 hi=20 | head -1",
        shell=True,
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr
    assert proc.stdout.count("\n") == 1
    assert project.read("out/sum0-20.txt") == str(sum(range(20)))


# -- awkward paths ------------------------------------------------------------------------------
COPY = """
import os

class Copy(flow.Task):
    src = flow.Parameter()
    dst = flow.Parameter()
    def requires(self):
        return flow.Files(self.src)
    def output(self):
        return flow.LocalTarget(self.dst)
    def run(self):
        with open(self.input()[0].path) as fin, self.output().open("w") as f:
            f.write(fin.read().upper())
"""


@pytest.mark.parametrize(
    "name",
    ["with space.txt", "ünïcødé-日本.txt", "new\nline.txt"],
    ids=["space", "unicode", "newline"],
)
def test_paths_with_spaces_unicode_or_newlines_build_and_stay_up_to_date(project, name):
    """An input and an output with an awkward name: built, then a no-op, then rebuilt on edit."""
    project.flowfile(COPY)
    (project.root / name).write_text("a")
    args = ("Copy", f"src={name}", f"dst=out/{name}")
    # A line break would make an id ambiguous: such a value is written JSON-quoted.
    src, dst = (json.dumps(v) if "\n" in v else v for v in (name, f"out/{name}"))
    assert project.ran(*args) == [f"Copy(src={src}, dst={dst})"]
    assert project.read(f"out/{name}") == "A"
    assert project.ran(*args) == []
    (project.root / name).write_text("bb")
    assert project.ran(*args) == [f"Copy(src={src}, dst={dst})"]
    assert project.read(f"out/{name}") == "BB"


def test_an_input_that_is_a_symlink_is_judged_by_the_content_it_points_to(project):
    """Editing the file behind a symlinked input reruns the task; re-pointing the link does too."""
    project.flowfile(COPY)
    (project.root / "real-a.txt").write_text("a")
    (project.root / "real-b.txt").write_text("b")
    (project.root / "link.txt").symlink_to("real-a.txt")
    args = ("Copy", "src=link.txt", "dst=out/copy.txt")
    assert len(project.ran(*args)) == 1
    assert project.ran(*args) == []
    (project.root / "real-a.txt").write_text("changed")
    assert len(project.ran(*args)) == 1 and project.read("out/copy.txt") == "CHANGED"
    (project.root / "link.txt").unlink()
    (project.root / "link.txt").symlink_to("real-b.txt")
    assert len(project.ran(*args)) == 1 and project.read("out/copy.txt") == "B"


def test_an_output_that_is_a_symlink_counts_while_its_target_exists(project):
    """A task whose output is a symlink: up to date while the link resolves; rerun when dangling."""
    project.flowfile("""
        import os
        class Link(flow.Task):
            def output(self):
                return flow.LocalTarget("out/link.txt")
            def run(self):
                os.makedirs("out", exist_ok=True)
                with open("data.txt", "w") as f:
                    f.write("data")
                os.symlink("../data.txt", "out/link.txt")
        """)
    assert project.ran("Link") == ["Link()"]
    assert project.ran("Link") == []
    (project.root / "data.txt").unlink()
    assert project.plan("Link")["Link()"]["reasons"][0]["kind"] == "missing-output"


# -- bad outputs during a run -------------------------------------------------------------------
WRITER = """
class Write(flow.Task):
    where = flow.Parameter()
    def output(self):
        return flow.LocalTarget(self.where)
    def run(self):
        with self.output().open("w") as f:
            f.write("x" * 200_000)

class Other(flow.Task):
    def output(self):
        return flow.LocalTarget("other.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("other")

class Both(flow.WrapperTask):
    where = flow.Parameter()
    def requires(self):
        return [Write(where=self.where), Other()]
"""


def _failed_cleanly(proc, path):
    assert proc.returncode == 1, proc.stderr
    assert "FAILED Write(" in proc.stderr
    assert path in proc.stderr  # the error names the output
    assert "site-packages" not in proc.stderr and "/flow/" not in proc.stderr  # user frames only


def test_an_output_path_that_is_a_directory_fails_the_task_clearly(project):
    """A file output whose path is a directory (an existing directory counts as a present
    output, as in make, so -B makes the task run): the write fails naming the path."""
    project.flowfile(WRITER)
    (project.root / "out" / "taken").mkdir(parents=True)
    proc = project.run("-B", "-k", "Both", "where=out/taken")
    _failed_cleanly(proc, "out/taken")
    assert (project.root / "out/taken").is_dir()
    assert project.read("other.txt") == "other"  # -k: the independent task still ran


def test_permission_denied_on_an_output_fails_the_task_clearly(project):
    project.flowfile(WRITER)
    (project.root / "locked").mkdir()
    undo = immutable(project.root / "locked")
    try:
        proc = project.run("-k", "Both", "where=locked/out.txt")
    finally:
        undo()
    _failed_cleanly(proc, "locked/out.txt")
    assert list((project.root / "locked").iterdir()) == []


def test_a_full_disk_fails_the_task_and_leaves_no_partial_output(project):
    """Writing an output onto a 64 KiB file system (a real ENOSPC): the task fails naming the
    path, no temporary or partial file is left behind, and -k runs the rest."""
    if os.geteuid() != 0 or shutil.which("unshare") is None:
        pytest.skip("needs root and unshare to mount a tiny tmpfs")
    if subprocess.run(["unshare", "-m", "true"]).returncode:
        pytest.skip("unshare -m is refused here")
    project.flowfile(WRITER)
    (project.root / "small").mkdir()
    flow_cmd = " ".join(f"'{a}'" for a in FLOW)
    script = (
        "mount -t tmpfs -o size=64k tmpfs small && "
        f"{flow_cmd} -k Both where=small/big.txt; status=$?; "
        "ls -A small > small-listing.txt; exit $status"
    )
    proc = subprocess.run(
        ["unshare", "-m", "sh", "-c", script],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1"},
    )
    _failed_cleanly(proc, "small/big.txt")
    assert "No space left on device" in proc.stderr
    assert project.read("small-listing.txt") == ""
    assert project.read("other.txt") == "other"


# -- the fault table ----------------------------------------------------------------------------
def test_the_fault_table_in_the_docs_and_these_tests_mirror_each_other():
    """docs/faults.md names one test per row; every test named there exists, and every test in
    this file (this one aside) has its row."""
    table = (ROOT / "docs" / "faults.md").read_text()
    named = re.findall(r"`(test_\w+)`", table)
    here = {
        name
        for name in re.findall(r"^def (test_\w+)", Path(__file__).read_text(), re.M)
        if name != "test_the_fault_table_in_the_docs_and_these_tests_mirror_each_other"
    }
    defined = set()
    for test_file in (ROOT / "tests").glob("test_*.py"):
        defined |= set(re.findall(r"^def (test_\w+)", test_file.read_text(), re.M))
    assert [n for n in named if n not in defined] == []
    assert sorted(here - set(named)) == []
    assert len(named) == len(set(named))  # one row per test
