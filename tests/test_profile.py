"""`--profile FILE` / FLOW_PROFILE: a run's phases and tasks as a Chrome trace (issue 16)."""

from __future__ import annotations

import json

from conftest import SEED

FANOUT = """
class Leaf(flow.Task):
    i = flow.IntParameter()
    def output(self):
        return flow.LocalTarget(f"out/{self.i}.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write(str(self.i))

class Top(flow.Task):
    def requires(self):
        return [Leaf(i=i) for i in range(4)]
    def output(self):
        return flow.LocalTarget("out/top.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("top")

class Broken(flow.Task):
    def output(self):
        return flow.LocalTarget("out/broken.txt")
    def run(self):
        raise RuntimeError("no")
"""


def _trace(path):
    doc = json.loads(path.read_text())
    spans = [e for e in doc["traceEvents"] if e["ph"] == "X"]
    names = {e["tid"]: e["args"]["name"] for e in doc["traceEvents"] if e["name"] == "thread_name"}
    return spans, names


def test_profile_writes_phases_and_one_span_per_task_that_ran(project):
    project.flowfile(SEED)
    done = project.run("--profile", "trace.json", "SquaredNumbers", "n=3")
    assert done.returncode == 0, done.stderr
    assert "wrote the profile" in done.stdout
    spans, names = _trace(project.root / "trace.json")
    phases = [e["name"] for e in spans if e["tid"] == 0]
    assert phases[:3] == ["load Flowfile", "create the requested tasks", "expand the graph"]
    assert {"decide", "execute", "save the manifest"} <= set(phases)
    tasks = {e["name"]: e for e in spans if e["tid"] != 0}
    assert set(tasks) == {"PrintNumbers(n=3)", "SquaredNumbers(n=3)"}
    assert tasks["SquaredNumbers(n=3)"]["args"]["status"] == "ran"
    assert tasks["SquaredNumbers(n=3)"]["args"]["reason"] == "missing-output"
    # -j 1: one after the other, on one lane, inside the execute phase
    assert {e["tid"] for e in tasks.values()} == {1}
    assert names[0] == "flow" and names[1] == "slot 1"
    execute = next(e for e in spans if e["name"] == "execute")
    for e in tasks.values():
        assert e["dur"] >= 0
        assert execute["ts"] <= e["ts"] <= e["ts"] + e["dur"] <= execute["ts"] + execute["dur"]
    first, second = tasks["PrintNumbers(n=3)"], tasks["SquaredNumbers(n=3)"]
    assert first["ts"] + first["dur"] <= second["ts"]


def test_a_no_op_profile_has_the_phases_and_no_task_spans(project):
    project.flowfile(SEED)
    assert project.run("SquaredNumbers").returncode == 0
    env = {"FLOW_PROFILE": str(project.root / "noop.json")}
    done = project.run("SquaredNumbers", env=env)
    assert done.returncode == 0, done.stderr
    spans, _ = _trace(project.root / "noop.json")
    assert [e for e in spans if e["tid"] != 0] == []
    decide = next(e for e in spans if e["name"] == "decide")
    assert decide["args"]["tasks"] == 2


def test_parallel_tasks_get_lanes_and_a_failed_run_is_still_profiled(project):
    project.flowfile(FANOUT)
    done = project.run("-j", "2", "--profile", "par.json", "Top")
    assert done.returncode == 0, done.stderr
    spans, names = _trace(project.root / "par.json")
    lanes = {e["tid"] for e in spans if e["tid"] != 0}
    assert 1 in lanes and len(lanes) <= 5  # about two: a late report may open another
    assert len([e for e in spans if e["tid"] != 0]) == 5
    # No lane holds two tasks at once.
    for lane in lanes:
        mine = sorted((e["ts"], e["ts"] + e["dur"]) for e in spans if e["tid"] == lane)
        assert all(a[1] <= b[0] for a, b in zip(mine, mine[1:], strict=False))
    failed = project.run("--profile", "fail.json", "Broken")
    assert failed.returncode == 1
    spans, _ = _trace(project.root / "fail.json")
    broken = [e for e in spans if e["name"] == "Broken()"]
    assert broken and broken[0]["args"]["status"] == "failed"


def test_profile_json_mode_keeps_stdout_a_single_document(project):
    project.flowfile(SEED)
    done = project.run("--json", "--profile", "t.json", "PrintNumbers")
    assert done.returncode == 0, done.stderr
    json.loads(done.stdout)
    assert (project.root / "t.json").exists()


def test_profile_refuses_watch_mode_and_a_missing_directory(project):
    project.flowfile(SEED)
    watch = project.run("-w", "--profile", "t.json", "PrintNumbers")
    assert watch.returncode == 2
    assert "--profile" in watch.stderr and "Traceback" not in watch.stderr
    missing = project.run("--profile", "no/such/dir/t.json", "PrintNumbers")
    assert missing.returncode == 2
    assert "does not exist" in missing.stderr and "Traceback" not in missing.stderr
    assert not (project.root / "out").exists()
