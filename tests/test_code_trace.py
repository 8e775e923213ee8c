"""`code-changed` follows the code a task runs: the project functions, classes and constants its
methods reference, transitively, and names what changed."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

TRANSFORM = """
FACTOR = 2

def transform(x):
    return x * FACTOR

def unused(x):
    return x + 1

class T(flow.Task):
    def output(self):
        return flow.LocalTarget("out.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write(str(transform(21)))
"""


def code_details(project, task_id: str = "T()", *args: str) -> list[str]:
    """The `code-changed` details `flow -n --json` gives for task_id ([] when none)."""
    entry = project.plan(*args)[task_id]
    return [r["detail"] for r in entry["reasons"] if r["kind"] == "code-changed"]


def built(project, text: str, task: str = "T") -> None:
    project.flowfile(text)
    proc = project.run(task)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert project.plan(task)[f"{task}()"]["reasons"] == []


def test_edited_helper_function_is_code_changed_and_named(project):
    """run() calls transform(), a module-level function: editing transform() reruns T."""
    built(project, TRANSFORM)
    project.flowfile(TRANSFORM.replace("x * FACTOR", "x * FACTOR + 1"))
    assert code_details(project) == ["transform() in Flowfile.py"]
    proc = project.run("-n", "T")
    assert "T()  code-changed: transform() in Flowfile.py" in proc.stdout, proc.stdout
    assert project.ran("T") == ["T()"]
    assert project.read("out.txt") == "43"


def test_edited_module_constant_is_code_changed_and_named(project):
    """transform() reads FACTOR: FACTOR = 2 -> 3 is `code-changed: FACTOR in Flowfile.py`."""
    built(project, TRANSFORM)
    project.flowfile(TRANSFORM.replace("FACTOR = 2", "FACTOR = 3"))
    assert code_details(project) == ["FACTOR in Flowfile.py"]
    assert project.ran("T") == ["T()"]
    assert project.read("out.txt") == "63"


HELPERS = """
SCALE = 3

def scale(x):
    return x * SCALE
"""


@pytest.mark.parametrize(
    "imports, call",
    [("import helpers", "helpers.scale(21)"), ("from helpers import scale", "scale(21)")],
    ids=["module-attribute", "from-import"],
)
def test_edited_function_in_an_imported_project_module_is_code_changed(project, imports, call):
    """run() calls scale() from helpers.py, as helpers.scale or imported by name."""
    project.write("helpers.py", HELPERS)
    text = TRANSFORM.replace("transform(21)", call).replace("FACTOR = 2", imports)
    built(project, text)
    project.write("helpers.py", HELPERS.replace("x * SCALE", "x * SCALE * 2"))
    assert code_details(project) == ["scale() in helpers.py"]
    assert project.ran("T") == ["T()"]
    assert project.read("out.txt") == "126"
    project.write("helpers.py", HELPERS.replace("SCALE = 3", "SCALE = 1").replace("SCALE *", "*"))
    assert code_details(project) == ["scale() in helpers.py; SCALE in helpers.py"]


INSIDE = """
class T(flow.Task):
    def output(self):
        return flow.LocalTarget("out.txt")
    def run(self):
        IMPORT
        with self.output().open("w") as f:
            f.write(str(CALL))
"""


@pytest.mark.parametrize(
    "imports, call",
    [
        ("from helpers import scale", "scale(21)"),
        ("import helpers as h", "h.scale(21)"),
        ("from pkg.helpers import scale", "scale(21)"),
        ("from pkg import helpers", "helpers.scale(21)"),
    ],
    ids=["from-import", "import-as", "from-package-module", "from-package-import-module"],
)
def test_a_module_imported_inside_run_counts_as_code_of_the_task(project, imports, call):
    """run() imports its helper itself (common in ported Luigi code), so nothing imports it
    while flow plans: the module's whole file counts, an edit reruns T, a comment does not."""
    where = "pkg/helpers.py" if "pkg" in imports else "helpers.py"
    project.write("pkg/__init__.py", "")
    project.write(where, HELPERS)
    built(project, INSIDE.replace("IMPORT", imports).replace("CALL", call))
    project.write(where, "# a comment\n" + HELPERS)
    assert code_details(project) == []
    project.write(where, HELPERS.replace("x * SCALE", "x * SCALE * 2"))
    assert code_details(project) == [f"(imported inside a function) in {where}"]
    assert project.ran("T") == ["T()"]
    assert project.read("out.txt") == "126"
    assert code_details(project) == []


def test_a_name_imported_inside_run_from_an_imported_module_is_followed_by_name(project):
    """The module is imported already (the Flowfile imports it too): only the names run()
    takes from it count, so an edit to another function there does not."""
    project.write("helpers.py", HELPERS + "\ndef other(x):\n    return x\n")
    text = "import helpers\n" + INSIDE.replace("IMPORT", "from helpers import scale")
    built(project, text.replace("CALL", "scale(21)"))
    project.write("helpers.py", HELPERS + "\ndef other(x):\n    return x + 1\n")
    assert code_details(project) == []
    project.write("helpers.py", HELPERS.replace("x * SCALE", "x * SCALE * 2"))
    assert code_details(project) == ["scale() in helpers.py"]


def test_transitive_reference_through_another_module_is_followed(project):
    """run() calls a(), which calls b() in lib/mid.py, which calls c() in lib/deep.py (lib is a
    namespace package: no __init__.py)."""
    project.write("lib/deep.py", "def c(x):\n    return x + 1\n")
    project.write("lib/mid.py", "from lib import deep\n\ndef b(x):\n    return deep.c(x) * 2\n")
    text = TRANSFORM.replace("FACTOR = 2", "import lib.mid\n\ndef a(x):\n    return lib.mid.b(x)")
    built(project, text.replace("transform(21)", "a(20)"))
    assert project.read("out.txt") == "42"
    project.write("lib/deep.py", "def c(x):\n    return x + 2\n")
    assert code_details(project) == ["c() in lib/deep.py"]
    assert project.ran("T") == ["T()"]
    assert project.read("out.txt") == "44"


CLOSURE = """
def make_scaler(k):
    def scaler(x):
        return x * k
    return scaler

SCALER = make_scaler(2)

class T(flow.Task):
    def output(self):
        return flow.LocalTarget("out.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write(str(SCALER(21)))
"""


def test_closure_value_and_closure_code_count(project):
    """SCALER is a closure made by make_scaler(2): a new k, or a new body, is `code-changed`."""
    built(project, CLOSURE)
    project.flowfile(CLOSURE.replace("make_scaler(2)", "make_scaler(3)"))
    assert code_details(project) == ["make_scaler.<locals>.scaler() in Flowfile.py"]
    assert project.ran("T") == ["T()"]
    project.flowfile(CLOSURE.replace("make_scaler(2)", "make_scaler(3)").replace("x * k", "k * x"))
    assert code_details(project) == ["make_scaler.<locals>.scaler() in Flowfile.py"]


def test_function_captured_by_a_closure_is_followed(project):
    """run() defines a local function that calls helper(): editing helper() counts."""
    text = """
def helper(x):
    return x + 1

class T(flow.Task):
    def output(self):
        return flow.LocalTarget("out.txt")
    def run(self):
        def go():
            return helper(41)
        with self.output().open("w") as f:
            f.write(str(go()))
"""
    built(project, text)
    project.flowfile(text.replace("x + 1", "x + 2"))
    assert code_details(project) == ["helper() in Flowfile.py"]


DEFAULTS = """
FACTOR = 2

def double(x):
    return x * 2

def transform(x, k=FACTOR, fn=double):
    return fn(x) * k

class T(flow.Task):
    def output(self):
        return flow.LocalTarget("out.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write(str(transform(1)))
"""


def test_default_arguments_count(project):
    """transform(x, k=FACTOR, fn=double): editing FACTOR or double() is `code-changed`."""
    built(project, DEFAULTS)
    project.flowfile(DEFAULTS.replace("FACTOR = 2", "FACTOR = 5"))
    assert "FACTOR in Flowfile.py" in code_details(project)[0]
    project.flowfile(DEFAULTS.replace("x * 2", "x * 3"))
    assert code_details(project) == ["double() in Flowfile.py"]


DECORATED = """
import functools

def twice(fn):
    @functools.wraps(fn)
    def wrapper(x):
        return fn(x) * 2
    return wrapper

def thrice(fn):
    def wrapper(x):
        return fn(x) * 3
    return wrapper

@twice
def transform(x):
    return x + 1

@thrice
def other(x):
    return x + 1

class T(flow.Task):
    def output(self):
        return flow.LocalTarget("out.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write(str(transform(1) + other(1)))
"""


@pytest.mark.parametrize(
    "old, new, changed",
    [
        ("fn(x) * 2", "fn(x) * 4", "twice.<locals>.wrapper() in Flowfile.py"),
        ("fn(x) * 3", "fn(x) * 5", "thrice.<locals>.wrapper() in Flowfile.py"),
        (
            "def transform(x):\n    return x + 1",
            "def transform(x):\n    return x + 2",
            "transform()",
        ),
        ("def other(x):\n    return x + 1", "def other(x):\n    return x + 2", "other()"),
    ],
    ids=["wraps-decorator", "plain-decorator", "wrapped-function", "function-in-closure"],
)
def test_decorators_and_decorated_functions_count(project, old, new, changed):
    """A project decorator, with and without functools.wraps: the wrapper and the function count."""
    built(project, DECORATED)
    assert project.read("out.txt") == "10"
    project.flowfile(DECORATED.replace(old, new))
    details = code_details(project)
    assert details and changed in details[0], details


def test_edit_to_an_unreferenced_function_does_not_count(project):
    """unused() is called by no task: editing it leaves T up to date; editing transform() does not."""
    built(project, TRANSFORM)
    project.flowfile(TRANSFORM.replace("x + 1", "x + 100"))
    assert project.run("--check", "T").returncode == 0
    project.flowfile(TRANSFORM.replace("x * FACTOR", "FACTOR * x"))
    assert project.run("--check", "T").returncode == 1


def test_comments_docstrings_and_layout_of_helpers_do_not_count(project):
    """Comments, docstrings and blank lines in a helper and a helper module are not code."""
    project.write("helpers.py", HELPERS)
    text = TRANSFORM.replace("FACTOR = 2", "import helpers").replace(
        "x * FACTOR", "helpers.scale(x)"
    )
    built(project, text)
    project.write(
        "helpers.py",
        '"""Helpers."""\n\nSCALE = 3  # the scale\n\n\ndef scale(x):\n'
        '    """Scale x."""\n    # a comment\n\n    return x * SCALE\n',
    )
    project.flowfile(text.replace("def transform(x):", "def transform(x):  # hi\n    'doc'\n"))
    assert project.run("--check", "T").returncode == 0
    project.write("helpers.py", HELPERS.replace("x * SCALE", "SCALE * x"))
    assert code_details(project) == ["scale() in helpers.py"]


def test_explain_lists_every_changed_dependency(project):
    """FACTOR, transform() and scale() in helpers.py all change: --explain names all three."""
    project.write("helpers.py", HELPERS)
    text = "import helpers\n" + TRANSFORM.replace("x * FACTOR", "helpers.scale(x) * FACTOR")
    built(project, text)
    project.write("helpers.py", HELPERS.replace("x * SCALE", "SCALE * x"))
    project.flowfile(text.replace("FACTOR = 2", "FACTOR = 3").replace("* FACTOR", "* FACTOR * 1"))
    names = ["transform() in Flowfile.py", "FACTOR in Flowfile.py", "scale() in helpers.py"]
    assert code_details(project) == ["; ".join(names)]
    explain = project.run("-n", "--explain", "T").stdout
    assert all(name in explain for name in names), explain


def test_installed_package_function_is_not_followed(project, tmp_path_factory):
    """extlib lives in a site-packages directory on PYTHONPATH: editing it is no change; editing
    the project helper that calls it is."""
    site = tmp_path_factory.mktemp("env") / "lib" / "site-packages"
    site.mkdir(parents=True)
    (site / "extlib.py").write_text("def ext(x):\n    return x + 1\n")
    env = {"PYTHONPATH": str(site)}
    text = TRANSFORM.replace("FACTOR = 2", "import extlib").replace("x * FACTOR", "extlib.ext(x)")
    project.flowfile(text)
    assert project.run("T", env=env).returncode == 0
    (site / "extlib.py").write_text("def ext(x):\n    return x + 2\n")
    assert project.run("--check", "T", env=env).returncode == 0
    project.flowfile(text.replace("extlib.ext(x)", "extlib.ext(x) + 0"))
    proc = project.run("-n", "T", env=env)
    assert "code-changed: transform() in Flowfile.py" in proc.stdout, proc.stdout + proc.stderr


def test_task_class_named_in_requires_is_not_code_of_the_requirer(project):
    """B requires A: editing A's run() makes A `code-changed`, not B (its input decides B)."""
    text = (
        TRANSFORM
        + """
class B(flow.Task):
    def requires(self):
        return T()
    def output(self):
        return flow.LocalTarget("b.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write(self.input().open().read())
"""
    )
    built(project, text, "B")
    project.flowfile(text.replace("transform(21)", "transform(21) + 0"))
    plan = project.plan("B")
    assert [r["kind"] for r in plan["T()"]["reasons"]] == ["code-changed"]
    assert [r["kind"] for r in plan["B()"]["reasons"]] == ["upstream"]
    assert project.ran("B") == ["T()"]  # same output: early cutoff


def test_record_from_before_code_maps_is_code_changed(project):
    """A manifest written by an older flow holds one digest per record: it is read, and the
    task is `code-changed: code of T changed` once."""
    built(project, TRANSFORM)
    db = sqlite3.connect(project.root / ".flow" / "manifest.sqlite")
    with db:
        db.execute("UPDATE outputs SET code = ?", ("0123456789abcdef0123456789abcdef",))
    db.close()
    assert code_details(project) == ["code of T changed"]
    assert project.ran("T") == ["T()"]
    assert project.run("--check", "T").returncode == 0


def _chains_by_dis(code):
    """What code_chains reads from raw bytecode, by way of `dis` (the reference)."""
    import dis
    from types import CodeType

    chains, name, attrs, consts = [], None, [], [None, None]
    for ins in dis.get_instructions(code):
        if ins.opname == "LOAD_CONST":
            consts = [consts[1], ins.argval]
        elif ins.opname == "IMPORT_NAME":  # an import inside a function: level, names taken
            level, taken = consts
            whole = not isinstance(taken, tuple) or "*" in taken
            chains.append((f"\0import:{level}:{ins.argval}", ("*",) if whole else taken))
        if name is not None and ins.opname in ("LOAD_ATTR", "LOAD_METHOD"):
            attrs.append(ins.argval)
            continue
        if name is not None:
            chains.append((name, tuple(attrs)))
        name, attrs = (ins.argval, []) if ins.opname in ("LOAD_GLOBAL", "LOAD_NAME") else (None, [])
    if name is not None:
        chains.append((name, tuple(attrs)))
    for const in code.co_consts:
        if isinstance(const, CodeType):
            chains += _chains_by_dis(const)
    return chains


def _flows_own_code():
    """The code objects of flow's own functions and methods: a large sample of real code."""
    import importlib
    import pkgutil
    from types import FunctionType

    import flow

    codes = []
    for info in pkgutil.walk_packages(flow.__path__, "flow."):
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            for fn in [value, *vars(value).values()] if isinstance(value, type) else [value]:
                fn = getattr(fn, "__func__", fn)
                if isinstance(fn, FunctionType) and fn.__module__ == module.__name__:
                    codes.append(fn.__code__)
    assert len(codes) > 300
    return codes


def test_bytecode_reader_agrees_with_dis_on_flows_own_code():
    """code_chains reads the bytecode directly for speed: it must say what `dis` says."""
    from flow.codesource import code_chains

    codes = _flows_own_code()
    for code in codes:
        assert code_chains(code) == _chains_by_dis(code), code
    assert any(len(attrs) > 1 for code in codes for _, attrs in code_chains(code))


def test_a_function_parsed_alone_hashes_as_in_its_whole_file():
    """A function is parsed from its own lines (a large module is not parsed for one helper):
    its tree must be the one the whole file gives, or none (then the whole file is used)."""
    from flow.codesource import parse

    alone = 0
    for code in _flows_own_code():
        source = parse(code.co_filename)
        nodes = source._alone(code)
        if nodes:
            alone += 1
            whole = source._whole().function(code)
            assert [source.dump(n) for n in nodes] == [source.dump(n) for n in whole], code
    assert alone > 300


# -- the seed's command lines: -m/--module ------------------------------------------------------

SEED_SCRIPT = """
import flow as luigi

class PrintNumbers(luigi.Task):
    n = luigi.IntParameter(default=10)
    def output(self):
        return luigi.LocalTarget(f"out/numbers_upto_{self.n}.txt")
    def run(self):
        with self.output().open("w") as f:
            for i in range(1, self.n + 1):
                f.write(f"{i}\\n")

class SquaredNumbers(luigi.Task):
    \"\"\"Square every number up to n.\"\"\"
    n = luigi.IntParameter(default=10)
    def requires(self):
        return [PrintNumbers(n=self.n)]
    def output(self):
        return luigi.LocalTarget("out/squares.txt")
    def run(self):
        with self.input()[0].open() as fin, self.output().open("w") as fout:
            for line in fin:
                k = int(line)
                fout.write(f"{k}: {k * k}\\n")

if __name__ == "__main__":
    luigi.run()
"""

# The console script users type: its own directory, not the current one, is first on sys.path
# (`python -m flow` would hide a module lookup that misses the current directory).
FLOW_SCRIPT = str(Path(sys.executable).with_name("flow"))
FORMS = {
    "python-script": [sys.executable, "run_luigi.py"],
    "m-file": [FLOW_SCRIPT, "-m", "run_luigi.py"],
    "module-name": [FLOW_SCRIPT, "--module", "run_luigi"],
}


def seed_run(
    project, form: str, *opts: str, n: int | None = None
) -> subprocess.CompletedProcess[str]:
    """The seed's command line in one of its forms: flow's options, the task, `--n N`."""
    argv = [*FORMS[form], *opts, "SquaredNumbers", "--local-scheduler"]
    argv += ["--n", str(n)] if n is not None else []
    return subprocess.run(
        argv, cwd=project.root, capture_output=True, text=True, timeout=60, env=_env()
    )


def _env() -> dict[str, str]:
    return {**os.environ, "NO_COLOR": "1"}


@pytest.mark.skipif(not os.path.exists(FLOW_SCRIPT), reason="no flow console script")
@pytest.mark.parametrize("form", list(FORMS))
def test_seed_pipeline_runs_in_each_command_form(project, form):
    """`python run_luigi.py …`, `flow -m run_luigi.py …` and `flow --module run_luigi …` build
    the seed; `--n 20` after the default rebuilds (params-changed)."""
    project.write("run_luigi.py", SEED_SCRIPT)
    proc = seed_run(project, form)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert len(project.read("out/squares.txt").splitlines()) == 10
    assert seed_run(project, form, "--check").returncode == 0
    proc = seed_run(project, form, "-n", "--json", n=20)
    plan = {p["task"]: p for p in json.loads(proc.stdout)["plan"]}
    assert plan["SquaredNumbers(n=20)"]["reasons"][0]["kind"] == "params-changed", plan
    assert seed_run(project, form, n=20).returncode == 0
    assert project.read("out/squares.txt").splitlines()[-1] == "20: 400"
    assert seed_run(project, form, "--check", n=20).returncode == 0


@pytest.mark.skipif(not os.path.exists(FLOW_SCRIPT), reason="no flow console script")
def test_seed_built_by_one_form_is_up_to_date_in_the_others(project):
    """The three forms import the same file under different module names (__main__,
    run_luigi): the records, code included, are the same."""
    project.write("run_luigi.py", SEED_SCRIPT)
    assert seed_run(project, "python-script").returncode == 0
    for form in ("m-file", "module-name"):
        proc = seed_run(project, form, "--check")
        assert proc.returncode == 0, form + proc.stdout + proc.stderr


def test_module_that_cannot_be_found_names_what_was_tried(project):
    """-m NAME looks in the current directory, then on sys.path; -m FILE.py needs the file."""
    proc = subprocess.run(
        [FLOW_SCRIPT, "-m", "nothere", "X"], cwd=project.root, capture_output=True, text=True
    )
    assert proc.returncode == 2
    assert str(project.root / "nothere.py") in proc.stderr, proc.stderr
    assert "sys.path" in proc.stderr and "Traceback" not in proc.stderr
    proc = project.run("-m", "nothere.py", "X")
    assert proc.returncode == 2
    assert f"no such file {project.root / 'nothere.py'}" in proc.stderr, proc.stderr
