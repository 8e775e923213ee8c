"""Shell completion (SPEC §6): click's scripts, flow's candidates, a real bash, the cached index."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from conftest import FLOW, wait_until

REPO = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # the environment whose `flow` script runs this checkout

TASKS = '''
import enum

class Color(enum.Enum):
    red = 1
    green = 2

class Build(flow.Task):
    """Build the thing."""
    n = flow.IntParameter(default=10, description="how many")
    debug = flow.BoolParameter(default=False)
    mode = flow.ChoiceParameter(choices=["fast", "slow"], default="fast")
    color = flow.EnumParameter(enum=Color, default=Color.red)
    path = flow.Parameter(description="where")
    def run(self):
        pass

class BuildDocs(flow.Task):
    def run(self):
        pass

class Deploy(flow.Task):
    target = flow.ChoiceParameter(choices=["staging", "production"])
    def run(self):
        pass

class _Internal(flow.Task):
    pass
'''


def complete(project, line: str, shell: str = "bash", env: dict[str, str] | None = None):
    """Ask flow for completions the way click's script for ``shell`` does; return the values."""
    words = line.split(" ")
    if shell == "fish":
        extra = {"COMP_WORDS": line, "COMP_CWORD": words[-1]}
    else:
        extra = {"COMP_WORDS": line, "COMP_CWORD": str(len(words) - 1)}
    proc = subprocess.run(
        FLOW,
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, **extra, **(env or {}), "_FLOW_COMPLETE": f"{shell}_complete"},
    )
    assert proc.returncode == 0, proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr
    if shell == "zsh":
        lines = proc.stdout.split("\n")
        return [lines[i + 1] for i in range(0, len(lines) - 2, 3)]
    return [ln.split(",", 1)[1].split("\t")[0] for ln in proc.stdout.splitlines() if ln]


# -- the scripts ----------------------------------------------------------------------------------
@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_shipped_scripts_match_what_click_generates_now(tmp_path, shell):
    """completions/flow.SHELL is click's script, byte for byte; flow --completion prints it too."""
    env = {**os.environ, "_FLOW_COMPLETE": f"{shell}_source"}
    generated = subprocess.run(
        FLOW, cwd=tmp_path, capture_output=True, text=True, env=env, check=True
    ).stdout
    shipped = (REPO / "completions" / f"flow.{shell}").read_text()
    assert shipped == generated, f"regenerate: flow --completion {shell} > completions/flow.{shell}"
    printed = subprocess.run(
        [*FLOW, "--completion", shell], cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout
    assert printed == generated


# -- candidates -----------------------------------------------------------------------------------
def test_task_names_are_offered_and_underscored_ones_hidden(project):
    project.flowfile(TASKS)
    assert complete(project, "flow Bu")[:2] == ["Build", "BuildDocs"]
    assert complete(project, "flow De") == ["Deploy"]
    assert "_Internal" not in complete(project, "flow ")
    assert complete(project, "flow dep") == ["Deploy"]  # any case, as the command line accepts


def test_parameters_of_the_typed_task_are_offered_except_those_given(project):
    project.flowfile(TASKS)
    offered = complete(project, "flow Build ")
    assert {"n=", "debug=", "mode=", "color=", "path="} <= set(offered)
    assert "Deploy" in offered  # another task may follow
    after = complete(project, "flow Build n=3 --debug mode=slow ")
    assert {"color=", "path="} <= set(after)
    assert not {"n=", "debug=", "mode="} & set(after)
    assert "target=" in complete(project, "flow Build n=3 Deploy ")  # parameters follow the task


def test_a_single_matching_parameter_offers_its_values_so_no_space_follows(project):
    project.flowfile(TASKS)
    assert complete(project, "flow Build deb") == ["debug=true", "debug=false"]
    assert complete(project, "flow Build n") == ["n=10"]  # free value: its default
    assert complete(project, "flow Build pa") == ["path="]


@pytest.mark.parametrize("shell", ["bash", "zsh", "fish"])
def test_values_of_bool_choice_and_enum_parameters_after_equals(project, shell):
    """bash splits `name=value` at `=` and wants the value alone; zsh and fish keep the word."""
    project.flowfile(TASKS)
    lines = {
        "debug": ("flow Build debug = ", "flow Build debug="),
        "mode": ("flow Build mode = s", "flow Build mode=s"),
        "color": ("flow Build color = ", "flow Build color="),
        "target": ("flow Deploy target = pro", "flow Deploy target=pro"),
    }
    expected = {
        "debug": ["true", "false"],
        "mode": ["slow"],
        "color": ["red", "green"],
        "target": ["production"],
    }
    for name, (bash_line, line) in lines.items():
        if shell == "bash":
            assert complete(project, bash_line, "bash") == expected[name]
        else:
            assert complete(project, line, shell) == [f"{name}={v}" for v in expected[name]]


def test_options_after_a_dash_include_flow_options_and_the_task_parameters(project):
    project.flowfile(TASKS)
    offered = complete(project, "flow Build --")
    assert {"--dry-run", "--jobs", "--list", "--graph", "--completion"} <= set(offered)
    assert {"--n", "--debug", "--mode"} <= set(offered)
    assert "--dask" in offered
    assert "--workers" not in offered and "--local-scheduler" not in offered  # hidden stay hidden
    assert complete(project, "flow Build --mode ") == ["fast", "slow"]
    assert complete(project, "flow -") and all(
        w.startswith("-") for w in complete(project, "flow -")
    )


def test_completion_uses_the_flowfile_named_with_f_and_C(project):
    project.write("sub/other.py", "import flow\nclass Elsewhere(flow.Task):\n    pass\n")
    project.flowfile(TASKS)
    assert complete(project, "flow -f sub/other.py ") == ["Elsewhere"]
    assert complete(project, "flow -C sub -f other.py E") == ["Elsewhere"]


def test_a_broken_flowfile_or_no_flowfile_gives_no_candidates_and_no_traceback(project):
    assert complete(project, "flow ") == []
    project.flowfile("raise RuntimeError('boom')\n")
    assert complete(project, "flow ") == []
    project.flowfile("def oops(:\n")
    assert complete(project, "flow B") == []


# -- a real bash ----------------------------------------------------------------------------------
def bash_complete(project, words: list[str]) -> list[str]:
    """Source the shipped script in bash, set COMP_WORDS as readline would, call the function."""
    script = REPO / "completions" / "flow.bash"
    cmd = (
        f"source {script}\n"
        "complete -p flow >&2\n"
        f"COMP_WORDS=({' '.join(repr(w) for w in words)})\n"
        f"COMP_CWORD={len(words) - 1}\n"
        "COMPREPLY=()\n"
        "_flow_completion flow\n"
        'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    proc = subprocess.run(
        ["bash", "--norc", "--noprofile", "-c", cmd],
        cwd=project.root,
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert "complete -o nosort -F _flow_completion flow" in proc.stderr
    return [ln for ln in proc.stdout.splitlines() if ln]


@pytest.mark.skipif(not (BIN / "flow").exists(), reason="no flow script beside the interpreter")
def test_bash_completion_function_answers_from_flow(project):
    project.flowfile(TASKS)
    assert bash_complete(project, ["flow", "Bu"]) == ["Build", "BuildDocs"]
    assert bash_complete(project, ["flow", "Build", "debug", "=", ""]) == ["true", "false"]
    assert bash_complete(project, ["flow", "Deploy", "target", "=", "st"]) == ["staging"]
    assert "n=" in bash_complete(project, ["flow", "Build", ""])


@pytest.mark.skipif(
    not shutil.which("tmux") or not (BIN / "flow").exists(), reason="needs tmux and a flow script"
)
def test_tab_in_an_interactive_bash_completes_tasks_and_values(project, tmp_path_factory):
    """A real readline: type in bash under tmux, press Tab, read the screen."""
    project.flowfile(TASKS)
    sock = str(tmp_path_factory.mktemp("tmux") / "sock")
    rc = project.write(
        "bashrc",
        f"export PATH={BIN}:$PATH\nPS1='$ '\nsource {REPO / 'completions' / 'flow.bash'}\n",
    )
    tmux = ["tmux", "-S", sock]
    subprocess.run(
        [*tmux, "new-session", "-d", "-x", "200", "-y", "20", "-c", str(project.root)]
        + ["bash", "--rcfile", str(rc), "--noprofile", "-i"],
        check=True,
    )
    try:

        def last_line() -> str:
            screen = subprocess.run([*tmux, "capture-pane", "-p"], capture_output=True, text=True)
            lines = screen.stdout.rstrip().splitlines()
            return lines[-1] if lines else ""

        def line_after_tab(typed: str) -> str:
            """Type, press Tab, type a `#` (readline applies it after the completion)."""
            subprocess.run([*tmux, "send-keys", "C-u", typed, "Tab", "#"], check=True)

            def done() -> bool:
                """The line this typing made: it starts with what was typed (the previous line,
                not yet cleared on a slow machine, does not) and ends with the `#`."""
                line = last_line()
                return line.startswith(f"$ {typed}") and line.endswith("#")

            wait_until(done, f"the completion of {typed!r}", output=last_line)
            return last_line().removesuffix("#")

        # Type only once bash shows its prompt: before that, the terminal itself would eat C-u.
        wait_until(lambda: last_line() == "$", "the bash prompt", output=last_line)
        assert line_after_tab("flow Dep") == "$ flow Deploy "
        assert line_after_tab("flow Deploy target=pr") == "$ flow Deploy target=production "
        assert line_after_tab("flow Build deb") == "$ flow Build debug="
    finally:
        subprocess.run([*tmux, "kill-server"], capture_output=True)


# -- the index in .flow/ --------------------------------------------------------------------------
# A Flowfile that logs each import of itself, and imports a project module.
LOGGED = """
with open("imports.log", "a") as f:
    f.write("imported\\n")
from helper import Base

class Slow(Base):
    level = flow.ChoiceParameter(choices=["low", "high"], default="low")
    def run(self):
        pass
"""


def test_second_completion_answers_from_the_index_without_importing_the_flowfile(project):
    """The second completion answers from the index: the Flowfile is imported once in all.
    (How fast that round trip is, is measured by benchmarks/run.py's start-up table.)"""
    project.write("helper.py", "import flow\nclass Base(flow.Task):\n    pass\n")
    project.flowfile(LOGGED)
    assert complete(project, "flow Sl") == ["Slow"]
    assert complete(project, "flow Slow level=h", "zsh") == ["level=high"]
    assert project.read("imports.log").count("imported") == 1


def test_editing_the_flowfile_or_an_imported_module_rebuilds_the_index(project):
    project.write("helper.py", "import flow\nclass Base(flow.Task):\n    pass\n")
    project.flowfile(LOGGED)
    assert complete(project, "flow ") == ["Base", "Slow", "level="]
    project.write(
        "helper.py",
        "import flow\nclass Base(flow.Task):\n    pass\nclass Extra(flow.Task):\n    pass\n",
    )
    assert "Extra" in complete(project, "flow ")
    assert project.read("imports.log").count("imported") == 2
    project.flowfile(LOGGED.replace("Slow", "Quick"))
    assert "Quick" in complete(project, "flow ")
    assert project.read("imports.log").count("imported") == 3


@pytest.mark.parametrize(
    "damage",
    [
        "not json at all {",
        '{"version": 999}',
        "[1, 2, 3]",
        "CHANGE-KEY",
        "OTHER-FLOW-VERSION",
    ],
)
def test_a_corrupt_stale_or_foreign_index_is_rebuilt_never_trusted(project, damage):
    project.flowfile(TASKS)
    assert "Build" in complete(project, "flow ")
    index = project.root / ".flow" / "completion.json"
    data = json.loads(index.read_text())
    entry = data["entries"][0]  # one index per origin (Flowfile, config start, directory)
    entry["tasks"] = [{"name": "Bogus", "doc": "", "params": []}]
    if damage == "CHANGE-KEY":
        entry["key"] = "0" * 32
        index.write_text(json.dumps(data))
    elif damage == "OTHER-FLOW-VERSION":
        entry["flow"] = "0.0.0-other"
        index.write_text(json.dumps(data))
    else:
        index.write_text(damage)
    offered = complete(project, "flow ")
    assert "Build" in offered and "Bogus" not in offered
    assert json.loads(index.read_text())["entries"][0]["tasks"][0]["name"] == "Build"


def test_completion_from_the_index_imports_neither_the_flowfile_nor_heavy_modules(project):
    project.flowfile(TASKS)
    complete(project, "flow ")  # builds the index
    code = (
        "import json, os, sys\n"
        "os.environ.update(_FLOW_COMPLETE='bash_complete', COMP_WORDS='flow Build ', COMP_CWORD='2')\n"
        "from flow.cli import main\n"
        "try:\n    main()\nexcept SystemExit:\n    pass\n"
        "sys.stderr.write(json.dumps(sorted(sys.modules)))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=project.root, capture_output=True, text=True
    )
    loaded = set(json.loads(proc.stderr))
    assert "n=" in proc.stdout
    heavy = ["fsspec", "watchdog", "dask", "distributed", "concurrent.futures", "asyncio"]
    assert not [m for m in heavy if m in loaded]
    assert not {"Flowfile", "__flowfile__"} & loaded


def test_option_values_complete_files_directories_and_graph_formats(project):
    project.flowfile(TASKS)
    env = {**os.environ, "_FLOW_COMPLETE": "bash_complete"}

    def raw(line: str) -> list[str]:
        words = {"COMP_WORDS": line, "COMP_CWORD": str(len(line.split(" ")) - 1)}
        out = subprocess.run(
            FLOW, cwd=project.root, capture_output=True, text=True, env={**env, **words}
        ).stdout
        return out.splitlines()

    assert raw("flow -f ") == ["file,"]  # bash then completes file names itself
    assert raw("flow -C ") == ["dir,"]
    assert raw("flow --graph m") == ["plain,mermaid"]
