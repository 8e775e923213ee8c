"""Shared fixtures: a project directory with a Flowfile, and `flow` run as a subprocess in it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

FLOW = [sys.executable, "-m", "flow"]

# The seed pipeline of SPEC §1 (with a docstring and a description for the listing tests).
SEED = '''
class PrintNumbers(flow.Task):
    n = flow.IntParameter(default=10)
    def output(self):
        return flow.LocalTarget(f"out/numbers_upto_{self.n}.txt")
    def run(self):
        with self.output().open("w") as f:
            for i in range(1, self.n + 1):
                f.write(f"{i}\\n")

class SquaredNumbers(flow.Task):
    """Square every number up to n.

    The second docstring line is only in the full doc.
    """
    n = flow.IntParameter(default=10, description="how many numbers")
    def requires(self):
        return [PrintNumbers(n=self.n)]
    def output(self):
        return flow.LocalTarget("out/squares.txt")
    def run(self):
        with self.input()[0].open() as fin, self.output().open("w") as fout:
            for line in fin:
                k = int(line)
                fout.write(f"{k}: {k * k}\\n")
'''


class Project:
    """A temporary project: write its Flowfile and files, run `flow` in it as a user would."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def write(self, name: str, text: str) -> Path:
        path = self.root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text))
        return path

    def flowfile(self, text: str, name: str = "Flowfile.py") -> Path:
        return self.write(name, "import flow\n" + textwrap.dedent(text))

    def read(self, name: str) -> str:
        return (self.root / name).read_text()

    def run(
        self,
        *args: str,
        cwd: Path | None = None,
        timeout: float = 60,
        env: dict[str, str] | None = None,
    ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "NO_COLOR": "1", **(env or {})}
        return subprocess.run(
            [*FLOW, *args],
            cwd=cwd or self.root,
            capture_output=True,
            text=True,
            timeout=timeout,
            env=full_env,
        )

    def run_json(self, *args: str) -> tuple[int, dict]:
        proc = self.run("--json", *args)
        try:
            return proc.returncode, json.loads(proc.stdout)
        except json.JSONDecodeError:
            raise AssertionError(
                f"not JSON (exit {proc.returncode}):\n{proc.stdout}\n{proc.stderr}"
            ) from None

    def ran(self, *args: str) -> list[str]:
        """Run flow --json and return the ids of the tasks that ran, in order."""
        code, doc = self.run_json(*args)
        assert code == 0, doc
        return [t["task"] for t in doc["tasks"] if t["status"] == "ran"]

    def plan(self, *args: str) -> dict[str, dict]:
        """`flow -n --json`: task id -> plan entry (would_run, reasons)."""
        code, doc = self.run_json("-n", *args)
        assert code in (0, 1), doc
        return {p["task"]: p for p in doc["plan"]}


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return Project(tmp_path)
