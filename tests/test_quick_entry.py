"""The `flow` entry point answers a Tab, `--list` and `--version` from the cached index without
click or the Flowfile, printing exactly what click's path prints (flow.cli.main, the reference)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent

# Runs one command line through ENTRY (flow.entry.main, the console script) or flow.cli.main
# (click's path, the reference), then writes the names of the modules it imported to argv[1].
RUNNER = """
import json, sys
where, entry = sys.argv[1], sys.argv[2]
sys.argv = ["flow", *sys.argv[3:]]
code = None
try:
    if entry == "quick":
        from flow.entry import main
    else:
        from flow.cli import main
    main()
except SystemExit as exc:
    code = exc.code
finally:
    sys.stdout.flush()
    with open(where, "w") as f:
        json.dump({"modules": sorted(sys.modules), "code": code}, f)
"""

TASKS = '''
import enum

with open("imports.log", "a") as log:
    log.write("imported\\n")

from helper import Base


class Color(enum.Enum):
    red = 1
    green = 2


class Build(Base):
    """Build the thing: fast."""

    n = flow.IntParameter(default=10, description="how many: at most\\tten")
    debug = flow.BoolParameter(default=False)
    mode = flow.ChoiceParameter(choices=["fast", "slow"], default="fast")
    color = flow.EnumParameter(enum=Color, default=Color.red)
    path = flow.Parameter(description="where")
    secret = flow.Parameter(default="x", visibility=flow.parameter.ParameterVisibility.HIDDEN)

    def run(self):
        pass


class Deploy(flow.Task):
    target = flow.ChoiceParameter(choices=["staging", "production"])

    def run(self):
        pass


class _Internal(flow.Task):
    pass


default = Build
'''

HELPER = "import flow\n\nclass Base(flow.Task):\n    '''A base.'''\n"


class Entry:
    """Run command lines in a project through the quick entry point and through click's."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.n = 0

    def run(self, which: str, argv: list[str], env: dict[str, str]) -> tuple[bytes, dict]:
        self.n += 1
        where = self.root.parent / f"modules-{self.n}.json"
        proc = subprocess.run(
            [sys.executable, "-c", RUNNER, str(where), which, *argv],
            cwd=self.root,
            capture_output=True,
            timeout=120,
            env={**os.environ, "NO_COLOR": "1", **env},
        )
        assert b"Traceback" not in proc.stderr, proc.stderr.decode()
        return proc.stdout + b"\x00" + proc.stderr, json.loads(where.read_text())

    def same(self, argv: list[str], env: dict[str, str] | None = None) -> tuple[bytes, bool]:
        """Click's output, and whether the quick entry printed it without importing click (the
        quick entry runs first: when it falls through to click, click's path keeps the index)."""
        env = env or {}
        quick, seen = self.run("quick", argv, env)
        slow, _ = self.run("click", argv, env)
        assert quick == slow, f"{argv} {env}:\nquick: {quick!r}\nclick: {slow!r}"
        assert seen["code"] == 0
        return slow, "click" not in seen["modules"]

    def complete(self, shell: str, line: str, env: dict[str, str] | None = None):
        words = line.split(" ")
        if shell == "fish":
            comp = {"COMP_WORDS": line, "COMP_CWORD": words[-1]}
        else:
            comp = {"COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}
        return self.same([], {**comp, "_FLOW_COMPLETE": f"{shell}_complete", **(env or {})})


@pytest.fixture
def entry(project) -> Entry:
    project.write("helper.py", HELPER)
    project.flowfile(TASKS)
    project.write("sub/other.py", "import flow\nclass Elsewhere(flow.Task):\n    pass\n")
    return Entry(project.root)


LINES = [
    "flow ",
    "flow Bu",
    "flow b",
    "flow Build ",
    "flow Build de",
    "flow Build n",
    "flow Build mode=s",
    "flow Build color=",
    "flow Build n=3 mode=slow ",
    "flow Build n=3 Deploy ",
    "flow Deploy target=pro",
    "flow Build.mode=",
    "flow -",
    "flow --",
    "flow Build -",
    "flow Build --m",
    "flow -f Flowfile.py Bu",
    "flow -C sub -f other.py E",
    "flow x y ",
]
# Lines the quick path leaves to click: an option's value, an option before the word, a word
# after --, quoting.
CLICKS = [
    "flow -f ",
    "flow --graph m",
    "flow Build -- -",
    "flow Build --mode ",
    "flow Build n=3 --debug mode=slow ",
    "flow -q Bu",
    "flow 'Bu",
]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_a_tab_from_the_index_prints_what_click_prints(entry, shell):
    for warm in ("flow ", "flow -C sub -f other.py "):
        assert not entry.complete(shell, warm)[1]  # no index yet: click's path builds it
    for line in LINES:
        out, quick = entry.complete(shell, line)
        assert quick, f"{shell} {line!r} went through click"
        assert out.strip(b"\x00\n"), line  # every line of LINES has candidates
    for line in CLICKS:
        entry.complete(shell, line)  # the same output, whichever path printed it
    assert (entry.root / "imports.log").read_text().count("imported") == 1


def test_bash_words_split_at_equals_answer_the_values_alone(entry):
    entry.complete("bash", "flow ")
    out, quick = entry.complete("bash", "flow Deploy target = pro")
    assert quick and out == b"plain,production\n\x00"
    out, quick = entry.complete("bash", "flow Build debug = ")
    assert quick and out == b"plain,true\nplain,false\n\x00"


def test_zsh_and_fish_help_texts_with_colons_and_tabs(entry):
    entry.complete("zsh", "flow ")
    out, quick = entry.complete("zsh", "flow Build n")
    assert quick and out == b"plain\nn=10\nhow many: at most\tten\n\x00"
    out, quick = entry.complete("fish", "flow Bu")
    assert quick and b"plain,Build\tBuild the thing: fast.\n" in out


def test_no_flowfile_or_a_broken_one_prints_what_click_prints(project):
    e = Entry(project.root)
    assert e.complete("bash", "flow ")[0] == b"\n\x00"
    assert e.complete("zsh", "flow -")[0].startswith(b"plain\n-f\n")
    project.flowfile("raise RuntimeError('boom')\n")
    assert e.complete("bash", "flow B")[0] == b"\n\x00"
    assert e.complete("fish", "flow B")[0] == b"\n\x00"


@pytest.mark.parametrize(
    "edit",
    [
        ("Flowfile.py", "\nclass Extra(flow.Task):\n    pass\n", "Extra"),
        ("helper.py", "\nclass Extra(flow.Task):\n    pass\n", "Extra"),
        ("luigi.cfg", "[Build]\nn = 42\n", "n=42"),
        ("pyproject.toml", "[tool.flow.tasks.Build]\nn = 43\n", "n=43"),
    ],
)
def test_an_edit_of_the_flowfile_a_module_or_a_config_file_is_seen(entry, edit):
    name, text, shows = edit
    entry.complete("bash", "flow Build n")
    assert entry.complete("bash", "flow Build n")[1]  # warm: answered from the index
    path = entry.root / name
    path.write_text((path.read_text() if path.exists() else "") + text)
    line = "flow Build n" if shows.startswith("n=") else "flow E"
    out, _ = entry.complete("bash", line)
    assert shows.encode() in out
    out, quick = entry.complete("bash", line)  # and the rebuilt index answers the next Tab
    assert quick and shows.encode() in out


@pytest.mark.parametrize("argv", [["--list"], ["-l", "--json"], ["-f", "Flowfile.py", "-l"]])
def test_list_from_the_index_prints_what_click_prints(entry, argv):
    first, quick = entry.same(argv)
    assert not quick  # nothing listed yet: click's path lists, and keeps the index
    assert b"Build" in first and b"Deploy" in first and b"secret" not in first
    again, quick = entry.same(argv)
    assert quick and again == first
    (entry.root / ".flow" / "completion.json").unlink()
    assert entry.same(argv) == (first, False)
    assert entry.same(argv) == (first, True)


def test_list_in_another_directory_and_of_another_flowfile(entry):
    for argv, shows in (
        (["-C", "sub", "-f", "other.py", "--list"], b"Elsewhere"),
        (["-f", "sub/other.py", "--list"], b"Elsewhere"),
        (["-C", "sub", "--list"], b"Deploy"),  # the Flowfile of the parent directory
    ):
        assert entry.same(argv)[1] is False
        out, quick = entry.same(argv)
        assert quick and shows in out


def test_list_after_an_edit_lists_the_new_task(entry):
    entry.same(["--list"])
    assert entry.same(["--list"])[1]
    path = entry.root / "helper.py"
    path.write_text(path.read_text() + "\nclass Fresh(flow.Task):\n    pass\n")
    out, quick = entry.same(["--list"])
    assert not quick and b"Fresh" in out


def test_list_is_left_to_click_when_the_import_prints_or_the_config_warns(entry):
    path = entry.root / "Flowfile.py"
    path.write_text(path.read_text() + "\nprint('hello from the Flowfile')\n")
    for _ in range(2):
        out, quick = entry.same(["--list"])
        assert b"hello from the Flowfile" in out and not quick
    path.write_text(path.read_text().replace("print('hello from the Flowfile')", ""))
    (entry.root / "luigi.cfg").write_text("[Build]\nno_such_parameter = 1\n")
    for _ in range(2):
        out, quick = entry.same(["--list"])
        assert b"no_such_parameter" in out and not quick
    (entry.root / "luigi.cfg").unlink()
    entry.same(["--list"])
    assert entry.same(["--list"])[1]
    out, quick = entry.same(["--list"], {"LUIGI_CONFIG_PATH": "missing.cfg"})
    assert b"missing.cfg" in out and not quick


def test_list_with_anything_more_is_left_to_click(entry):
    entry.same(["--list"])
    for argv in (["--list", "Build"], ["--list", "-q"], ["--list", "--flowfile=Flowfile.py"]):
        assert entry.same(argv)[1] is False


def test_version_needs_no_click(entry):
    out, quick = entry.same(["--version"])
    assert quick and out.startswith(b"flow ")


def test_flow_quick_0_always_takes_click(entry):
    entry.same(["--list"])
    _, seen = entry.run("quick", ["--list"], {"FLOW_QUICK": "0"})
    assert "click" in seen["modules"]


def test_a_malformed_index_is_never_trusted(entry):
    entry.same(["--list"])
    index = entry.root / ".flow" / "completion.json"
    data = json.loads(index.read_text())
    data["entries"][0]["tasks"] = [{"name": "Bogus"}]  # no params: the quick path must not crash
    index.write_text(json.dumps(data))
    out, _ = entry.complete("bash", "flow Bogus ")  # key still matches: click's path answers
    assert b"Traceback" not in out


def test_the_console_script_is_the_entry_module():
    text = (REPO / "pyproject.toml").read_text()
    assert 'flow = "flow.entry:main"' in text


@pytest.mark.parametrize("field", ["code", "click"])
def test_an_index_built_by_other_code_or_another_click_is_not_trusted(entry, field):
    """An edited flow checkout (same version) or an upgraded click: click's path answers, and
    rebuilds the index."""
    entry.same(["--list"])
    assert entry.same(["--list"])[1]
    index = entry.root / ".flow" / "completion.json"
    data = json.loads(index.read_text())
    if field == "code":
        data["entries"][0]["code"] = "0" * 16
    else:
        data["entries"][0]["click"]["source"][1] = 0
    index.write_text(json.dumps(data))
    assert entry.complete("zsh", "flow Bu")[1] is False
    assert entry.complete("zsh", "flow Bu")[1] is True


def test_the_flowfile_named_by_tool_flow_lists_and_completes_from_the_index(project):
    project.write("pipelines/main.py", "import flow\nclass Named(flow.Task):\n    pass\n")
    project.write("pyproject.toml", '[tool.flow]\nflowfile = "pipelines/main.py"\n')
    e = Entry(project.root)
    assert e.same(["--list"])[1] is False
    out, quick = e.same(["--list", "--json"])
    assert quick and b'"name": "Named"' in out
    out, quick = e.complete("bash", "flow Na")
    assert quick and out == b"plain,Named\n\x00"
