"""The Makefile replacement: flow.sh, flow.Files, the C example, --list and --graph."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import pytest

import flow
from flow.shell import PlaceholderError, format_command
from flow.task import PARALLEL, RUNNING

REPO = Path(__file__).resolve().parent.parent


def run_json(project, *args: str) -> tuple[int, dict]:
    """`flow --json`: the document alone is on stdout (what commands print goes to stderr)."""
    proc = project.run("--json", *args)
    return proc.returncode, json.loads(proc.stdout)


def ran(project, *args: str) -> list[str]:
    code, doc = run_json(project, *args)
    assert code == 0, doc
    return [t["task"] for t in doc["tasks"] if t["status"] == "ran"]


# -- flow.sh ------------------------------------------------------------------------------------
SH = """
class Shout(flow.Task):
    def output(self):
        return flow.LocalTarget("out/shout.txt")
    def run(self):
        flow.sh("echo streamed-output; printf 'hi' > {output}")

class Broken(flow.Task):
    def output(self):
        return flow.LocalTarget("out/never.txt")
    def run(self):
        flow.sh("echo partial > {output}; exit 3")
"""


def test_sh_echoes_the_command_and_streams_its_output(project):
    project.flowfile(SH)
    proc = project.run("Shout")
    assert proc.returncode == 0, proc.stderr
    assert "echo streamed-output; printf 'hi' > out/shout.txt" in proc.stdout
    assert "streamed-output" in proc.stdout.split("printf")[1]
    assert project.read("out/shout.txt") == "hi"


def test_sh_failure_fails_the_task_naming_the_command_and_status(project):
    """A non-zero exit fails the task (exit 1) with the command and status; no output is left."""
    project.flowfile(SH)
    code, doc = run_json(project, "Broken")
    assert code == 1
    [task] = doc["tasks"]
    assert task["status"] == "failed"
    assert "exit status 3" in task["error"] and "exit 3" in task["error"]
    assert not (project.root / "out" / "never.txt").exists()


QUOTED = """
class Copy(flow.Task):
    def requires(self):
        return {"text": flow.Files("my data/*.txt")}
    def output(self):
        return {"copy": flow.LocalTarget("out dir/it's a copy.txt"), "n": flow.LocalTarget("out dir/n.txt")}
    def run(self):
        self.output()["copy"].makedirs()
        flow.sh("cat {input[text]} > {output[copy]}")
        flow.sh("ls {input[text][0]} {dollar} | wc -l > {output[n]}", dollar="$HOME not expanded")

class Braces(flow.Task):
    def output(self):
        return flow.LocalTarget("out/braces.txt")
    def run(self):
        flow.sh("echo 'a b' | awk '{{print $2}}' > {out}", out=self.output().path)

class Unknown(flow.Task):
    def run(self):
        flow.sh("cp {inptu} {output}")
"""


def test_sh_runs_a_plain_command_without_a_shell_as_make_does(project):
    """A command with nothing for the shell to do is exec'd directly (its parent is flow, not
    sh); one with shell syntax or a builtin still goes through /bin/sh."""
    project.write("parent", '#!/bin/sh\ncat /proc/$PPID/comm > "$1"\n')
    (project.root / "parent").chmod(0o755)
    project.flowfile("""
        class Direct(flow.Task):
            def output(self):
                return flow.LocalTarget("out/direct.txt")
            def run(self):
                flow.sh("./parent out/direct.txt")
        class Shelled(flow.Task):
            def output(self):
                return flow.LocalTarget("out/shelled.txt")
            def run(self):
                flow.sh("./parent out/shelled.txt && true")
        class Both(flow.WrapperTask):
            def requires(self):
                return [Direct(), Shelled()]
        """)
    proc = project.run("Both")
    assert proc.returncode == 0, proc.stderr
    assert project.read("out/direct.txt").strip() != "sh"
    assert project.read("out/shelled.txt").strip() == "sh"


def test_sh_runs_a_quoted_command_directly_and_gives_the_shell_what_needs_one(project):
    """Quoted arguments do not need a shell: each quoted string arrives as one argument and the
    parent is flow's process. `$VAR`, an assignment prefix or unbalanced quotes go to /bin/sh."""
    project.write(
        "args", '#!/bin/sh\nout="$1"; shift\nprintf "%s|" "$(cat /proc/$PPID/comm)" "$@" > "$out"\n'
    )
    (project.root / "args").chmod(0o755)
    project.flowfile("""
        class Quoted(flow.Task):
            def output(self):
                return flow.LocalTarget("out/quoted.txt")
            def run(self):
                flow.sh(\'\'\'./args out/quoted.txt 'two words' "x  y" '' plain --opt=1\'\'\')
        class Variable(flow.Task):
            def output(self):
                return flow.LocalTarget("out/variable.txt")
            def run(self):
                flow.sh("./args out/variable.txt 'a b' $GREETING", env={"GREETING": "hi"})
        class Assigned(flow.Task):
            def output(self):
                return flow.LocalTarget("out/assigned.txt")
            def run(self):
                flow.sh("GREETING=yo ./args out/assigned.txt")
        class Unbalanced(flow.Task):
            def output(self):
                return flow.LocalTarget("out/unbalanced.txt")
            def run(self):
                flow.sh("./args out/unbalanced.txt 'oops")
        class All(flow.WrapperTask):
            def requires(self):
                return [Quoted(), Variable(), Assigned()]
        """)
    proc = project.run("All")
    assert proc.returncode == 0, proc.stderr
    parent, *args = project.read("out/quoted.txt").split("|")[:-1]
    assert parent != "sh" and args == ["two words", "x  y", "", "plain", "--opt=1"]
    parent, *args = project.read("out/variable.txt").split("|")[:-1]
    assert parent == "sh" and args == ["a b", "hi"]
    assert project.read("out/assigned.txt").split("|")[0] == "sh"
    proc = project.run("Unbalanced")
    assert proc.returncode == 1
    assert "command failed (exit status 2): ./args out/unbalanced.txt 'oops" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_sh_with_a_missing_program_fails_like_the_shell_would(project):
    """A plain command whose program does not exist: status 127, a "not found" line, and the
    task fails naming the command."""
    project.flowfile("""
        class Missing(flow.Task):
            def output(self):
                return flow.LocalTarget("out/m.txt")
            def run(self):
                flow.sh("no-such-program-xyz --flag")
        """)
    proc = project.run("Missing")
    assert proc.returncode == 1
    assert "no-such-program-xyz: command not found" in proc.stderr
    assert "exit status 127" in proc.stderr and "no-such-program-xyz --flag" in proc.stderr


def test_sh_input_and_output_placeholders_are_shell_quoted_paths(project):
    """Paths with spaces and quotes survive {input[...]}, {output[...]} and keyword values."""
    project.flowfile(QUOTED)
    project.write("my data/one.txt", "1\n")
    project.write("my data/two two.txt", "2\n")
    proc = project.run("Copy")
    assert proc.returncode == 0, proc.stderr
    assert project.read("out dir/it's a copy.txt") == "1\n2\n"
    # "ls <one file> '<literal $HOME ...>'" fails for the second word only: one line, no $HOME.
    assert project.read("out dir/n.txt").strip() == "1"
    assert "'$HOME not expanded'" in proc.stdout


def test_sh_double_braces_are_literal(project):
    project.flowfile(QUOTED)
    assert project.run("Braces").returncode == 0
    assert project.read("out/braces.txt") == "b\n"


def test_sh_unknown_placeholder_fails_the_task_naming_it(project):
    project.flowfile(QUOTED)
    code, doc = run_json(project, "Unknown")
    assert code == 1
    [task] = doc["tasks"]
    assert "unknown placeholder {inptu}" in task["error"]
    assert "{{" in task["error"]  # says how to write a literal brace


def test_sh_placeholders_outside_a_task_are_a_clear_error():
    with pytest.raises(PlaceholderError, match=r"\{input\}.*only known inside a task"):
        flow.sh("cat {input}")
    with pytest.raises(PlaceholderError, match="literal braces"):
        format_command("awk '{print $1}'", {})
    assert (
        format_command("cp {src} {dst}", {"src": "a b", "dst": ["c", "d e"]}) == "cp 'a b' c 'd e'"
    )


def test_sh_prefixes_the_echo_with_the_task_id_when_tasks_run_at_once(tmp_path, capfd):
    class Echo(flow.Task):
        def output(self):
            return flow.LocalTarget(str(tmp_path / "x y.txt"))

    task = Echo()
    token, par = RUNNING.set(task), PARALLEL.set(True)
    try:
        flow.sh("echo {output}")
    finally:
        RUNNING.reset(token)
        PARALLEL.reset(par)
    out = capfd.readouterr().out.splitlines()
    assert out[0] == f"[Echo()] echo '{tmp_path}/x y.txt'"
    assert out[1] == f"{tmp_path}/x y.txt"
    flow.sh("echo plain")
    assert capfd.readouterr().out.splitlines()[0] == "echo plain"


# -- flow.Files ---------------------------------------------------------------------------------
TREE = """
class Count(flow.Task):
    def requires(self):
        return flow.Files("src/**/*.txt")
    def output(self):
        return flow.LocalTarget("out/count.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("\\n".join(t.path for t in self.input()))
"""


def test_files_recursive_glob_matches_nested_files(project):
    project.flowfile(TREE)
    project.write("src/top.txt", "t")
    project.write("src/a/b/deep.txt", "d")
    project.write("src/a/skip.md", "no")
    assert project.ran("Count") == ["Count()"]
    assert project.read("out/count.txt").split("\n") == ["src/a/b/deep.txt", "src/top.txt"]


@pytest.mark.parametrize("change", ["added", "removed", "edited"])
def test_files_fingerprint_changes_when_a_matching_file_is_added_removed_or_edited(project, change):
    project.flowfile(TREE)
    project.write("src/top.txt", "t")
    project.write("src/a/b/deep.txt", "d")
    project.ran("Count")
    assert not project.plan("Count")["Count()"]["would_run"]
    if change == "added":
        project.write("src/a/new.txt", "n")
    elif change == "removed":
        (project.root / "src/a/b/deep.txt").unlink()
    else:
        project.write("src/a/b/deep.txt", "edited")
    entry = project.plan("Count")["Count()"]
    assert entry["would_run"]
    assert entry["reasons"][0]["kind"] == "input-changed"
    project.write("src/a/skip.md", "a non-matching file changes nothing")
    assert project.ran("Count") == ["Count()"]
    assert project.ran("Count") == []


PER_FILE = """
import glob, os

class Compile(flow.Task):
    src = flow.Parameter()
    def requires(self):
        return flow.Files(self.src)
    def output(self):
        return flow.LocalTarget("out/" + os.path.basename(self.src) + ".o")
    def run(self):
        with self.input()[0].open() as fin, self.output().open("w") as fout:
            fout.write(fin.read())

class Link(flow.Task):
    def requires(self):
        return [Compile(src=p) for p in sorted(glob.glob("src/*.c"))]
    def output(self):
        return flow.LocalTarget("out/prog")
    def run(self):
        with self.output().open("w") as f:
            f.write(str(len(self.input())))
"""


def test_per_file_tasks_from_a_comprehension_rerun_only_the_edited_file_and_the_link(project):
    """500 Compile tasks (one per file): a no-op, then an edit reruns one plus Link. (How quick
    that no-op is, is benchmarks/run.py's W3 no-op row.)"""
    project.flowfile(PER_FILE)
    for i in range(500):
        project.write(f"src/f{i}.c", f"int f{i};\n")
    code, doc = project.run_json("Link")
    assert code == 0 and doc["summary"]["ran"] == 501
    assert project.ran("Link") == []
    project.write("src/f7.c", "int f7 = 7;\n")
    assert project.ran("Link") == ["Compile(src=src/f7.c)", "Link()"]


# -- the C example in Flowfile.example ------------------------------------------------------------
@pytest.mark.skipif(not shutil.which("gcc"), reason="needs gcc")
def test_example_c_project_rebuilds_incrementally_like_make(project):
    shutil.copy(REPO / "Flowfile.example", project.root / "Flowfile.py")
    shutil.copytree(REPO / "example", project.root / "example")
    first = ran(project, "Test")
    assert sorted(first) == sorted(
        [
            "Compile(src=example/c/answer.c)",
            "Compile(src=example/c/greet.c)",
            "Compile(src=example/c/main.c)",
            "Link()",
            "Test()",
        ]
    )
    assert (project.root / "out/c/hello").exists()
    assert ran(project, "Test") == ["Test()"]  # phony: only the test runs again
    assert ran(project, "Link") == []
    with open(project.root / "example/c/answer.c", "a") as f:
        f.write("int unused(void) { return 1; }\n")
    assert ran(project, "Link") == ["Compile(src=example/c/answer.c)", "Link()"]
    project.write("example/c/greet.h", project.read("example/c/greet.h") + "/* touched */\n")
    code, doc = run_json(project, "-n", "Link")
    assert {p["task"] for p in doc["plan"] if p["would_run"]} >= {
        "Compile(src=example/c/answer.c)",
        "Compile(src=example/c/greet.c)",
        "Compile(src=example/c/main.c)",
    }
    project.write("example/c/main.c", project.read("example/c/main.c").replace("%s", "<%s>"))
    code, doc = run_json(project, "Test")
    assert code == 1  # the test notices the changed output
    assert [t["task"] for t in doc["tasks"] if t["status"] == "failed"] == ["Test()"]
    assert ran(project, "Clean") == ["Clean()"]
    assert not (project.root / "out").exists()


def test_example_flowfile_default_task_still_works(project):
    shutil.copy(REPO / "Flowfile.example", project.root / "Flowfile.example")
    proc = project.run("-f", "Flowfile.example", "SquaredNumbers", "n=20")
    assert proc.returncode == 0, proc.stderr
    assert project.ran("-f", "Flowfile.example", "SquaredNumbers", "n=20") == []
    assert project.ran("-f", "Flowfile.example") == ["PrintNumbers(n=10)", "SquaredNumbers(n=10)"]


# -- --list -------------------------------------------------------------------------------------
LISTED = '''
import enum

class Level(enum.Enum):
    low = 1
    high = 2

class Fetch(flow.Task):
    """Download the data.

    Fetches every file listed in the manifest; safe to rerun.
    """
    url = flow.Parameter(description="where the data lives")
    retries = flow.IntParameter(default=3, description="attempts per file")
    def run(self):
        pass

class Report(flow.Task):
    """Write the report."""
    fast = flow.BoolParameter(default=False)
    level = flow.EnumParameter(enum=Level, default=Level.low)
    fmt = flow.ChoiceParameter(choices=["html", "pdf"], default="html")
    def run(self):
        pass

class _Private(flow.Task):
    """Hidden."""

default = Report
'''


def test_list_aligns_tasks_typed_parameters_and_first_doc_lines(project):
    project.flowfile(LISTED)
    proc = project.run("--list")
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert [ln.split()[0] for ln in lines] == ["Fetch", "Report"]
    fetch, report = lines
    assert "url:str" in fetch and "retries:int=3" in fetch
    assert (
        "fast:bool=false" in report and "level:enum=low" in report and "fmt:choice=html" in report
    )
    assert fetch.index("#") == report.index("#")  # the doc column is aligned
    assert fetch.endswith("# Download the data.") and report.endswith("# Write the report.")
    assert "_Private" not in proc.stdout and "safe to rerun" not in proc.stdout


def test_list_task_shows_its_full_docstring_and_parameter_descriptions(project):
    project.flowfile(LISTED)
    proc = project.run("--list", "fetch")
    assert proc.returncode == 0, proc.stderr
    assert "Fetches every file listed in the manifest; safe to rerun." in proc.stdout
    url = next(ln for ln in proc.stdout.splitlines() if ln.strip().startswith("url "))
    assert "required" in url and "where the data lives" in url
    retries = next(ln for ln in proc.stdout.splitlines() if ln.strip().startswith("retries "))
    assert "default: 3" in retries and "attempts per file" in retries
    assert "Report" not in proc.stdout
    assert project.run("--list", "Nope").returncode == 2


def test_list_json_gives_types_defaults_choices_and_the_default_task(project):
    project.flowfile(LISTED)
    code, doc = project.run_json("--list")
    assert code == 0
    tasks = {t["name"]: t for t in doc["tasks"]}
    assert set(tasks) == {"Fetch", "Report"}
    assert tasks["Report"]["default_task"] and not tasks["Fetch"]["default_task"]
    params = {p["name"]: p for p in tasks["Report"]["params"]}
    assert params["level"]["choices"] == ["low", "high"] and params["level"]["type"] == "enum"
    assert params["fmt"]["choices"] == ["html", "pdf"] and params["fmt"]["default"] == "html"
    url = tasks["Fetch"]["params"][0]
    assert (
        url["required"] and url["default"] is None and url["description"] == "where the data lives"
    )


# -- --graph ------------------------------------------------------------------------------------
GRAPH = """
class Raw(flow.ExternalTask):
    def output(self):
        return flow.LocalTarget("raw.csv")

class Quoted(flow.Task):
    label = flow.Parameter(default='say "hi" \\\\ there')
    def requires(self):
        return Raw()
    def output(self):
        return flow.LocalTarget("out/quoted.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("q")

class Top(flow.Task):
    def requires(self):
        return Quoted()
    def output(self):
        return flow.LocalTarget("out/top.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("t")
"""

_DOT_ID = r'"(?:[^"\\]|\\.)*"'
_DOT_NODE = re.compile(rf"^  ({_DOT_ID}) \[label=({_DOT_ID}), color=(\w+)\];$")
_DOT_EDGE = re.compile(rf"^  ({_DOT_ID}) -> ({_DOT_ID});$")


def parse_dot(text: str) -> tuple[dict[str, str], list[tuple[str, str]]]:
    """A strict reader for the DOT flow writes: node id -> label, and edges; fails on anything else."""
    lines = text.splitlines()
    assert lines[0] == "digraph flow {" and lines[-1] == "}"
    nodes: dict[str, str] = {}
    edges = []
    for line in lines[1:-1]:
        if line.strip() in ("rankdir=LR;", "node [shape=box];"):
            continue
        if m := _DOT_NODE.match(line):
            nodes[_unquote(m.group(1))] = _unquote(m.group(2))
        elif m := _DOT_EDGE.match(line):
            edges.append((_unquote(m.group(1)), _unquote(m.group(2))))
        else:
            raise AssertionError(f"not valid DOT: {line!r}")
    assert all(a in nodes and b in nodes for a, b in edges)
    return nodes, edges


def _unquote(quoted: str) -> str:
    return re.sub(r"\\(.)", r"\1", quoted[1:-1])


def test_graph_dot_quotes_ids_and_labels_each_node_with_its_status(project):
    project.flowfile(GRAPH)
    proc = project.run("--graph", "dot", "Top")
    assert proc.returncode == 0, proc.stderr
    nodes, edges = parse_dot(proc.stdout)
    quoted = 'Quoted(label="say \\"hi\\" \\\\ there")'  # the id JSON-quotes such a value
    assert set(nodes) == {"Raw()", quoted, "Top()"}
    assert set(edges) == {("Raw()", quoted), (quoted, "Top()")}
    assert nodes["Raw()"].endswith("missing external")  # the label is "id\\nstatus"
    assert nodes["Top()"].endswith("stale: missing-output")
    project.write("raw.csv", "x\n")
    project.ran("Top")
    nodes, _ = parse_dot(project.run("--graph", "Top").stdout)
    assert nodes["Raw()"].endswith("external") and "missing" not in nodes["Raw()"]
    assert nodes["Top()"].endswith("up to date") and nodes[quoted].endswith("up to date")
    project.write("raw.csv", "changed\n")
    nodes, _ = parse_dot(project.run("--graph", "Top").stdout)
    assert nodes[quoted].endswith("stale: input-changed")
    assert nodes["Top()"].endswith("stale: upstream")


def test_graph_json_gives_status_and_reason_per_node(project):
    project.flowfile(GRAPH)
    project.write("raw.csv", "x\n")
    nodes = {
        n["task"]: n for n in json.loads(project.run("--graph", "json", "Top").stdout)["nodes"]
    }
    top = nodes["Top()"]
    assert top["status"] == "stale: missing-output"
    assert top["reason"] == {"kind": "missing-output", "detail": "out/top.txt"}
    assert nodes["Raw()"]["status"] == "external" and nodes["Raw()"]["reason"] is None


def test_graph_mermaid_escapes_quotes_in_labels(project):
    project.flowfile(GRAPH)
    out = project.run("--graph", "mermaid", "Top").stdout
    assert out.startswith("graph TD")
    labels = re.findall(r'\["(.*)"\]', out)
    assert len(labels) == 3 and not any('"' in label for label in labels)
    assert out.count("-->") == 2


def test_files_of_a_literal_path_match_what_glob_matches(tmp_path, monkeypatch):
    """`Files("src/a.c")` takes a path without glob characters as it is (one stat, no glob):
    what it matches must be exactly what the glob would: a file or a dangling symlink, never a
    directory or a missing path."""
    import glob
    import os

    from flow.shell import Files, _NoMatch

    monkeypatch.chdir(tmp_path)
    (tmp_path / "src" / "dir").mkdir(parents=True)
    (tmp_path / "src" / "a.c").write_text("a")
    (tmp_path / "src" / ".hidden").write_text("h")
    os.symlink("nowhere", tmp_path / "src" / "dangling")
    os.symlink("a.c", tmp_path / "src" / "link.c")
    os.symlink("dir", tmp_path / "src" / "dirlink")
    cases = [
        "src/a.c",
        "src/.hidden",
        "src/dangling",
        "src/link.c",
        "src/dir",
        "src/dirlink",
        "src/dir/",
        "src/missing.c",
        "src/a.c/",
        "./src/a.c",
        "src//a.c",
        "",
    ]
    for pattern in cases:
        expected = sorted(p for p in glob.glob(pattern, recursive=True) if not os.path.isdir(p))
        outs = Files(pattern).output()
        if not expected:
            assert len(outs) == 1 and isinstance(outs[0], _NoMatch), pattern
        else:
            assert [o.path for o in outs] == expected, pattern
