"""Trust in identities and hashes: unambiguous task ids, a deterministic code hash for any
``version``, private parameters kept out of sight, and code hashing that sees every project file."""

from __future__ import annotations

import itertools
import os
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
