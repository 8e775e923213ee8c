"""Every public Luigi name is in flow or left out on purpose, and a Luigi pipeline ports."""

from __future__ import annotations

import datetime as dt
import json
import re
import subprocess
import sys
from pathlib import Path

import pytest

import flow
from flow.luigi_names import ABSENT, NAMES, markdown_table

DOCS = Path(__file__).resolve().parents[1] / "docs" / "luigi-api.md"


def luigi_public_names() -> list[str]:
    """``luigi.__all__`` and the public attributes of ``luigi.Task``, from an installed Luigi."""
    luigi = pytest.importorskip("luigi", reason="Luigi is not installed (pip install luigi)")
    attrs = [f"Task.{a}" for a in dir(luigi.Task) if not a.startswith("_")]
    return [*luigi.__all__, *attrs]


def test_every_public_luigi_name_is_implemented_or_left_out_on_purpose():
    """Walk an installed Luigi's names: each is in the table, and in flow unless left out."""
    names = luigi_public_names()
    assert [n for n in names if n not in NAMES] == [], "add these to flow.luigi_names.NAMES"
    missing = []
    for name in names:
        status, _ = NAMES[name]
        if status == "absent":
            assert name in ABSENT
            continue
        owner, _, attr = name.rpartition(".")
        if not hasattr(flow.Task if owner == "Task" else flow, attr):
            missing.append(name)
    assert missing == []


def test_every_name_of_the_table_is_implemented_or_says_the_flow_way():
    """Without Luigi too: flow has each "yes" name; each left-out name fails with advice."""
    for name, (status, _) in NAMES.items():
        owner, _, attr = name.rpartition(".")
        target = flow.Task if owner == "Task" else flow
        if status == "yes":
            assert hasattr(target, attr), name
        else:
            with pytest.raises(AttributeError, match="--dask|flow.build|flow.Config"):
                getattr(flow, attr)


def test_the_luigi_guide_has_the_complete_table():
    """docs/luigi-api.md ends with the table flow.luigi_names generates: no name missing or stale."""
    text = DOCS.read_text()
    assert markdown_table() in text
    rows = re.findall(r"^\| `([^`]+)` \|", text, re.M)
    assert sorted(rows) == sorted(NAMES)


def test_the_rpc_scheduler_names_point_to_dask_and_serve():
    """`luigi.RemoteScheduler` after `import flow as luigi`: an error naming --dask and --serve."""
    with pytest.raises(AttributeError) as info:
        flow.RemoteScheduler  # noqa: B018
    assert "--dask" in str(info.value) and "--serve" in str(info.value)


PIPELINE = """
import json
import os

import flow as luigi


class db(luigi.Config):
    table = luigi.Parameter(default="events")


class Raw(luigi.ExternalTask):
    date = luigi.DateParameter()

    def output(self):
        return luigi.LocalTarget(f"raw/{self.date}.bin", format=luigi.format.Nop)


class Report(luigi.Task):
    date = luigi.DateParameter()
    resources = {"db": 1}

    def requires(self):
        return Raw(self.date)

    def output(self):
        return luigi.LocalTarget(f"out/{self.date}.json")

    def run(self):
        with self.input().open("r") as f:
            data = f.read()
        with self.output().open("w") as f:
            json.dump({"table": db().table, "bytes": len(data), "pid": os.getpid()}, f)


@Report.event_handler(luigi.Event.SUCCESS)
def done(task):
    with open("notified.txt", "a") as f:
        f.write(f"{task.date} {os.getpid()}\\n")


if __name__ == "__main__":
    luigi.run()
"""


def test_a_luigi_pipeline_runs_with_one_import_changed(project):
    """format=Nop, a Config, resources, an event handler and RangeDaily, as a new user runs it:
    `python pipeline.py RangeDaily --of Report ...` with luigi.cfg beside it, then via flow."""
    days = [(dt.date.today() - dt.timedelta(days=n)).isoformat() for n in (3, 2, 1)]
    project.write("pipeline.py", PIPELINE)
    project.write("luigi.cfg", "[db]\ntable = clicks\n\n[resources]\ndb = 1\n")
    for i, day in enumerate(days):
        project.write(f"raw/{day}.bin", "")
        (project.root / f"raw/{day}.bin").write_bytes(bytes(i + 1) + b"\xff")
    proc = subprocess.run(
        [sys.executable, "pipeline.py", "RangeDaily", "--of", "Report", "--start", days[0],
         "--stop", days[2], "--workers", "2", "--local-scheduler"],
        cwd=project.root, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert proc.returncode == 0, proc.stdout + proc.stderr
    reports = {d: json.loads(project.read(f"out/{d}.json")) for d in days[:2]}
    assert {d: (r["table"], r["bytes"]) for d, r in reports.items()} == {
        days[0]: ("clicks", 2),
        days[1]: ("clicks", 3),
    }
    assert not (project.root / f"out/{days[2]}.json").exists()  # stop is excluded
    notified = project.read("notified.txt").split()
    assert sorted(notified[0::2]) == days[:2]
    # Handlers ran in the one flow process, not in the workers that ran the reports (--workers 2).
    assert len(set(notified[1::2])) == 1
    assert not set(notified[1::2]) & {str(r["pid"]) for r in reports.values()}
    proc = project.run("-f", "pipeline.py", "RangeDaily", "--of", "Report", "--start", days[0],
                       "--stop", days[2])  # fmt: skip
    assert proc.returncode == 0 and "up to date" in proc.stdout
