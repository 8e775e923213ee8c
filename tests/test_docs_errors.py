"""docs/faq.md quotes the messages flow prints: provoke each one and find its fixed text there.

Each case makes flow print a message (a tiny Flowfile in tmp_path, flow as a subprocess) and
names the fixed parts of that message: the words around the paths, names and values that vary.
Every part must be in flow's output and in docs/faq.md, so rewording a message without the
page (or the page without the message) fails here.
"""

from __future__ import annotations

import importlib.util
import socket
from pathlib import Path

import pytest

from conftest import Project

FAQ = Path(__file__).resolve().parents[1] / "docs" / "faq.md"

TASKS = """
class Numbers(flow.Task):
    n = flow.IntParameter(default=3)
    def output(self):
        return flow.LocalTarget("out/numbers.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("1\\n")

class Squares(flow.Task):
    def requires(self):
        return Numbers()
    def output(self):
        return flow.LocalTarget("out/squares.txt")
    def run(self):
        pass  # forgets to write its output

class A(flow.Task):
    def requires(self):
        return B()
    def output(self):
        return flow.LocalTarget("a")

class B(flow.Task):
    def requires(self):
        return A()
    def output(self):
        return flow.LocalTarget("b")

class C(flow.Task):
    def output(self):
        return flow.LocalTarget("same.txt")

class D(flow.Task):
    def requires(self):
        return C()
    def output(self):
        return flow.LocalTarget("same.txt")

class Raw(flow.ExternalTask):
    def output(self):
        return flow.LocalTarget("raw/data.csv")

class Use(flow.Task):
    def requires(self):
        return Raw()
    def output(self):
        return flow.LocalTarget("use.txt")

class Boom(flow.Task):
    def run(self):
        raise ValueError("the disk is full")

class Hello(flow.Task):
    def output(self):
        return flow.LocalTarget("hello.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("hello")

class Big(flow.Task):
    resources = {"db": 3}
    def run(self):
        pass

class Classy(flow.Task):
    def requires(self):
        return Numbers  # the class, not an instance
    def run(self):
        pass

class Gs(flow.Task):
    def output(self):
        return flow.RemoteTarget("gs://bucket/x")

class Ftp(flow.Task):
    port = flow.IntParameter()
    def output(self):
        return flow.RemoteTarget(f"ftp://127.0.0.1:{self.port}/x")
"""

AMBIGUOUS = """
class Load(flow.Task):
    task_namespace = "a"
    def run(self):
        pass

class Load(flow.Task):  # noqa: F811 (a second class of the same name, in another namespace)
    task_namespace = "b"
    def run(self):
        pass
"""

# (case, command-line arguments, exit status, the fixed parts of the message)
CASES = [
    ("-f names no file", ("-f", "nothere.py"), 2, ["does not exist; check the -f argument"]),
    ("-m names no module", ("-m", "nomodule"), 2,
     ["no module named 'nomodule': tried", "or add its directory to PYTHONPATH"]),
    ("import fails", ("-f", "broken.py"), 2,
     ["failed to import:", "ModuleNotFoundError: No module named 'nosuchthing'"]),
    ("syntax error", ("-f", "syntax.py"), 2, ["expected ':'", "fix the Flowfile and run flow again"]),
    ("no tasks", ("-f", "notasks.py"), 2, ["defines no tasks; add a flow.Task subclass"]),
    ("unknown task", ("Sqares",), 2,
     ["unknown task 'Sqares' in Flowfile.py; did you mean Squares?", "(flow --list shows them all)"]),
    ("ambiguous task", ("-f", "ambiguous.py", "Load"), 2,
     ["task name 'Load' is ambiguous: it matches a.Load, b.Load; use the full name"]),
    ("unknown parameter", ("Numbers", "--m", "3"), 2,
     ["unknown parameter 'm' for Numbers (Numbers takes: n) (from --m)"]),
    ("Luigi's worker option", ("Numbers", "--worker-keep-alive"), 0,
     ["ignoring Luigi's --worker-keep-alive: flow has no use for it"]),
    ("Luigi's scheduler option", ("Numbers", "--scheduler-url", "http://x:8082"), 2,
     ["--scheduler-url: flow has no central scheduler", "--serve shows runs in a browser"]),
    ("unknown option", ("Numbers", "-x"), 2, ["unknown option -x; flow --help lists the options"]),
    ("bad value", ("Numbers", "n=abc"), 2,
     ["bad value 'abc' for parameter 'n' of Numbers: expected an integer", "e.g. n=20"]),
    ("cycle", ("A",), 2,
     ["dependency cycle: A() -> B() -> A(); break it by removing one of these requires()"]),
    ("two tasks, one output", ("D",), 2,
     ["two tasks declare the output same.txt", "give each task its own output path"]),
    ("requires() returns a class", ("Classy",), 2,
     ["which is not a task; return task instances (e.g. Other(n=1)), or a list or dict of them"]),
    ("missing external input", ("Use",), 1,
     ["missing external input: raw/data.csv (needed by Use()); create it, or fix the task that declares it",
      "(not started: a missing external input (use -k to run what does not need it))"]),
    ("task raises", ("Boom",), 1, ["FAILED Boom()", "ValueError: the disk is full"]),
    ("output not created", ("Squares",), 1,
     ["finished without creating its output out/squares.txt; write it (e.g. with "
      "self.output().open('w')), or fix output()"]),
    ("resource total", ("Big",), 1,
     ["needs 3 of resource 'db' but the total is 1; raise it in [resources] (luigi.cfg) or "
      "[tool.flow.resources]: db = 3"]),
    ("-t with a missing output", ("-t", "Squares"), 1,
     ["up to date: an output is missing; run it instead"]),
    ("bad --dask", ("-B", "--dask", "foo", "Numbers"), 2,
     ["bad --dask value 'foo': expected local, local:N or tcp://HOST:PORT"]),
]  # fmt: skip


def setup(project: Project) -> None:
    project.flowfile(TASKS)
    project.flowfile(AMBIGUOUS, name="ambiguous.py")
    project.write("broken.py", "import flow\nimport nosuchthing\n")
    project.write("syntax.py", "import flow\nclass X(flow.Task):\n    def run(self) pass\n")
    project.write("notasks.py", "import flow\n")


def check(output: str, parts: list[str]) -> None:
    """Each part is in what flow printed, and in the FAQ."""
    faq = FAQ.read_text()
    for part in parts:
        assert part in output, f"flow no longer prints {part!r}:\n{output}"
        assert part in faq, f"docs/faq.md does not quote {part!r}"


@pytest.mark.parametrize(
    ("args", "status", "parts"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_the_faq_quotes_the_message(project, args, status, parts):
    """Provoke the message, check the exit status, and find its fixed parts in the FAQ."""
    setup(project)
    proc = project.run(*args)
    assert proc.returncode == status, proc.stdout + proc.stderr
    check(proc.stdout + proc.stderr, parts)


def test_no_flowfile_here_or_above(project, tmp_path_factory):
    """flow in a directory with no Flowfile.py in it or any parent."""
    nowhere = tmp_path_factory.mktemp("no-flowfile")
    proc = project.run(cwd=nowhere)
    assert proc.returncode == 2
    check(proc.stderr, ["or any parent directory; create one, or name a file with -f FILE"])


def test_config_file_bad_value_names_the_file_and_line(project):
    """A bad value in luigi.cfg: the message starts with the file and line."""
    setup(project)
    project.write("luigi.cfg", "[Numbers]\nn = abc\n")
    proc = project.run("Numbers")
    assert proc.returncode == 2
    check(proc.stderr, ["luigi.cfg:2: bad value 'abc' for parameter 'n' of Numbers"])


def test_hand_edited_output_is_kept_then_saved_before_a_forced_rebuild(project):
    """An output changed after flow wrote it: kept with a warning; -B saves it under backup/."""
    setup(project)
    assert project.run("Numbers").returncode == 0
    with open(project.root / "out/numbers.txt", "a") as f:
        f.write("mine\n")
    proc = project.run("Numbers")
    assert proc.returncode == 0
    check(proc.stderr, ["was modified by hand since Numbers(n=3) wrote it; keeping your copy "
                        "(run with -B to rebuild it, or -t to accept it)"])  # fmt: skip
    proc = project.run("-B", "Numbers")
    assert proc.returncode == 0
    check(proc.stderr, ["was modified by hand; saved that copy as .flow/backup/"])


def test_outputs_without_a_record_are_adopted_with_a_warning(project):
    """An output made before flow (by Luigi, say): recorded as up to date, and flow says so."""
    setup(project)
    project.write("hello.txt", "hello")
    proc = project.run("Hello")
    assert proc.returncode == 0
    check(proc.stderr, ["adopted the existing outputs of Hello() without running it: no record "
                        "in .flow/, and nothing says they are stale (run with -B to rebuild instead)"])  # fmt: skip


def test_outputs_whose_path_lacks_a_parameter_are_not_adopted(project):
    """Without a record, an output whose path does not name a parameter cannot be trusted."""
    setup(project)
    project.write("out/numbers.txt", "1\n")
    proc = project.run("-n", "Numbers")
    assert proc.returncode == 0
    check(proc.stdout, ["no-record: out/numbers.txt: its path does not name n, so which n built it is unknown"])  # fmt: skip


def test_corrupt_manifest_is_moved_aside(project):
    """Garbage in .flow/manifest.sqlite: a warning naming where it went, and the build goes on."""
    setup(project)
    assert project.run("Numbers").returncode == 0
    manifest = project.root / ".flow/manifest.sqlite"
    for side in project.root.glob(".flow/manifest.sqlite-*"):
        side.unlink()
    manifest.write_bytes(b"this is not a database" * 10)
    proc = project.run("Numbers")
    assert proc.returncode == 0, proc.stderr
    check(proc.stderr, ["was unreadable (file is not a database); moved it to .flow/manifest.sqlite.corrupt-",
                        "and started an empty one (what built the outputs is lost: tasks run again)"])  # fmt: skip


def test_missing_protocol_library_names_the_package(project):
    """gs:// without gcsfs installed: the package to install."""
    if importlib.util.find_spec("gcsfs") is not None:
        pytest.skip("gcsfs is installed here")
    setup(project)
    proc = project.run("Gs")
    assert proc.returncode == 2
    check(proc.stderr, ["gs:// targets need the package gcsfs: pip install 'flow-build[remote]' "
                        "(or pip install gcsfs)"])  # fmt: skip


def test_unreachable_store_names_the_url(project):
    """An FTP target on a port where nothing listens: a one-line error naming the URL."""
    setup(project)
    with socket.socket() as closed:  # bound, never listening: connections are refused
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        proc = project.run("Ftp", f"port={port}")
    assert proc.returncode == 2
    assert f"cannot connect to ftp://127.0.0.1:{port}/x" in proc.stderr
    assert "Traceback" not in proc.stderr
    check(proc.stderr, ["flow: error: cannot connect to ftp://127.0.0.1:"])


def test_serve_on_a_port_in_use(project):
    """--serve where another program listens: the advice to use port 0."""
    setup(project)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        proc = project.run("--serve", f"127.0.0.1:{port}")
    assert proc.returncode == 2
    check(proc.stderr, ["the port is already in use (another flow --serve?); "
                        "use --serve 127.0.0.1:0 for any free port"])  # fmt: skip


def test_unusable_cache_warns_and_builds_without_it(project):
    """--cache naming a regular file: a warning, then an ordinary build."""
    setup(project)
    project.write("cachefile", "not a directory")
    proc = project.run("--cache", "cachefile", "Numbers")
    assert proc.returncode == 0, proc.stderr
    assert (project.root / "out/numbers.txt").exists()
    check(proc.stderr, ["is unusable ([Errno 20] Not a directory:", "); building without it"])


def test_waiting_for_another_flow(project):
    """Two flows on one task: the second says it waits, then finds the task up to date."""
    setup(project)
    project.flowfile(
        """
        import pathlib, time
        class Slow(flow.Task):
            def output(self):
                return flow.LocalTarget("slow.txt")
            def run(self):
                pathlib.Path("started").touch()
                while not pathlib.Path("go").exists():
                    time.sleep(0.02)
                with self.output().open("w") as f:
                    f.write("done")
        """,
        name="slow.py",
    )
    first = project.start("-f", "slow.py", "Slow")
    first.wait_for(lambda: (project.root / "started").exists(), "the first flow to start Slow")
    second = project.start("-f", "slow.py", "Slow")
    second.wait_for_line("waiting for another flow process to finish")
    (project.root / "go").touch()
    assert first.finish()[0] == 0
    code, out, err = second.finish()
    assert code == 0 and "up to date" in out, out + err
    check(second.text, ["flow: waiting for another flow process to finish Slow()"])
