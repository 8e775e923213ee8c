"""Luigi's API beyond the core: formats, MockTarget, parameter types, Config, namespaces, events."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import subprocess
import sys
import textwrap

import pytest

from flow import format as fmt


def run_script(project, text: str) -> subprocess.CompletedProcess[str]:
    """Run a Python script in the project (a user's own test or build script)."""
    path = project.write("script.py", text)
    return subprocess.run(
        [sys.executable, str(path)], cwd=project.root, capture_output=True, text=True, timeout=60
    )


# -- formats ----------------------------------------------------------------------------------------
BINARY = """
class Blob(flow.Task):
    def output(self):
        return flow.LocalTarget("out/blob.bin", format=flow.format.Nop)
    def run(self):
        with self.output().open("w") as f:
            f.write(bytes(range(256)))

class Size(flow.Task):
    def requires(self):
        return Blob()
    def output(self):
        return flow.LocalTarget("out/size.txt")
    def run(self):
        with self.input().open("r") as f:
            data = f.read()
        with self.output().open("w") as f:
            f.write(f"{type(data).__name__} {len(data)}")
"""


def test_format_nop_opens_a_local_target_in_binary_for_writing_and_reading(project):
    """A task writes bytes through format=Nop with open("w"); its dependent reads bytes back."""
    project.flowfile(BINARY)
    proc = project.run("Size")
    assert proc.returncode == 0, proc.stderr
    assert (project.root / "out/blob.bin").read_bytes() == bytes(range(256))
    assert project.read("out/size.txt") == "bytes 256"


COMPRESSED = """
class Pack(flow.Task):
    def output(self):
        return [
            flow.LocalTarget("out/a.txt.gz", format=flow.format.UTF8 >> flow.format.Gzip),
            flow.LocalTarget("out/b.bz2", format=flow.format.Bzip2),
        ]
    def run(self):
        with self.output()[0].open("w") as f:
            f.write("héllo\\nwörld\\n")
        with self.output()[1].open("w") as f:
            f.write(b"raw bytes")

class Unpack(flow.Task):
    def requires(self):
        return Pack()
    def output(self):
        return flow.LocalTarget("out/lines.json")
    def run(self):
        text, raw = self.input()
        with text.open("r") as f:
            lines = list(f)
        with raw.open("r") as f:
            data = f.read().decode()
        with self.output().open("w") as out:
            out.write(json.dumps([lines, data]))
"""


def test_gzip_and_bzip2_formats_compress_and_chain_with_text(project):
    """UTF8 >> Gzip writes gzip-compressed UTF-8 that gzip reads; Bzip2 compresses bytes."""
    project.flowfile("import json\n" + textwrap.dedent(COMPRESSED))
    proc = project.run("Unpack")
    assert proc.returncode == 0, proc.stderr
    assert gzip.decompress((project.root / "out/a.txt.gz").read_bytes()).decode() == (
        "héllo\nwörld\n"
    )
    assert bz2.decompress((project.root / "out/b.bz2").read_bytes()) == b"raw bytes"
    assert json.loads(project.read("out/lines.json")) == [["héllo\n", "wörld\n"], "raw bytes"]


def test_a_failed_with_block_on_a_formatted_target_leaves_no_file(project):
    """run() raises inside `with target.open("w")` on a gzip target: no file, no temporary."""
    project.flowfile(
        """
        class Broken(flow.Task):
            def output(self):
                return flow.LocalTarget("out/x.gz", format=flow.format.UTF8 >> flow.format.Gzip)
            def run(self):
                with self.output().open("w") as f:
                    f.write("half")
                    raise ValueError("boom")
        """
    )
    proc = project.run("Broken")
    assert proc.returncode == 1
    assert "boom" in proc.stdout + proc.stderr
    assert list((project.root / "out").iterdir()) == []


class FakeWriter(io.RawIOBase):
    """A binary atomic writer like a remote store's: close() commits, discard() throws away."""

    def __init__(self) -> None:
        self.buf = io.BytesIO()
        self.committed: bytes | None = None
        self.discarded = False

    def writable(self) -> bool:
        return True

    def write(self, data) -> int:  # type: ignore[override]
        return self.buf.write(data)

    def close(self) -> None:
        if not self.closed and not self.discarded:
            self.committed = self.buf.getvalue()
        super().close()

    def discard(self) -> None:
        self.discarded = True
        super().close()


def test_wrap_commits_a_binary_writer_on_close_and_discards_it_when_the_block_fails():
    """format.wrap over any binary writer: text through Gzip lands on close, never on error."""
    good = FakeWriter()
    with fmt.wrap(fmt.UTF8 >> fmt.Gzip, good, "w") as f:
        f.write("ünïcode")
    assert gzip.decompress(good.committed or b"").decode() == "ünïcode"

    bad = FakeWriter()
    with pytest.raises(RuntimeError), fmt.wrap(fmt.UTF8, bad, "w") as f:
        f.write("partial")
        raise RuntimeError
    assert bad.discarded and bad.committed is None

    assert fmt.wrap(None, io.BytesIO(b"a\nb\n"), "r").read() == "a\nb\n"
    assert fmt.wrap(None, io.BytesIO(b"\x00"), "rb").read() == b"\x00"
    assert fmt.wrap(fmt.Nop, io.BytesIO(b"\x00"), "r").read() == b"\x00"


def test_chaining_formats_that_do_not_fit_is_an_error():
    """Gzip gives bytes and UTF8 takes text: Gzip >> UTF8 is refused, naming both."""
    with pytest.raises(TypeError, match="GzipFormat.*TextFormat|TextFormat.*GzipFormat"):
        fmt.Gzip >> fmt.UTF8


# -- MockTarget -------------------------------------------------------------------------------------
MOCK_PIPELINE = """
import flow
from flow.mock import MockTarget

class Words(flow.Task):
    def output(self):
        return MockTarget("words")
    def run(self):
        with self.output().open("w") as f:
            f.write("a b c")

class Count(flow.Task):
    def requires(self):
        return Words()
    def output(self):
        return MockTarget("count")
    def run(self):
        with self.input().open("r") as f, self.output().open("w") as out:
            out.write(str(len(f.read().split())))

class Broken(flow.Task):
    def output(self):
        return MockTarget("broken")
    def run(self):
        with self.output().open("w") as f:
            f.write("half")
            raise ValueError("boom")

class Part(flow.Task):
    i = flow.IntParameter()
    def output(self):
        return MockTarget(f"part{self.i}")
    def run(self):
        with self.output().open("w") as f:
            f.write(str(self.i))

parallel = flow.build([Part(1), Part(2)], workers=2)
first = flow.build([Count()], local_scheduler=True)
second = flow.build([Count()], local_scheduler=True)
failed = flow.build([Broken()], local_scheduler=True)
print(json.dumps({
    "first": [bool(first), first.ran],
    "second": [bool(second), second.ran, second.up_to_date],
    "data": {k: v.decode() for k, v in MockTarget.fs.get_all_data().items()},
    "failed": [bool(failed), failed.failed, MockTarget("broken").exists()],
    "parallel": [bool(parallel), sorted(parallel.ran)],
}))
"""


def test_mock_targets_build_in_memory_atomically_and_are_recorded_for_staleness(project):
    """A pipeline's own test: flow.build with MockTargets runs once, is up to date the second
    time, and a failed write leaves no mock file."""
    proc = run_script(project, "import json\n" + MOCK_PIPELINE)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout.strip().splitlines()[-1])
    assert doc["first"] == [True, ["Words()", "Count()"]]
    assert doc["second"] == [True, [], ["Words()", "Count()"]]
    assert doc["data"] == {"part1": "1", "part2": "2", "words": "a b c", "count": "3"}
    # workers=2: tasks writing MockTargets still run in this process, where the data lives.
    assert doc["parallel"] == [True, ["Part(i=1)", "Part(i=2)"]]
    assert doc["failed"] == [False, ["Broken()"], False]


# -- parameter types --------------------------------------------------------------------------------
PARAMS = """
import enum

class Color(enum.Enum):
    red = 1
    blue = 2

class Report(flow.Task):
    pass

class Show(flow.Task):
    hour = flow.DateHourParameter()
    minute = flow.DateMinuteParameter(default="2026-11-25T0730")
    second = flow.DateSecondParameter(default="2026-11-25T073015")
    month = flow.MonthParameter(default="2026-11")
    year = flow.YearParameter(default="2026")
    every = flow.TimeDeltaParameter(default="P1DT2H")
    of = flow.TaskParameter(default="Report")
    sizes = flow.ChoiceListParameter(choices=["s", "m", "l"], default="s")
    colors = flow.EnumListParameter(enum=Color, default="red")
    limit = flow.OptionalIntParameter(default=None)
    ratio = flow.NumericalParameter(default=0.5, var_type=float, min_value=0, max_value=1)
    pairs = flow.TupleParameter(default="((1, 2), (3, 4))")
    name = flow.OptionalStrParameter(default=None)
    def run(self):
        pass
"""


def test_luigi_parameter_types_parse_from_the_command_line_into_canonical_ids(project):
    """Every new type takes Luigi's command-line form and shows one canonical form in the id."""
    project.flowfile(PARAMS)
    code, doc = project.run_json(
        "-n",
        "Show",
        "--hour",
        "2026-11-25T07",
        "--every",
        "90",
        "--sizes",
        "m,l",
        "--colors",
        "blue,red",
        "--limit",
        "3",
        "--of",
        "Show",
    )
    assert code == 0, doc
    (tid,) = [p["task"] for p in doc["plan"]]
    assert tid == (
        "Show(hour=2026-11-25T07, minute=2026-11-25T0730, second=2026-11-25T073015, "
        'month=2026-11, year=2026, every=0 w 0 d 0 h 1 m 30 s, of=Show, sizes="m,l", '
        'colors="blue,red", limit=3, ratio=0.5, pairs=[[1,2],[3,4]], name="")'
    )


@pytest.mark.parametrize(
    ("args", "words"),
    [
        (["--hour", "2026-11-25"], "YYYY-MM-DDTHH"),
        (["--hour", "2026-11-25T07", "--ratio", "2"], "0 <= value < 1"),
        (["--hour", "2026-11-25T07", "--of", "Nope"], "no task is called Nope"),
        (["--hour", "2026-11-25T07", "--sizes", "xl"], "xl not among the choices"),
    ],
)
def test_a_bad_value_of_a_new_parameter_type_is_a_usage_error(project, args, words):
    """A wrong form names the parameter and what it expects; exit 2, no traceback."""
    project.flowfile(PARAMS)
    proc = project.run("-n", "Show", *args)
    assert proc.returncode == 2
    assert words in proc.stderr and "Traceback" not in proc.stderr


TASK_API = """
import json
import flow

flow.namespace("reports")
class Daily(flow.Task):
    day = flow.DateParameter()
    limit = flow.IntParameter(default=5)
flow.namespace()

class Plain(flow.Task):
    pass

flow.auto_namespace(scope="")
class Named(flow.Task):
    pass
flow.namespace(None)

d = Daily.from_str_params({"day": "2026-11-02", "limit": "7"})
print(json.dumps({
    "family": [Daily.get_task_family(), Plain.get_task_family(), Named.get_task_family()],
    "namespace": [Daily.get_task_namespace(), Plain.get_task_namespace()],
    "id": d.task_id,
    "str": d.to_str_params(),
    "values": [[n, str(v)] for n, v in Daily.get_param_values(Daily.get_params(), ["2026-11-03"], {})],
    "same": Daily.from_str_params(d.to_str_params()) is d,
    "param_args": [str(a) for a in d.param_args],
}))
"""


def test_task_families_namespaces_and_string_parameters_as_in_luigi(project):
    """namespace()/auto_namespace() name later classes; from_str_params/to_str_params round-trip."""
    proc = run_script(project, TASK_API)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["family"] == ["reports.Daily", "Plain", "__main__.Named"]
    assert doc["namespace"] == ["reports", ""]
    assert doc["id"] == "reports.Daily(day=2026-11-02, limit=7)"
    assert doc["str"] == {"day": "2026-11-02", "limit": "7"}
    assert doc["values"] == [["day", "2026-11-03"], ["limit", "5"]]
    assert doc["same"] is True
    assert doc["param_args"] == ["2026-11-02", "7"]


# -- Config -----------------------------------------------------------------------------------------
CONFIG = """
class db(flow.Config):
    host = flow.Parameter(default="localhost")
    port = flow.IntParameter(default=5432)

class Dump(flow.Task):
    def output(self):
        return flow.LocalTarget("out/dump.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write(f"{db().host}:{db().port}")
"""


def test_a_config_class_reads_its_section_and_the_command_line_beats_it(project):
    """[db] in luigi.cfg sets db().host; --db-host on the command line wins over the file."""
    project.flowfile(CONFIG)
    project.write("luigi.cfg", "[db]\nhost = dbserver\nport = 6543\n")
    assert project.run("Dump").returncode == 0
    assert project.read("out/dump.txt") == "dbserver:6543"
    (project.root / "out/dump.txt").unlink()
    proc = project.run("Dump", "--db-host", "other")
    assert proc.returncode == 0, proc.stderr
    assert project.read("out/dump.txt") == "other:6543"


def test_a_bare_flow_builds_the_first_task_not_a_config_class(project):
    """The Flowfile's first class is a Config: `flow` with no task builds the first real task."""
    project.flowfile(CONFIG)
    proc = project.run()
    assert proc.returncode == 0, proc.stderr
    assert project.read("out/dump.txt") == "localhost:5432"


def test_a_config_class_reads_tool_flow_tasks_in_pyproject(project):
    """[tool.flow.tasks.db] in pyproject.toml is the same section in flow's own file."""
    project.flowfile(CONFIG)
    project.write("pyproject.toml", '[tool.flow.tasks.db]\nhost = "tomlhost"\n')
    proc = project.run("Dump")
    assert proc.returncode == 0, proc.stderr
    assert project.read("out/dump.txt") == "tomlhost:5432"


# -- events -----------------------------------------------------------------------------------------
EVENTS = """
import os

class Good(flow.Task):
    i = flow.IntParameter()
    def output(self):
        return flow.LocalTarget(f"out/{self.i}.txt")
    def run(self):
        self.output().open("w").close()

class Bad(flow.Task):
    def run(self):
        raise ValueError("the disk is full")

class All(flow.WrapperTask):
    def requires(self):
        return [Good(1), Good(2), Bad()]

def note(line):
    with open("events.log", "a") as f:
        f.write(f"{os.getpid()} {line}\\n")

@Good.event_handler(flow.Event.START)
def started(task):
    note(f"start {task.task_id}")

@Good.event_handler(flow.Event.SUCCESS)
def succeeded(task):
    note(f"success {task.task_id}")

@flow.Task.event_handler(flow.Event.FAILURE)
def failed(task, exception):
    note(f"failure {task.task_id} {type(exception).__name__}: {exception}")

@flow.Task.event_handler(flow.Event.PROCESSING_TIME)  # every task: Bad's must not come (Luigi)
def timed(task, seconds):
    note(f"time {task.task_id} {type(seconds).__name__}")

@Good.event_handler(flow.Event.SUCCESS)
def broken(task):
    raise RuntimeError("the handler broke")
"""


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_event_handlers_run_in_the_flow_process_and_their_errors_are_warnings(project, jobs):
    """START, SUCCESS, FAILURE (with the exception) and PROCESSING_TIME reach handlers in the
    flow process, under -j 1 and -j 2; a handler that raises is a warning, not a failure."""
    project.flowfile(EVENTS)
    proc = project.run("All", "-k", "-j", jobs)
    assert proc.returncode == 1  # Bad failed; the broken handler changed nothing
    lines = project.read("events.log").splitlines()
    assert len({line.split()[0] for line in lines}) == 1  # one process: flow's own
    events = sorted(line.split(" ", 1)[1] for line in lines)
    assert events == [
        "failure Bad() TaskRunError: ValueError: the disk is full",
        "start Good(i=1)",
        "start Good(i=2)",
        "success Good(i=1)",
        "success Good(i=2)",
        "time Good(i=1) float",
        "time Good(i=2) float",
    ]
    warnings = [ln for ln in proc.stderr.splitlines() if "the handler broke" in ln]
    assert len(warnings) == 2 and all("warning" in ln for ln in warnings)


def test_a_missing_external_input_triggers_dependency_missing(project):
    """An ExternalTask whose output is missing: DEPENDENCY_MISSING handlers get it; exit 1."""
    project.flowfile(
        """
        class Raw(flow.ExternalTask):
            def output(self):
                return flow.LocalTarget("raw.csv")

        class Use(flow.Task):
            def requires(self):
                return Raw()
            def run(self):
                pass

        @Raw.event_handler(flow.Event.DEPENDENCY_MISSING)
        def missing(task):
            open("missing.log", "a").write(task.task_id)
        """
    )
    assert project.run("Use").returncode == 1
    assert project.read("missing.log") == "Raw()"
