"""The benchmark harness still runs: every workload at N=5, once, flow against make."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
FLOW_SCRIPT = Path(sys.executable).parent / "flow"


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.skipif(not FLOW_SCRIPT.exists(), reason="no flow console script beside this Python")
def test_harness_prints_a_row_per_workload_and_tool_at_tiny_n(tmp_path):
    # Premise: a run at N=5 with one run each exercises generation, measurement and the table.
    out = tmp_path / "table.md"
    proc = subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "run.py"),
            "--n",
            "5",
            "--runs",
            "1",
            "--tools",
            "flow,make",
            "--startup-runs",
            "1",
            "--completion-runs",
            "1",
            "--scratch",
            str(tmp_path / "scratch"),
            "--out",
            str(out),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "NO_COLOR": "1"},
    )
    assert proc.returncode == 0, proc.stderr
    table = out.read_text()
    assert table.strip() == proc.stdout.strip()
    for workload in ("W1", "W2", "W3"):
        for tool in ("make", "flow"):
            row = f"| {workload} | 5 | {tool} |"
            assert row in table
            main_row = next(line for line in table.splitlines() if line.startswith(row))
            assert "failed" not in main_row and "skipped" not in main_row, main_row
    for label in ("python -c pass", "flow --version", "flow -f Flowfile.example --list"):
        assert f"| {label} |" in table
    assert "Machine:" in table and "Command:" in table
