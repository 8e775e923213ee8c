"""Trust in identities and hashes: unambiguous task ids, a deterministic code hash for any
``version``, private parameters kept out of sight, and code hashing that sees every project file."""

from __future__ import annotations

import itertools
import subprocess
import sys
import textwrap

import pytest

# -- task ids are unambiguous ------------------------------------------------------------------

LABELS = """
import hashlib, json

class Label(flow.Task):
    first = flow.Parameter()
    last = flow.Parameter()
    def output(self):
        digest = hashlib.sha1(json.dumps([self.first, self.last]).encode()).hexdigest()[:12]
        return flow.LocalTarget(f"out/{digest}.txt")
    def run(self):
        with self.output().open("w") as f:
            json.dump([self.first, self.last], f)

PAIRS = [
    ("Ann, last=Lee", "x"),
    ("Ann", "Lee, last=x"),
    ("a)", "b"),
    ("a", ")b"),
    ("x=y", ""),
    ("x", "=y"),
    ("line\\nbreak", ""),
    ("", ""),
    (" padded ", "q"),
]

class All(flow.WrapperTask):
    def requires(self):
        return [Label(first=a, last=b) for a, b in PAIRS]
"""


def test_values_that_look_like_separators_give_distinct_ids_and_every_task_builds(project):
    """Premise: `Label(first="Ann, last=Lee", last="x")` and `Label(first="Ann", last="Lee, last=x")`
    once printed the same id, and one of them was never built."""
    project.flowfile(LABELS)
    ran = project.ran("All")
    labels = [t for t in ran if t.startswith("Label(")]
    assert len(labels) == 9, ran
    assert len(set(labels)) == 9
    assert 'Label(first="Ann, last=Lee", last=x)' in labels
    assert 'Label(first=Ann, last="Lee, last=x")' in labels
    assert len(list((project.root / "out").iterdir())) == 9


def _task_ids(source: str, calls: list[str]) -> list[str]:
    """Task ids computed in a fresh interpreter from a snippet of task classes."""
    code = "import flow\n" + textwrap.dedent(source) + "\nfor t in [" + ", ".join(calls) + "]:\n"
    code += "    print(repr(t.task_id))\n"
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    return [eval(line) for line in out.splitlines()]  # noqa: S307 - our own repr() output


TRICKY = ["x", "x)", "(x", "x, b=y", "b=y", "", " x", "x ", "x\ny", 'x"y', "x\\y", "'x'", "x,y"]


def test_ids_are_distinct_for_every_pair_of_tricky_values():
    """Premise: any two parameter tuples that differ give different ids, whatever the values hold."""
    pairs = list(itertools.product(TRICKY, repeat=2))
    calls = [f"T(a={a!r}, b={b!r})" for a, b in pairs]
    ids = _task_ids(
        """
        class T(flow.Task):
            a = flow.Parameter()
            b = flow.Parameter()
        """,
        calls,
    )
    assert len(set(ids)) == len(pairs)
    assert all("\n" not in i for i in ids)


def test_plain_values_stay_unquoted_and_tricky_ones_are_quoted_with_escapes():
    ids = _task_ids(
        """
        class T(flow.Task):
            a = flow.Parameter()
        class SquaredNumbers(flow.Task):
            n = flow.IntParameter(default=10)
        class O(flow.Task):
            a = flow.OptionalParameter(default=None)
        """,
        [
            "SquaredNumbers(n=20)",
            "T(a='data/in.csv')",
            "T(a='a b')",
            "T(a='')",
            "T(a='x\\ny')",
            "T(a='say \"hi\"')",
            "T(a='x)')",
            "T(a=' x')",
            "O()",
        ],
    )
    assert ids == [
        "SquaredNumbers(n=20)",
        "T(a=data/in.csv)",
        "T(a=a b)",
        'T(a="")',
        'T(a="x\\ny")',
        'T(a="say \\"hi\\"")',
        'T(a="x)")',
        'T(a=" x")',
        'O(a="")',
    ]


def test_list_and_dict_values_read_as_json_and_stay_distinct():
    ids = _task_ids(
        """
        class L(flow.Task):
            items = flow.ListParameter()
            tag = flow.Parameter(default="t")
        class D(flow.Task):
            opts = flow.DictParameter()
            tag = flow.Parameter(default="t")
        """,
        [
            "L(items=['a', 'b'])",
            "L(items=['a, tag=b'])",
            "L(items=['a'], tag='b')",
            "L(items=['a'], tag='], tag=[')",
            "D(opts={'k': 'v), tag=(x'})",
            "D(opts={'k': 'v'}, tag='x')",
        ],
    )
    assert ids[0] == 'L(items=["a","b"], tag=t)'
    assert ids[4].startswith('D(opts={"k":"v), tag=(x"}')
    assert len(set(ids)) == len(ids)


# -- a class attribute `version` ---------------------------------------------------------------

VERSIONED = """
class Marker:
    pass

class Out(flow.Task):
    version = {version}
    def output(self):
        return flow.LocalTarget("out/x.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("x")
"""


@pytest.mark.parametrize(
    "version",
    ["flow.IntParameter(default=1)", "Marker()", "object()", "lambda: 1", "[1, Marker()]"],
    ids=["parameter", "object", "plain-object", "function", "list-of-objects"],
)
def test_version_that_is_not_plain_data_hashes_the_same_on_every_run(project, version):
    """Premise: `version = flow.IntParameter(...)` once made the code hash include a memory
    address, so the task was `code-changed` on every run and `--check` never passed."""
    project.flowfile(VERSIONED.format(version=version))
    assert project.run("Out").returncode == 0
    for _ in range(2):
        proc = project.run("--check", "Out")
        assert proc.returncode == 0, proc.stdout + proc.stderr


def test_a_parameter_named_version_counts_as_a_parameter(project):
    project.flowfile(VERSIONED.format(version="flow.IntParameter(default=1)"))
    assert project.run("Out").returncode == 0
    plan = project.plan("Out", "version=2")
    assert [r["kind"] for r in plan["Out(version=2)"]["reasons"]] == ["params-changed"]


def test_a_data_version_bumped_by_hand_is_code_changed(project):
    project.flowfile(VERSIONED.format(version="2"))
    assert project.run("Out").returncode == 0
    assert project.run("--check", "Out").returncode == 0
    project.flowfile(VERSIONED.format(version="3"))
    plan = project.plan("Out")
    assert [r["kind"] for r in plan["Out()"]["reasons"]] == ["code-changed"]


# -- private and hidden parameters ---------------------------------------------------------------

SECRET = "hunter2-s3cr3t"
SECRETS = """
from flow.parameter import ParameterVisibility

class Fetch(flow.Task):
    user = flow.Parameter(default="ann")
    password = flow.Parameter(visibility=ParameterVisibility.PRIVATE)
    token = flow.Parameter(default="tok-default-s3cr3t", visibility=ParameterVisibility.PRIVATE)
    pin = flow.IntParameter(default=1, visibility=ParameterVisibility.PRIVATE)
    def output(self):
        return flow.LocalTarget("out/fetched.txt")
    def run(self):
        flow.sh("echo {pw} {user} > out/echoed.txt", pw=self.password, user=self.user)
        with self.output().open("w") as f:
            f.write(str(len(self.password)))

class Boom(flow.Task):
    password = flow.Parameter(visibility=ParameterVisibility.PRIVATE)
    def output(self):
        return flow.LocalTarget("out/boom.txt")
    def run(self):
        flow.sh("exit 3 # {pw}", pw=self.password)

class Listed(flow.Task):
    shown = flow.Parameter(default="a")
    tucked = flow.Parameter(default="b", visibility=ParameterVisibility.HIDDEN)
    def output(self):
        return flow.LocalTarget(f"out/listed-{self.tucked}.txt")
    def run(self):
        self.output().open("w").close()
"""


def _said(proc: subprocess.CompletedProcess[str]) -> str:
    return proc.stdout + proc.stderr


def _flow_dir_bytes(project) -> dict[str, bytes]:
    root = project.root / ".flow"
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_a_private_value_appears_in_no_output_and_nowhere_under_dot_flow(project):
    """Premise: `password=hunter2` once showed in task lines, summaries, --json, the flow.sh echo
    and the manifest. Every way of running and listing must keep it out."""
    project.flowfile(SECRETS)
    pw = f"password={SECRET}"
    runs = [
        project.run("-n", "Fetch", pw),
        project.run("-n", "--json", "--explain", "Fetch", pw),
        project.run("-v", "Fetch", pw),
        project.run("--json", "--explain", "Fetch", pw),
        project.run("--list"),
        project.run("--list", "Fetch"),
        project.run("--list", "--json"),
        project.run("--graph", "json", "Fetch", pw),
        project.run("Fetch", pw, "pin=not-a-number-s3cr3t"),
        project.run("Boom", pw),
    ]
    assert [p.returncode for p in runs] == [0, 0, 0, 0, 0, 0, 0, 0, 2, 1], [_said(p) for p in runs]
    for proc in runs:
        assert "s3cr3t" not in _said(proc), _said(proc)
    assert "pin" in runs[8].stderr  # the bad value's error names the parameter, not the value
    assert "echo ****" in runs[2].stdout  # the echo is masked ...
    assert SECRET in project.read("out/echoed.txt")  # ... the command got the real value
    assert "Fetch(user=ann)" in runs[2].stdout
    assert "exit 3 # ****" in _said(runs[9])
    env = {"COMP_WORDS": "flow Fetch ", "COMP_CWORD": "2", "_FLOW_COMPLETE": "bash_complete"}
    completion = project.run(env=env)  # writes the task index under .flow/
    assert "user=" in completion.stdout and "s3cr3t" not in completion.stdout
    assert "token" not in completion.stdout and "password" not in completion.stdout
    files = _flow_dir_bytes(project)
    assert len(files) > 1, files.keys()
    for name, data in files.items():
        assert b"s3cr3t" not in data, name
        assert b"tok-default" not in data, name


def test_a_changed_private_value_reruns_the_task_without_saying_the_value(project):
    project.flowfile(SECRETS)
    assert project.run("Fetch", f"password={SECRET}").returncode == 0
    assert project.run("--check", "Fetch", f"password={SECRET}").returncode == 0
    code, doc = project.run_json("-n", "Fetch", "password=other-s3cr3t")
    entry = {p["task"]: p for p in doc["plan"]}["Fetch(user=ann)"]
    assert entry["would_run"] and entry["params"] == {"user": "ann"}
    assert entry["reasons"] == [{"kind": "params-changed", "detail": "password changed (private)"}]
    assert "s3cr3t" not in str(doc)
    assert project.ran("Fetch", "password=other-s3cr3t") == ["Fetch(user=ann)"]
    assert project.ran("Fetch", "password=other-s3cr3t") == []
    assert project.ran("Fetch", "password=other-s3cr3t", "user=bob") == ["Fetch(user=bob)"]


def test_without_a_key_a_dry_run_does_not_claim_a_private_change(project):
    """Premise: a read-only run cannot make the project's key; it must not guess a change."""
    import sqlite3

    project.flowfile(SECRETS)
    assert project.run("Fetch", f"password={SECRET}").returncode == 0
    db = sqlite3.connect(project.root / ".flow" / "manifest.sqlite")
    with db:
        db.execute("DELETE FROM meta WHERE key = 'secret_key'")
    db.close()
    assert project.run("--check", "Fetch", f"password={SECRET}").returncode == 0
    # A real run makes a new key: the old hash no longer matches, so the task runs once.
    assert project.ran("Fetch", f"password={SECRET}") == ["Fetch(user=ann)"]
    assert project.run("--check", "Fetch", f"password={SECRET}").returncode == 0


def test_a_hidden_parameter_is_left_out_of_listings_and_completion_but_still_works(project):
    project.flowfile(SECRETS)
    for args in (["--list"], ["--list", "Listed"], ["--list", "--json"]):
        proc = project.run(*args)
        assert proc.returncode == 0 and "shown" in proc.stdout and "tucked" not in proc.stdout
    env = {"COMP_WORDS": "flow Listed ", "COMP_CWORD": "2", "_FLOW_COMPLETE": "bash_complete"}
    proc = project.run(env=env)
    assert "shown=" in proc.stdout and "tucked" not in proc.stdout
    assert project.ran("Listed", "tucked=c") == ["Listed(shown=a, tucked=c)"]
    assert (project.root / "out/listed-c.txt").exists()


def test_parameter_visibility_is_luigis_enum():
    from flow.parameter import Parameter, ParameterVisibility

    assert [(v.name, int(v)) for v in ParameterVisibility] == [
        ("PUBLIC", 0),
        ("HIDDEN", 1),
        ("PRIVATE", 2),
    ]
    assert Parameter(visibility=2).visibility is ParameterVisibility.PRIVATE
    assert Parameter(visibility=7).visibility is ParameterVisibility.PUBLIC  # as Luigi does


# -- code hashing sees every project file ------------------------------------------------------

OUT = """
import flow

class Out(flow.Task):
    def output(self):
        return flow.LocalTarget("out/x.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write({text!r})
"""


def _reasons(project, *args: str) -> list[str]:
    code, doc = project.run_json("-n", *args)
    assert code == 0, doc
    return [r["kind"] for p in doc["plan"] for r in p["reasons"]]


def test_a_symlinked_flowfile_from_outside_the_directory_is_project_code(project, tmp_path):
    """Premise: the project-root check resolved the symlink, found the file outside, and so never
    hashed the Flowfile's own classes."""
    elsewhere = tmp_path.parent / (tmp_path.name + "-shared")
    elsewhere.mkdir()
    real = elsewhere / "pipeline.py"
    real.write_text(OUT.format(text="one"))
    (project.root / "Flowfile.py").symlink_to(real)
    assert project.run("Out").returncode == 0
    assert _reasons(project, "Out") == []
    real.write_text(OUT.format(text="two"))
    assert _reasons(project, "Out") == ["code-changed"]


def test_a_module_imported_with_module_from_outside_the_directory_is_project_code(
    project, tmp_path
):
    """Premise: `flow --module NAME` run from another directory hashed nothing of NAME."""
    lib = tmp_path / "lib"
    work = tmp_path / "work"
    lib.mkdir()
    work.mkdir()
    (lib / "pipeline_mod.py").write_text(OUT.format(text="one"))
    env = {"PYTHONPATH": str(lib)}
    args = ("--module", "pipeline_mod", "Out")
    assert project.run(*args, cwd=work, env=env).returncode == 0
    assert project.run("--check", *args, cwd=work, env=env).returncode == 0
    (lib / "pipeline_mod.py").write_text(OUT.format(text="two"))
    proc = project.run("-n", *args, cwd=work, env=env)
    assert "code-changed" in proc.stdout, proc.stdout + proc.stderr


def test_a_flowfile_named_with_f_from_another_directory_is_project_code(project, tmp_path):
    other = tmp_path / "other"
    other.mkdir()
    (other / "pipe.py").write_text(OUT.format(text="one"))
    assert project.run("-f", "other/pipe.py", "Out").returncode == 0
    assert _reasons(project, "-f", "other/pipe.py", "Out") == []
    (other / "pipe.py").write_text(OUT.format(text="two"))
    assert _reasons(project, "-f", "other/pipe.py", "Out") == ["code-changed"]


TWICE = """
FAST = True

if FAST:
    class Out(flow.Task):
        def output(self):
            return flow.LocalTarget("out/x.txt")
        def run(self):
            with self.output().open("w") as f:
                f.write({live!r})
else:
    class Out(flow.Task):
        def output(self):
            return flow.LocalTarget("out/x.txt")
        def run(self):
            with self.output().open("w") as f:
                f.write({dead!r})
"""


def test_a_class_defined_twice_is_hashed_from_the_definition_that_is_live(project):
    """Premise: the hash read the last `class Out` in the file, not the one Python executed."""
    project.flowfile(TWICE.format(live="fast", dead="slow"))
    assert project.run("Out").returncode == 0
    project.flowfile(TWICE.format(live="fast", dead="slower"))  # the dead branch: no change
    assert _reasons(project, "Out") == []
    project.flowfile(TWICE.format(live="faster", dead="slower"))
    assert _reasons(project, "Out") == ["code-changed"]


REDEFINED = """
class Out(flow.Task):
    def output(self):
        return flow.LocalTarget("out/x.txt")
    @staticmethod
    def text():
        return {dead!r}
    def run(self):
        with self.output().open("w") as f:
            f.write(self.text())

class Out(flow.Task):  # replaces the one above
    def output(self):
        return flow.LocalTarget("out/x.txt")
    @staticmethod
    def text():
        return {live!r}
    def run(self):
        with self.output().open("w") as f:
            f.write(self.text())

default = Out  # both classes are registered, so the name alone is ambiguous
"""


def test_a_class_redefined_further_down_is_hashed_from_the_later_definition(project):
    project.flowfile(REDEFINED.format(dead="a", live="b"))
    assert project.run().returncode == 0
    assert project.read("out/x.txt") == "b"
    project.flowfile(REDEFINED.format(dead="aa", live="b"))
    assert _reasons(project) == []
    project.flowfile(REDEFINED.format(dead="aa", live="bb"))
    assert _reasons(project) == ["code-changed"]
