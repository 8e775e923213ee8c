"""Every code sample in the docs runs, and the output it shows is flow's real output.

The convention (docs/contributing.md says the same, for writers):

- Each page gets a fresh scratch directory; its blocks are handled in page order.
- A fenced block right after ``<!-- file: NAME -->`` is written to NAME in that directory (any
  language), not executed.
- A ```python block without a marker is executed with ``python`` in that directory (from stdin,
  so ``__main__`` is the block) and must exit 0.
- A ```console block: each ``$ cmd`` line is run by ``/bin/sh`` in that directory, with ``flow``
  on PATH, stdout and stderr merged, NO_COLOR=1, COLUMNS=80 and no FLOW_* variables. Each
  command gets a new shell (write ``(cd sub && flow ...)``). The lines after it, up to the next
  ``$`` line, are what it prints, compared after `normalise` (durations, timestamps, run ids,
  ports, JSON seconds and the scratch path); a line ``...`` stands for any number of lines. A
  command shown with no output must exit 0. A line ending in ``\\`` continues on the next.
- A block right after ``<!-- skip: REASON -->`` is not run; the reason is mandatory, and each
  skip is reported as a skipped test so they stay few.
- Blocks in other languages (toml, ini, sh, text, ...) are not run unless marked as files.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"
# Generated pages: their blocks are not samples.
GENERATED = {"cli-reference.md", "api-reference.md"}
# Written on the luigi-guide branch (placeholders here): drop this set when it lands.
ELSEWHERE: set[str] = set()
NOT_HERE = GENERATED | ELSEWHERE
PAGES = sorted(p.name for p in DOCS.glob("*.md") if p.name not in NOT_HERE)
MAX_SKIPS = 15
COMMAND_TIMEOUT = 120.0

MARKER = re.compile(r"^\s*<!--\s*(file|skip):\s*(.*?)\s*-->\s*$")
FENCE = re.compile(r"^(\s*)(`{3,})\s*([\w+-]*)")


@dataclass
class Block:
    """One fenced block of a page, with the marker before it (if any)."""

    line: int  # 1-based line of the opening fence
    lang: str
    text: str
    marker: str = ""  # "file", "skip" or ""
    arg: str = ""  # the file name, or the reason for skipping


def blocks(text: str) -> list[Block]:
    """The fenced blocks of a Markdown page, dedented, each with its preceding marker."""
    lines = text.splitlines()
    found: list[Block] = []
    i = 0
    while i < len(lines):
        fence = FENCE.match(lines[i])
        if not fence:
            i += 1
            continue
        indent, ticks, lang = fence.groups()
        body: list[str] = []
        j = i + 1
        while j < len(lines) and not lines[j].strip().startswith(ticks):
            body.append(lines[j][len(indent) :] if lines[j].startswith(indent) else lines[j])
            j += 1
        block = Block(i + 1, lang, "\n".join(body) + "\n")
        k = i - 1
        while k >= 0 and not lines[k].strip():
            k -= 1
        marker = MARKER.match(lines[k]) if k >= 0 else None
        if marker:
            block.marker, block.arg = marker.groups()
        found.append(block)
        i = j + 1
    return found


# Normalisation: the few things that differ from run to run, each replaced in both the expected
# and the real output by a fixed token.
NORMALISE = [
    (re.compile(r"\b\d+\.\d+s\b|\b\d+m\d\ds\b"), "0.00s"),  # durations: 0.01s, 12.3s, 2m05s
    (
        re.compile(r"\d{4}-\d\d-\d\d[T ]\d\d:\d\d(:\d\d(\.\d+)?)?(Z|[+-]\d\d:?\d\d)?"),
        "<time>",
    ),  # timestamps
    (re.compile(r"\brun \d+\b"), "run <id>"),  # run ids in the history
    # .flow/ file names: backup/20261125-151610/, manifest.sqlite.corrupt-20261125-151311-17040
    (re.compile(r"\b\d{8}-\d{6}(-\d+)?\b"), "<time>"),
    (re.compile(r"\b127\.0\.0\.1:\d+\b"), "127.0.0.1:<port>"),  # a server's free port
    (re.compile(r'"seconds": [0-9.e-]+'), '"seconds": 0.0'),  # durations in --json
]


def normalise(output: str, scratch: Path) -> list[str]:
    """Lines of output with durations, timestamps, run ids and the scratch path made fixed."""
    text = output.replace(str(scratch), "/project")
    for pattern, token in NORMALISE:
        text = pattern.sub(token, text)
    return [line.rstrip() for line in text.splitlines()]


def matches(expected: list[str], actual: list[str]) -> bool:
    """Whether actual equals expected, where an expected line ``...`` matches any lines."""
    if not expected:
        return not actual
    if expected[0] == "...":
        return any(matches(expected[1:], actual[k:]) for k in range(len(actual) + 1))
    return bool(actual) and actual[0] == expected[0] and matches(expected[1:], actual[1:])


def commands(console: str) -> list[tuple[str, list[str]]]:
    """The ``$ cmd`` lines of a console block, each with the output lines shown after it."""
    found: list[tuple[str, list[str]]] = []
    lines = console.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if line.startswith("$ "):
            cmd = line[2:]
            while cmd.endswith("\\") and i + 1 < len(lines):
                i += 1
                cmd = cmd[:-1] + "\n" + lines[i]
            found.append((cmd, []))
        elif found:
            found[-1][1].append(line)
        i += 1
    return found


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLOW_")}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(NO_COLOR="1", PYTHONUNBUFFERED="1", COLUMNS="80")  # --help wraps at COLUMNS
    env.pop("PYTHONPATH", None)
    return env


def _where(page: str, block: Block) -> str:
    return f"docs/{page}:{block.line}"


def run_console(page: str, block: Block, scratch: Path, env: dict[str, str]) -> None:
    for cmd, shown in commands(block.text):
        proc = subprocess.run(
            cmd,
            shell=True,
            cwd=scratch,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=COMMAND_TIMEOUT,
        )
        if shown:
            expected = normalise("\n".join(shown), scratch)
            actual = normalise(proc.stdout, scratch)
            assert matches(expected, actual), (
                f"{_where(page, block)}: `$ {cmd}` printed (exit {proc.returncode}):\n"
                + "\n".join(actual)
                + "\n--- but the page shows:\n"
                + "\n".join(expected)
            )
        else:
            assert proc.returncode == 0, (
                f"{_where(page, block)}: `$ {cmd}` exited {proc.returncode}:\n{proc.stdout}"
            )


def run_python(page: str, block: Block, scratch: Path, env: dict[str, str]) -> None:
    proc = subprocess.run(
        [sys.executable, "-"],
        input=block.text,
        cwd=scratch,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        timeout=COMMAND_TIMEOUT,
    )
    assert proc.returncode == 0, f"{_where(page, block)}: the Python block failed:\n{proc.stdout}"


def run_page(page: str, text: str, scratch: Path) -> int:
    """Write, run and compare the blocks of one page in order; the number of blocks checked."""
    env = _env()
    checked = 0
    for block in blocks(text):
        if block.marker == "skip":
            continue
        if block.marker == "file":
            target = scratch / block.arg
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(block.text, encoding="utf-8")
        elif block.lang == "console":
            run_console(page, block, scratch, env)
        elif block.lang == "python":
            run_python(page, block, scratch, env)
        else:
            continue
        checked += 1
    return checked


@pytest.mark.parametrize("page", PAGES)
def test_the_samples_of_a_page_run_as_shown(page: str, tmp_path: Path) -> None:
    scratch = tmp_path / "project"
    scratch.mkdir()
    run_page(page, (DOCS / page).read_text(encoding="utf-8"), scratch)


SKIPS = [
    (page, block)
    for page in PAGES
    for block in blocks((DOCS / page).read_text(encoding="utf-8"))
    if block.marker == "skip"
]


@pytest.mark.parametrize("page,block", SKIPS, ids=[_where(p, b) for p, b in SKIPS])
def test_a_skipped_block_says_why(page: str, block: Block) -> None:
    """Each skipped block shows up in the summary (pytest -ra) with its reason."""
    assert block.arg, f"{_where(page, block)}: <!-- skip: --> needs a reason"
    pytest.skip(f"{_where(page, block)} ({block.lang}): {block.arg}")


def test_skips_stay_few() -> None:
    assert len(SKIPS) <= MAX_SKIPS, [_where(p, b) for p, b in SKIPS]


# The checker itself: a sample that no longer matches flow's output fails.
SEED = """\
import flow


class Hello(flow.Task):
    def output(self):
        return flow.LocalTarget("out/hello.txt")

    def run(self):
        with self.output().open("w") as f:
            f.write("hello\\n")
"""


def _page(transcript: str) -> str:
    return f"<!-- file: Flowfile.py -->\n```python\n{SEED}```\n\n```console\n{transcript}```\n"


def test_a_matching_transcript_passes(tmp_path: Path) -> None:
    transcript = (
        "$ flow -n\nflow: 1 of 1 task would run:\n  Hello()  missing-output: out/hello.txt\n"
        "$ flow\n[1/1] Hello()  0.01s  (missing-output)\n...\n$ cat out/hello.txt\nhello\n"
    )
    assert run_page("t.md", _page(transcript), tmp_path) == 2
    assert (tmp_path / "out/hello.txt").read_text() == "hello\n"


def test_a_wrong_transcript_fails(tmp_path: Path) -> None:
    transcript = "$ flow\n[1/1] Hello()  0.01s  (params-changed)\n...\n"
    with pytest.raises(AssertionError, match="params-changed"):
        run_page("t.md", _page(transcript), tmp_path)


def test_a_failing_command_without_output_fails(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="exited 2"):
        run_page("t.md", _page("$ flow NoSuchTask\n"), tmp_path)


def test_a_failing_python_block_fails(tmp_path: Path) -> None:
    with pytest.raises(AssertionError, match="NameError"):
        run_page("t.md", "```python\nundefined_name\n```\n", tmp_path)


def test_skipped_and_foreign_blocks_are_not_run(tmp_path: Path) -> None:
    page = "<!-- skip: needs a cluster -->\n```console\n$ false\n```\n\n```sh\nfalse\n```\n"
    assert run_page("t.md", page, tmp_path) == 0


def test_normalise_is_small_and_explicit(tmp_path: Path) -> None:
    out = f"in 12.34s at 2026-11-30T04:05:06Z, run 17 in {tmp_path}/x\n"
    assert normalise(out, tmp_path) == ["in 0.00s at <time>, run <id> in /project/x"]
    out = "backup/20261125-151610/a, corrupt-20261125-151311-17040, http://127.0.0.1:41727/\n"
    assert normalise(out, tmp_path) == ["backup/<time>/a, corrupt-<time>, http://127.0.0.1:<port>/"]
    assert normalise('  "seconds": 2.5e-05,', tmp_path) == ['  "seconds": 0.0,']
