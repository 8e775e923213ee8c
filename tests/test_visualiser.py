"""Run history, `flow --serve`'s JSON API and `flow --report`, through a real server and plain HTTP."""

from __future__ import annotations

import http.client
import json
import re
import signal
import sqlite3
import urllib.error
import urllib.request
from typing import Any

import pytest

from conftest import Live, Project, wait_until

FLOWFILE = """
import os, time
from flow.parameter import ParameterVisibility

class Part(flow.Task):
    i = flow.IntParameter(default=0)
    label = flow.Parameter(default="plain")
    token = flow.Parameter(default="s3cr3t-value", visibility=ParameterVisibility.PRIVATE)
    def output(self):
        return flow.LocalTarget(f"out/part{self.i}.txt")
    def run(self):
        self.set_status_message(f"part {self.i} halfway")
        self.set_progress_percentage(50)
        with self.output().open("w") as f:
            f.write(str(self.i))

class All(flow.Task):
    n = flow.IntParameter(default=3)
    def requires(self):
        return [Part(i=i) for i in range(self.n)]
    def output(self):
        return flow.LocalTarget("out/all.txt")
    def run(self):
        with self.output().open("w") as f:
            f.write("all")

class Broken(flow.Task):
    def requires(self):
        return Part(i=0)
    def output(self):
        return flow.LocalTarget("out/broken.txt")
    def run(self):
        print("some output before the failure")
        raise RuntimeError("broken on purpose")

class Slow(flow.Task):
    def output(self):
        return flow.LocalTarget("out/slow.txt")
    def run(self):
        self.set_status_message("waiting for go.flag")
        self.set_progress_percentage(25)
        open("started.flag", "w").close()
        deadline = time.time() + 120
        while not os.path.exists("go.flag") and time.time() < deadline:
            time.sleep(0.05)
        with self.output().open("w") as f:
            f.write("slow")
"""


def serve(project: Project, *args: str) -> tuple[Live, str]:
    """Start `flow --serve 127.0.0.1:0 ARGS`; return it and the URL it printed."""
    live = project.start("--serve", "127.0.0.1:0", *args)
    live.wait_for_line("serving the visualiser at http://127.0.0.1:")
    url = re.search(r"http://127\.0\.0\.1:\d+/", live.text)
    assert url is not None
    return live, url.group(0)


def get(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=30) as r:
        assert r.headers["Content-Type"].startswith("application/json")
        return json.loads(r.read())


def latest(url: str) -> dict[str, Any]:
    """The newest run, or {} while there is none yet (404)."""
    try:
        return get(url + "api/runs/latest")  # type: ignore[no-any-return]
    except urllib.error.HTTPError as exc:
        if exc.code != 404:
            raise
        return {}


def raw_status(url: str, path: str, method: str = "GET", host_header: str = "") -> int:
    """The status of a request sent with its path exactly as written (no client normalising)."""
    host, port = url.split("//")[1].rstrip("/").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.putrequest(method, path, skip_accept_encoding=True, skip_host=bool(host_header))
        if host_header:
            conn.putheader("Host", host_header)
        conn.endheaders()
        response = conn.getresponse()
        response.read()
        return response.status
    finally:
        conn.close()


@pytest.fixture
def served(project: Project) -> tuple[Project, str]:
    project.flowfile(FLOWFILE)
    _, url = serve(project)
    return project, url


def test_runs_list_and_run_detail_have_the_spec_shapes(served: tuple[Project, str]) -> None:
    # Premise: one successful build, then a failing one, are recorded; a dry run is not.
    project, url = served
    assert get(url + "api/runs") == []
    assert project.run("All").returncode == 0
    assert project.run("Broken").returncode == 1
    assert project.run("-n", "All", "n=5").returncode == 0
    runs = get(url + "api/runs")
    assert [r["status"] for r in runs] == ["failed", "succeeded"]  # newest first
    assert set(runs[0]) == {"id", "status", "started", "finished", "counts"}
    assert runs[1]["counts"] == {"ran": 4}
    assert runs[0]["counts"] == {"up-to-date": 1, "failed": 1}
    run = get(url + f"api/runs/{runs[1]['id']}")
    assert {"id", "status", "started", "finished", "tasks"} <= set(run)
    tasks = {t["task"]: t for t in run["tasks"]}
    part = tasks["Part(i=0, label=plain)"]
    keys = {
        "task",
        "family",
        "params",
        "status",
        "reason",
        "duration",
        "message",
        "progress",
        "deps",
    }
    assert keys <= set(part)
    assert part["family"] == "Part" and part["status"] == "ran"
    assert part["reason"] == "missing-output"
    assert part["message"] == "part 0 halfway" and part["progress"] == 100
    assert part["params"] == {"i": "0", "label": "plain"}  # the private one never shown
    assert isinstance(part["duration"], float)
    assert sorted(tasks["All(n=3)"]["deps"]) == sorted(t for t in tasks if t.startswith("Part"))
    latest = get(url + "api/runs/latest")
    broken = {t["task"]: t for t in latest["tasks"]}["Broken()"]
    assert broken["status"] == "failed"
    assert "broken on purpose" in broken["output"]
    assert "s3cr3t-value" not in json.dumps([get(url + "api/runs/latest"), run])


def test_unknown_run_is_404(served: tuple[Project, str]) -> None:
    _, url = served
    for path in ("/api/runs/12345", "/api/runs/abc", "/api/runs/1;DROP", "/api/nothing"):
        assert raw_status(url, path) == 404, path


@pytest.mark.parametrize(
    "path",
    [
        "/static/../Flowfile.py",
        "/static/%2e%2e/Flowfile.py",
        "/static/%2E%2E%2FFlowfile.py",
        "/static/..%2f..%2fFlowfile.py",
        "/../Flowfile.py",
        "/Flowfile.py",
        "/.flow/history.sqlite",
        "/static/../../store/history.py",
        "/static//etc/passwd",
        "/static/%2fetc%2fpasswd",
        "//etc/passwd",
        "/static/server.py",
        "/static/..%5cserver.py",
        "/static/%00app.js",
    ],
)
def test_no_path_reaches_a_file_outside_the_assets(served: tuple[Project, str], path: str) -> None:
    # Premise: whatever the spelling, only the packaged assets and the API are served.
    _, url = served
    assert raw_status(url, path) == 404


def test_the_page_and_its_assets_are_served_and_nothing_can_be_changed(
    served: tuple[Project, str],
) -> None:
    _, url = served
    for path in ("/", "/static/app.js", "/static/dagre.min.js", "/static/style.css"):
        assert raw_status(url, path) == 200, path
    for method in ("POST", "PUT", "DELETE"):
        assert raw_status(url, "/api/runs", method) == 405


def test_a_live_run_appears_with_its_running_task_and_message(served: tuple[Project, str]) -> None:
    # Premise: a build started from another terminal shows up while it runs.
    project, url = served
    build = project.start("Slow")
    wait_until(lambda: (project.root / "started.flag").exists(), "Slow to start", proc=build.proc)

    def running_with_message() -> bool:
        task = {t["task"]: t for t in latest(url).get("tasks", [])}.get("Slow()", {})
        return task.get("status") == "running" and task.get("message") == "waiting for go.flag"

    wait_until(running_with_message, "the running task in the API")
    assert get(url + "api/runs")[0]["status"] == "running"
    (project.root / "go.flag").touch()
    assert build.finish()[0] == 0
    wait_until(lambda: get(url + "api/runs")[0]["status"] == "succeeded", "the run to end")


def test_concurrent_runs_are_recorded_apart(served: tuple[Project, str]) -> None:
    project, url = served
    slow = project.start("Slow")
    wait_until(lambda: (project.root / "started.flag").exists(), "Slow to start", proc=slow.proc)
    assert project.run("All", "-j", "2").returncode == 0  # while Slow's run is live
    (project.root / "go.flag").touch()
    assert slow.finish()[0] == 0
    runs = get(url + "api/runs")
    assert len({r["id"] for r in runs}) == 2
    assert sorted(r["status"] for r in runs) == ["succeeded", "succeeded"]
    ids = [{t["task"] for t in get(url + f"api/runs/{r['id']}")["tasks"]} for r in runs]
    assert {"Slow()"} in ids and any("All(n=3)" in i for i in ids)


def test_progress_from_worker_processes_is_recorded(project: Project) -> None:
    project.flowfile(FLOWFILE)
    assert project.run("All", "-j", "2").returncode == 0
    _, url = serve(project)
    tasks = get(url + "api/runs/latest")["tasks"]
    part = {t["task"]: t for t in tasks}["Part(i=1, label=plain)"]
    assert part["message"] == "part 1 halfway"


def test_a_killed_run_is_shown_interrupted(project: Project) -> None:
    project.flowfile(FLOWFILE)
    build = project.start("Slow")
    wait_until(lambda: (project.root / "started.flag").exists(), "Slow to start", proc=build.proc)
    build.proc.send_signal(signal.SIGKILL)
    build.proc.wait(timeout=60)
    _, url = serve(project)
    assert get(url + "api/runs")[0]["status"] == "interrupted"


def test_an_interrupted_run_is_recorded_so(project: Project) -> None:
    project.flowfile(FLOWFILE)
    build = project.start("Slow")
    wait_until(lambda: (project.root / "started.flag").exists(), "Slow to start", proc=build.proc)
    build.proc.send_signal(signal.SIGINT)
    assert build.finish()[0] == 130
    db = sqlite3.connect(project.root / ".flow" / "history.sqlite")
    assert db.execute("SELECT status FROM runs").fetchall() == [("interrupted",)]


def test_a_noop_adds_one_run_row_and_no_task_rows(project: Project) -> None:
    project.flowfile(FLOWFILE)
    assert project.run("All").returncode == 0
    db_path = project.root / ".flow" / "history.sqlite"
    before = sqlite3.connect(db_path).execute("SELECT count(*) FROM tasks").fetchone()[0]
    assert project.run("All").returncode == 0
    db = sqlite3.connect(db_path)
    assert db.execute("SELECT count(*) FROM tasks").fetchone()[0] == before
    assert db.execute("SELECT count(*) FROM runs").fetchone()[0] == 2
    assert db.execute("SELECT count(*) FROM graphs").fetchone()[0] == 1  # the graph is shared
    _, url = serve(project)
    latest = get(url + "api/runs/latest")
    assert {t["status"] for t in latest["tasks"]} == {"up-to-date"}


def test_history_keeps_the_configured_number_of_runs(project: Project) -> None:
    project.flowfile(FLOWFILE)
    project.write("pyproject.toml", "[tool.flow]\nhistory = 2\n")
    for n in (1, 2, 3, 4):
        assert project.run("All", f"n={n}").returncode == 0
    db = sqlite3.connect(project.root / ".flow" / "history.sqlite")
    assert [r[0] for r in db.execute("SELECT id FROM runs ORDER BY id")] == [3, 4]
    assert {r[0] for r in db.execute("SELECT DISTINCT run FROM tasks")} <= {3, 4}


def test_a_bad_history_setting_is_a_usage_error(project: Project) -> None:
    project.flowfile(FLOWFILE)
    project.write("pyproject.toml", "[tool.flow]\nhistory = 0\n")
    proc = project.run("All")
    assert proc.returncode == 2
    assert "history" in proc.stderr and "Traceback" not in proc.stderr


def test_a_port_in_use_is_a_clear_error_suggesting_port_0(project: Project) -> None:
    project.flowfile(FLOWFILE)
    _, url = serve(project)
    port = url.rstrip("/").rsplit(":", 1)[1]
    proc = project.run("--serve", f"127.0.0.1:{port}", timeout=60)
    assert proc.returncode == 2
    assert "already in use" in proc.stderr and "--serve 127.0.0.1:0" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_malformed_address_is_a_usage_error(project: Project) -> None:
    project.flowfile(FLOWFILE)
    proc = project.run("--serve", "127.0.0.1:http")
    assert proc.returncode == 2 and "[HOST:]PORT" in proc.stderr


def test_serve_with_a_task_builds_it_and_keeps_serving(project: Project) -> None:
    project.flowfile(FLOWFILE)
    live, url = serve(project, "All")
    live.wait_for_line("still serving")
    assert (project.root / "out" / "all.txt").exists()
    assert get(url + "api/runs")[0]["status"] == "succeeded"
    live.proc.send_signal(signal.SIGINT)
    assert live.finish()[0] == 0


def test_server_reads_an_empty_project(project: Project) -> None:
    project.flowfile(FLOWFILE)
    _, url = serve(project)
    assert get(url + "api/runs") == []
    with pytest.raises(urllib.error.HTTPError) as err:
        get(url + "api/runs/latest")
    assert err.value.code == 404


def test_serving_stops_on_ctrl_c(project: Project) -> None:
    project.flowfile(FLOWFILE)
    live, _ = serve(project)
    live.proc.send_signal(signal.SIGINT)
    assert live.finish()[0] == 0


# -- flow --report --------------------------------------------------------------------------------
def _embedded(html: str) -> dict[str, Any]:
    start = html.index('<script type="application/json" id="flow-data">')
    body = html[start:].split(">", 1)[1].split("</script>", 1)[0]
    return json.loads(body)  # type: ignore[no-any-return]


def test_report_is_one_offline_file_and_embedded_data_cannot_end_its_script(
    project: Project,
) -> None:
    project.flowfile(FLOWFILE)
    evil = "</script><script>alert(1)</script><!--"
    proc = project.run("Part", f"label={evil}", "--report", "report.html")
    assert proc.returncode == 0, proc.stderr
    html = project.read("report.html")
    assert "<script src=" not in html and "stylesheet" not in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert evil not in html
    data = _embedded(html)
    (task,) = data["run"]["tasks"]
    assert task["params"]["label"] == evil and task["status"] == "ran"
    assert data["critical"]["path"] == [task["task"]]
    assert "var dagre" in html


def test_report_of_a_plan_shows_what_would_run_and_the_critical_path(project: Project) -> None:
    project.flowfile(FLOWFILE)
    assert project.run("All").returncode == 0  # durations recorded for the estimate
    (project.root / "out" / "all.txt").unlink()
    proc = project.run("-n", "All", "--report", "plan.html")
    assert proc.returncode == 0, proc.stderr
    data = _embedded(project.read("plan.html"))
    status = {t["task"]: t["status"] for t in data["run"]["tasks"]}
    assert status["All(n=3)"] == "pending" and status["Part(i=0, label=plain)"] == "up-to-date"
    assert data["critical"]["path"][-1] == "All(n=3)"
    assert not (project.root / "out" / "all.txt").exists()


# -- progress on the terminal, and the progress API outside a build ------------------------------
PROGRESS_FLOWFILE = """
import os, time

class Step(flow.Task):
    i = flow.IntParameter(default=0)
    def output(self):
        return flow.LocalTarget(f"out/step{self.i}.txt")
    def run(self):
        self.set_status_message(f"crunching step {self.i}")
        self.set_progress_percentage(40)
        if self.i == 1:
            open("started.flag", "w").close()
            deadline = time.time() + 120
            while not os.path.exists("go.flag") and time.time() < deadline:
                time.sleep(0.05)
        with self.output().open("w") as f:
            f.write("x")

class Steps(flow.WrapperTask):
    def requires(self):
        return [Step(i=0), Step(i=1)]
"""


def run_on_a_terminal(project: Project, *args: str) -> str:
    """Run flow with stderr on a pseudo-terminal (the live status line is drawn only there);
    release it once ``started.flag`` appears; return what the terminal showed."""
    import os
    import pty
    import subprocess
    import sys
    import threading

    main, sub = pty.openpty()
    env = {**os.environ, "NO_COLOR": "1", "COLUMNS": "200"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "flow", *args], cwd=project.root, stderr=sub,
        stdout=subprocess.DEVNULL, env=env,
    )  # fmt: skip
    os.close(sub)
    seen: list[bytes] = []

    def read() -> None:
        while True:
            try:
                chunk = os.read(main, 4096)
            except OSError:
                return
            if not chunk:
                return
            seen.append(chunk)

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        text = lambda: b"".join(seen).decode(errors="replace")  # noqa: E731
        wait_until(lambda: "crunching step 1" in text(), "the status message", proc=proc,
                   output=text)  # fmt: skip
        (project.root / "go.flag").touch()
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        reader.join(timeout=10)
        os.close(main)
    return b"".join(seen).decode(errors="replace")


def test_the_status_line_shows_a_tasks_message_progress_and_an_eta(project: Project) -> None:
    # Premise: a first run records durations; the second run's status line estimates from them.
    project.flowfile(PROGRESS_FLOWFILE)
    (project.root / "go.flag").touch()
    assert project.run("Steps").returncode == 0
    (project.root / "go.flag").unlink()
    (project.root / "started.flag").unlink()
    screen = run_on_a_terminal(project, "-B", "Steps")
    assert "crunching step 1 40%" in screen
    assert "ETA " in screen


def test_progress_calls_outside_a_build_do_nothing(project: Project) -> None:
    project.flowfile(PROGRESS_FLOWFILE)
    project.write(
        "direct.py",
        "import flow, Flowfile\n"
        "t = Flowfile.Step(i=5)\n"
        "t.set_status_message('hello')\n"
        "t.set_progress_percentage('not a number')\n"
        "t.set_progress_percentage(250)\n"
        "print('ok')\n",
    )
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "direct.py"], cwd=project.root, capture_output=True,
                          text=True, timeout=60)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok"


def test_a_percentage_is_clamped_and_a_bad_one_dropped(project: Project) -> None:
    project.flowfile(
        """
        class P(flow.Task):
            def output(self):
                return flow.LocalTarget("out/p.txt")
            def run(self):
                self.set_progress_percentage(250)
                self.set_progress_percentage("many")
                raise RuntimeError("stop here")
        """
    )
    assert project.run("P").returncode == 1
    _, url = serve(project)
    (task,) = get(url + "api/runs/latest")["tasks"]
    assert task["progress"] == 100


# -- how --serve is asked for ---------------------------------------------------------------------
def test_tool_flow_serve_is_the_address_a_bare_serve_uses(project: Project) -> None:
    import socket

    with socket.socket() as s:  # a free port for [tool.flow] (released before flow binds it)
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    project.flowfile(FLOWFILE)
    project.write("pyproject.toml", f'[tool.flow]\nserve = "127.0.0.1:{port}"\n')
    assert project.run("All").returncode == 0  # never serves by itself
    live = project.start("--serve")
    live.wait_for_line(f"serving the visualiser at http://127.0.0.1:{port}/")
    assert get(f"http://127.0.0.1:{port}/api/runs")[0]["status"] == "succeeded"


def test_serve_followed_by_a_task_name_builds_it_on_the_default_address(project: Project) -> None:
    # Premise: `--serve All` reads All as the task, not as an address (which would be an error).
    project.flowfile(FLOWFILE)
    project.write("pyproject.toml", '[tool.flow]\nserve = "127.0.0.1:0"\n')
    live = project.start("--serve", "All")
    live.wait_for_line("still serving")
    assert (project.root / "out" / "all.txt").exists()


def test_serve_with_watch_shows_each_rebuild(project: Project) -> None:
    project.flowfile(FLOWFILE)
    live, url = serve(project, "-w", "All")
    wait_until(lambda: len(get(url + "api/runs")) == 1, "the first run", proc=live.proc)
    wait_until(lambda: get(url + "api/runs")[0]["status"] == "succeeded", "the first run to end")
    live.wait_for_line("flow: watching")
    flowfile = project.root / "Flowfile.py"
    flowfile.write_text(flowfile.read_text().replace('f.write("all")', 'f.write("all!")'))
    wait_until(lambda: len(get(url + "api/runs")) == 2, "a rebuild", proc=live.proc)
    live.proc.send_signal(signal.SIGINT)
    assert live.finish()[0] in (0, 130)


def test_a_file_name_that_is_not_utf8_is_recorded_served_and_reported(project: Project) -> None:
    # Premise: b"caf\xe9.txt" (a lone surrogate in Python) in a reason and a message.
    import os

    project.flowfile(
        """
        import os
        NAME = os.fsdecode(b"out/caf\\xe9.txt")
        class Cafe(flow.Task):
            def output(self):
                return flow.LocalTarget(NAME)
            def run(self):
                self.set_status_message("writing " + NAME)
                with self.output().open("w") as f:
                    f.write("x")
        """
    )
    assert project.run("Cafe", "--report", "r.html").returncode == 0
    assert os.path.exists(os.path.join(os.fsencode(project.root), b"out", b"caf\xe9.txt"))
    _, url = serve(project)
    (task,) = get(url + "api/runs/latest")["tasks"]
    assert task["status"] == "ran" and task["message"] == "writing out/caf\\udce9.txt"
    assert task["detail"] == "out/caf\\udce9.txt"
    (reported,) = _embedded(project.read("r.html"))["run"]["tasks"]
    assert reported["status"] == "ran"


def test_a_runs_dashboard_link_is_served(project: Project) -> None:
    # Premise: the slot a Dask run fills (``events.dashboard(url)``), written through the store.
    from flow.store.history import HistoryWriter

    project.flowfile(FLOWFILE)
    writer = HistoryWriter(str(project.root / ".flow"))
    run = writer.start(1.0, ["All(n=3)"], "nograph")
    writer.write(run, [], ("succeeded", 2.0, {}), "http://127.0.0.1:8787/status")
    writer.close()
    _, url = serve(project)
    assert get(url + "api/runs/latest")["dashboard"] == "http://127.0.0.1:8787/status"


def test_an_unreadable_history_is_moved_aside_and_the_build_goes_on(project: Project) -> None:
    project.flowfile(FLOWFILE)
    (project.root / ".flow").mkdir()
    (project.root / ".flow" / "history.sqlite").write_bytes(b"not a database" * 100)
    proc = project.run("All")
    assert proc.returncode == 0
    assert "run history" in proc.stderr and "moved it to" in proc.stderr
    assert (project.root / "out" / "all.txt").exists()
    _, url = serve(project)
    assert [r["status"] for r in get(url + "api/runs")] == ["succeeded"]


def test_addresses_are_parsed_and_only_loopback_ones_count_as_private() -> None:
    from flow.errors import UsageError
    from flow.ui.server import is_loopback, parse_address

    assert parse_address(None) == ("127.0.0.1", 8082)
    assert parse_address("") == ("127.0.0.1", 8082)
    assert parse_address("9000") == ("127.0.0.1", 9000)
    assert parse_address("0.0.0.0:0") == ("0.0.0.0", 0)
    assert parse_address("[::1]:8082") == ("::1", 8082)
    for bad in ("host:", ":80", "1:2:x", "99999", "localhost:http"):
        with pytest.raises(UsageError):
            parse_address(bad)
    assert is_loopback("127.0.0.1") and is_loopback("::1") and is_loopback("localhost")
    assert not is_loopback("0.0.0.0") and not is_loopback("192.168.1.5")
    assert not is_loopback("example.org")


def test_a_stopped_or_killed_server_never_holds_a_build_up(project: Project) -> None:
    # Premise: the server holds nothing between requests; a build needs nothing from it.
    project.flowfile(FLOWFILE)
    live, url = serve(project)
    assert get(url + "api/runs") == []
    live.proc.send_signal(signal.SIGSTOP)
    try:
        assert project.run("All", timeout=120).returncode == 0
    finally:
        live.proc.send_signal(signal.SIGCONT)
    live.proc.kill()
    live.proc.wait(timeout=60)
    assert project.run("Broken", timeout=120).returncode == 1
    db = sqlite3.connect(project.root / ".flow" / "history.sqlite")
    assert [r[0] for r in db.execute("SELECT status FROM runs ORDER BY id")] == [
        "succeeded",
        "failed",
    ]


def test_report_with_json_keeps_stdout_a_json_document(project: Project) -> None:
    project.flowfile(FLOWFILE)
    code, doc = project.run_json("All", "--report", "r.html")
    assert code == 0 and doc["summary"]["ran"] == 4
    assert (project.root / "r.html").exists()


def test_requests_for_another_host_name_are_refused(served: tuple[Project, str]) -> None:
    # Premise: DNS rebinding: a page of evil.example re-pointed at 127.0.0.1 must not read it.
    _, url = served
    port = url.rstrip("/").rsplit(":", 1)[1]
    assert raw_status(url, "/api/runs", host_header=f"evil.example:{port}") == 403
    assert raw_status(url, "/", host_header="evil.example") == 403
    for name in (f"127.0.0.1:{port}", f"localhost:{port}", "localhost"):
        assert raw_status(url, "/api/runs", host_header=name) == 200, name


def test_a_burst_of_status_messages_under_j2_never_hangs_the_build(project):
    """Found by a tester: thousands of large messages from a -j 2 worker filled the pipe of the
    progress queue, and the worker could not exit while flow shut the pool down: flow hung."""
    project.flowfile(
        """
        import time

        class Burst(flow.Task):
            n = flow.IntParameter(default=3000)
            def run(self):
                time.sleep(0.3)
                for k in range(self.n):
                    self.set_status_message(f"{k:06d} " + "x" * 1990)
        """
    )
    proc = project.run("-j", "2", "Burst", timeout=180)
    assert proc.returncode == 0, proc.stderr


def test_a_rewired_graph_or_new_insignificant_value_is_stored_anew(project):
    """Found by a tester: a graph with the same ids and upstream counts reused the stored one,
    so the page showed old edges and old insignificant values."""
    import sqlite3

    project.flowfile(
        """
        import os

        class X(flow.Task):
            def run(self):
                pass
        class Y(flow.Task):
            def run(self):
                pass
        class Z(flow.Task):
            note = flow.Parameter(default="", significant=False)
            def requires(self):
                return X() if os.environ.get("WIRE") == "X" else Y()
            def run(self):
                pass
        class All(flow.WrapperTask):
            note = flow.Parameter(default="", significant=False)
            def requires(self):
                return [X(), Y(), Z(note=self.note)]
        """
    )
    for wire, note in (("X", "one"), ("Y", "one"), ("Y", "two"), ("Y", "two")):
        proc = project.run("All", f"note={note}", env={"WIRE": wire})
        assert proc.returncode == 0, proc.stderr
    db = sqlite3.connect(project.root / ".flow" / "history.sqlite")
    assert db.execute("SELECT COUNT(*) FROM graphs").fetchone()[0] == 3


def test_a_run_id_of_non_ascii_digits_is_a_404_not_a_crash(served: tuple[Project, str]) -> None:
    """Found by a tester: b"\\xb2" (superscript two) passed isdigit() and crashed int()."""
    project, url = served
    assert project.run("All").returncode == 0
    import socket

    assert raw_status(url, "/api/runs/%C2%B2") == 404
    host, port = url.split("//")[1].rstrip("/").split(":")
    for raw in (b"\xb2", b"\xb9", b"\xc2\xb2"):
        with socket.create_connection((host, int(port)), timeout=30) as conn:
            conn.sendall(b"GET /api/runs/" + raw + b" HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n")
            status = conn.recv(100).split(b" ")[1]
        assert status == b"404", raw
    assert get(url + "/api/runs") is not None  # the server is still answering


def test_report_path_is_relative_to_where_flow_started_and_refused_with_watch(
    project: Project,
) -> None:
    """Found by a tester: -C moved a relative --report FILE into the project; -w ignored it."""
    project.flowfile(FLOWFILE)
    here = project.root / "elsewhere"
    here.mkdir()
    proc = project.run("-C", str(project.root), "--report", "r.html", "All", cwd=here)
    assert proc.returncode == 0, proc.stderr
    assert (here / "r.html").exists() and not (project.root / "r.html").exists()
    proc = project.run("-w", "--report", "w.html", "All")
    assert proc.returncode == 2 and "--report" in proc.stderr and "-w" in proc.stderr


def test_set_tracking_url_is_luigis_and_shows_as_the_message(project: Project) -> None:
    project.flowfile(
        """
        class T(flow.Task):
            def run(self):
                self.set_tracking_url("http://tracker.example/job/7")
        """
    )
    assert project.run("T").returncode == 0
    db = sqlite3.connect(project.root / ".flow" / "history.sqlite")
    messages = [r[0] for r in db.execute("SELECT * FROM tasks")]
    assert messages, "no task row"
    row = db.execute("SELECT * FROM tasks").fetchone()
    assert "tracking: http://tracker.example/job/7" in row


def test_a_full_disk_or_a_lock_never_moves_a_healthy_history_aside() -> None:
    """Found by a tester: "database or disk is full" counted as damage, and a good history was
    renamed away; only a damaged file is."""
    from flow.store.history import _damaged

    assert not _damaged(sqlite3.OperationalError("database or disk is full"))
    assert not _damaged(sqlite3.OperationalError("database is locked"))
    assert not _damaged(sqlite3.OperationalError("disk I/O error"))
    assert _damaged(sqlite3.OperationalError("database disk image is malformed"))
    assert _damaged(sqlite3.OperationalError("no such column: finished"))
