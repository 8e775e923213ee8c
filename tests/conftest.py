"""Shared fixtures: a project directory with a Flowfile, and `flow` run as a subprocess in it."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
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


# How long a test waits for an event (a file, a line of output) before it fails. Generous: CI is
# a 2-core machine that may be loaded, and a wait that is met returns at once anyway.
DEADLINE = 60.0


def wait_until(
    ready: Callable[[], bool],
    what: str,
    timeout: float = DEADLINE,
    proc: subprocess.Popen[str] | None = None,
    output: Callable[[], str] = lambda: "",
) -> None:
    """Poll ``ready`` until it holds; fail naming ``what`` after ``timeout``, or at once when
    ``proc`` has exited first."""
    deadline = time.monotonic() + timeout
    while not ready():
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"flow exited ({proc.returncode}) before {what}:\n{output()}")
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}:\n{output()}")
        time.sleep(0.02)


class Live:
    """`flow ARGS` running in the background; reader threads collect its output lines as they
    come, so a test can wait for a line instead of sleeping."""

    def __init__(self, root: Path, *args: str, env: dict[str, str] | None = None) -> None:
        self.lines: list[str] = []  # stdout and stderr, in the order they were read
        self.out: list[str] = []
        self.err: list[str] = []
        self._lock = threading.Lock()
        self.proc = subprocess.Popen(
            [*FLOW, *args],
            cwd=root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NO_COLOR": "1", "PYTHONUNBUFFERED": "1", **(env or {})},
        )
        self._readers = [
            threading.Thread(target=self._read, args=(stream, into), daemon=True)
            for stream, into in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))
        ]
        for reader in self._readers:
            reader.start()

    def _read(self, stream: object, into: list[str]) -> None:
        for line in stream:  # type: ignore[attr-defined]
            with self._lock:
                into.append(line.rstrip("\n"))
                self.lines.append(line.rstrip("\n"))

    @property
    def text(self) -> str:
        with self._lock:
            return "\n".join(self.lines)

    def count(self, fragment: str) -> int:
        with self._lock:
            return sum(fragment in line for line in self.lines)

    def wait_for(self, ready: Callable[[], bool], what: str, timeout: float = DEADLINE) -> None:
        wait_until(ready, what, timeout, self.proc, lambda: self.text)

    def wait_for_line(self, fragment: str, timeout: float = DEADLINE) -> None:
        self.wait_for(lambda: self.count(fragment) > 0, repr(fragment), timeout)

    def finish(self, timeout: float = DEADLINE) -> tuple[int, str, str]:
        """Wait for flow to exit and its output to be read; (exit status, stdout, stderr)."""
        code = self.proc.wait(timeout=timeout)
        for reader in self._readers:
            reader.join(timeout=timeout)
        with self._lock:
            return code, "\n".join(self.out), "\n".join(self.err)

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(timeout=DEADLINE)


def wait_for_file(path: Path, proc: subprocess.Popen[str], timeout: float = DEADLINE) -> None:
    """Wait until ``path`` exists; fail at once if flow (``proc``) ended first."""
    deadline = time.monotonic() + timeout
    while not path.exists():
        if proc.poll() is not None:
            raise AssertionError(f"flow ended early: {proc.communicate()}")
        assert time.monotonic() < deadline, f"{path} never appeared"
        time.sleep(0.02)


def immutable(path: Path) -> Callable[[], object]:
    """Make a file or directory unwritable even for root (chattr +i; chmod when not root), or
    skip where that is refused. Returns the undo."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode & 0o777
        path.chmod(0o555 if path.is_dir() else 0o444)
        return lambda: path.chmod(mode)
    if shutil.which("chattr") is None or subprocess.run(["chattr", "+i", str(path)]).returncode:
        pytest.skip(f"cannot make {path.name} read-only here (chattr +i refused)")
    return lambda: subprocess.run(["chattr", "-i", str(path)], check=True)


class Project:
    """A temporary project: write its Flowfile and files, run `flow` in it as a user would."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.started: list[Live] = []

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

    def start(self, *args: str, env: dict[str, str] | None = None) -> Live:
        """Start `flow ARGS` in the background (killed at the end of the test if still running)."""
        live = Live(self.root, *args, env=env)
        self.started.append(live)
        return live

    def popen(self, *args: str) -> subprocess.Popen[str]:
        """Start `flow ARGS` with its output piped, for tests that signal or kill it."""
        return subprocess.Popen(
            [*FLOW, *args],
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, "NO_COLOR": "1"},
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
def project(tmp_path: Path) -> Iterator[Project]:
    p = Project(tmp_path)
    try:
        yield p
    finally:
        for live in p.started:
            live.stop()
