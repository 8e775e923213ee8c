"""The shared artifact cache (SPEC §10): clones restore what another clone built from the same
inputs, verified, and build normally whenever the cache is in any doubt."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from conftest import DEADLINE, Project, wait_until

PIPELINE = """
import os

import flow


class Raw(flow.ExternalTask):
    name = flow.Parameter()

    def output(self):
        return flow.LocalTarget(f"data/{self.name}.txt")


class Upper(flow.Task):
    name = flow.Parameter()

    def requires(self):
        return Raw(name=self.name)

    def output(self):
        return flow.LocalTarget(f"out/{self.name}.upper")

    def run(self):
        with self.input().open() as fin, self.output().open("w") as fout:
            fout.write(fin.read().upper())


class Parts(flow.Task):
    \"\"\"A directory output, with a nested file, an empty directory and an executable.\"\"\"

    def requires(self):
        return [Upper(name="a"), Upper(name="b")]

    def output(self):
        return flow.LocalTarget("out/parts")

    def run(self):
        with self.output().temporary_path() as tmp:
            os.makedirs(os.path.join(tmp, "nested", "deeper"))
            os.makedirs(os.path.join(tmp, "empty"))
            for i, target in enumerate(self.input()):
                with target.open() as fin, open(os.path.join(tmp, f"part{i}.txt"), "w") as f:
                    f.write(fin.read())
            with open(os.path.join(tmp, "nested", "deeper", "tool.sh"), "w") as f:
                f.write("#!/bin/sh\\necho hi\\n")
            os.chmod(os.path.join(tmp, "nested", "deeper", "tool.sh"), 0o755)


class Report(flow.Task):
    def requires(self):
        return Parts()

    def output(self):
        return flow.LocalTarget("out/report.txt")

    def run(self):
        names = sorted(os.listdir(self.input().path))
        with self.output().open("w") as f:
            f.write(",".join(names))
"""

ALL = ["Upper(name=a)", "Upper(name=b)", "Parts()", "Report()"]


def _clone(root: Path, flowfile: str = PIPELINE) -> Project:
    """A checkout of the same project in its own directory."""
    root.mkdir()
    p = Project(root)
    p.write("Flowfile.py", flowfile)
    p.write("data/a.txt", "alpha\n")
    p.write("data/b.txt", "beta\n")
    return p


def _statuses(doc: dict) -> dict[str, str]:
    return {t["task"]: t["status"] for t in doc["tasks"] if t["task"] in ALL}


def _build(p: Project, *args: str, env: dict[str, str] | None = None) -> tuple[int, dict, str]:
    proc = p.run("--json", *args, env=env)
    try:
        return proc.returncode, json.loads(proc.stdout), proc.stderr
    except json.JSONDecodeError:
        raise AssertionError(f"not JSON:\n{proc.stdout}\n{proc.stderr}") from None


def _tree(root: Path) -> dict[str, tuple[bytes | None, bool]]:
    """Every file and directory below ``root``: content and executable bit."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_dir():
            found[rel] = (None, False)
        else:
            found[rel] = (path.read_bytes(), os.access(path, os.X_OK))
    return found


def _entries(cache: Path) -> list[Path]:
    return sorted((cache / "v1" / "ac").rglob("*.json"))


def _entry_of(cache: Path, output: str) -> Path:
    for path in _entries(cache):
        if any(o["key"] == output for o in json.loads(path.read_text())["outputs"]):
            return path
    raise AssertionError(f"no entry holds {output}")


@pytest.fixture
def clones(tmp_path: Path) -> tuple[Project, Project, str]:
    return _clone(tmp_path / "a"), _clone(tmp_path / "b"), str(tmp_path / "cache")


def test_a_second_clone_restores_everything_runs_nothing_and_then_is_a_no_op(clones):
    """Clone A builds with a local cache; clone B in another directory restores every task,
    byte-identical (a directory output whole, its empty directory and modes too), and the
    following run is a no-op; -n said beforehand what the cache would restore."""
    a, b, cache = clones
    code, doc, err = _build(a, "--cache", cache, "Report")
    assert code == 0, err
    assert set(_statuses(doc).values()) == {"ran"}
    assert doc["summary"]["restored"] == 0
    code, plan, _ = _build(b, "--cache", cache, "-n", "Report")
    assert code == 0 and plan["would_restore"] == ALL
    assert all(p["would_restore"] for p in plan["plan"] if p["task"] in ALL)
    text = b.run("--cache", cache, "-n", "Report").stdout
    assert "4 of 4 tasks would run (4 from the cache)" in text
    assert "the cache would restore it" in text

    code, doc, err = _build(b, "--cache", cache, "Report")
    assert code == 0, err
    assert _statuses(doc) == dict.fromkeys(ALL, "restored")
    assert doc["summary"]["restored"] == 4 and doc["summary"]["ran"] == 0
    assert _tree(b.root / "out") == _tree(a.root / "out")
    assert (b.root / "out/parts/empty").is_dir()
    code, doc, _ = _build(b, "--cache", cache, "Report")
    assert _statuses(doc) == dict.fromkeys(ALL, "up-to-date")
    assert b.run("--check", "Report").returncode == 0  # the records are as if it had run


def test_task_lines_and_the_summary_say_restored(clones):
    """Without --json: each restored task's line says so, and the summary counts them."""
    a, b, cache = clones
    assert a.run("--cache", cache, "Report").returncode == 0
    proc = b.run("--cache", cache, "Report")
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("restored from the cache") == 5  # four task lines + the summary
    assert "4 tasks: 0 ran, 4 restored from the cache, 0 up to date" in proc.stdout


def test_an_edited_input_misses_only_the_tasks_downstream_of_it(clones):
    """B edits data/a.txt: Upper(a) and what depends on it run; Upper(b) is restored. The
    dry run said so too (a task below one that would run is never promised)."""
    a, b, cache = clones
    assert _build(a, "--cache", cache, "Report")[0] == 0
    b.write("data/a.txt", "ALTERED\n")
    code, plan, _ = _build(b, "--cache", cache, "-n", "Report")
    assert plan["would_restore"] == ["Upper(name=b)"]
    code, doc, err = _build(b, "--cache", cache, "Report")
    assert code == 0, err
    assert _statuses(doc) == {
        "Upper(name=a)": "ran",
        "Upper(name=b)": "restored",
        "Parts()": "ran",
        "Report()": "ran",
    }
    assert b.read("out/a.upper") == "ALTERED\n"


def test_flow_cache_in_the_environment_works_like_the_option(clones):
    """FLOW_CACHE=DIR with no option: A stores, B restores."""
    a, b, cache = clones
    env = {"FLOW_CACHE": cache}
    assert _build(a, "Report", env=env)[0] == 0
    code, doc, _ = _build(b, "Report", env=env)
    assert _statuses(doc) == dict.fromkeys(ALL, "restored")


def test_cache_in_tool_flow_is_relative_to_the_configuration_file(clones):
    """[tool.flow] cache = "../cache" names the directory beside the clones."""
    a, b, cache = clones
    for p in (a, b):
        p.write("pyproject.toml", '[tool.flow]\ncache = "../cache"\n')
    assert _build(a, "Report")[0] == 0
    assert _entries(Path(cache))
    code, doc, _ = _build(b, "Report")
    assert _statuses(doc) == dict.fromkeys(ALL, "restored")


def test_a_corrupted_object_is_detected_rebuilt_and_healed(clones, tmp_path):
    """An object whose bytes changed (same size) is a miss with a warning: the task runs and
    writes the right content; its new store heals the cache for the next clone."""
    a, b, cache = clones
    assert _build(a, "--cache", cache, "Report")[0] == 0
    entry = json.loads(_entry_of(Path(cache), "out/a.upper").read_text())
    digest = entry["outputs"][0]["sha256"]
    obj = Path(cache) / "v1" / "cas" / digest[:2] / digest
    obj.write_bytes(b"X" * obj.stat().st_size)
    code, doc, err = _build(b, "--cache", cache, "Report")
    assert code == 0, err
    assert _statuses(doc)["Upper(name=a)"] == "ran"
    assert "damaged" in err and "does not match its hash" in err
    assert b.read("out/a.upper") == "ALPHA\n"
    c = _clone(tmp_path / "c")
    code, doc, err = _build(c, "--cache", cache, "Report")
    assert _statuses(doc) == dict.fromkeys(ALL, "restored"), err
    assert c.read("out/a.upper") == "ALPHA\n"


def test_a_missing_object_in_a_directory_output_is_a_miss_leaving_nothing_behind(clones):
    """An entry naming an object that is gone: the task runs; no temporary is left."""
    a, b, cache = clones
    assert _build(a, "--cache", cache, "Report")[0] == 0
    entry = json.loads(_entry_of(Path(cache), "out/parts").read_text())
    digest = entry["outputs"][0]["files"][-1]["sha256"]
    (Path(cache) / "v1" / "cas" / digest[:2] / digest).unlink()
    code, doc, err = _build(b, "--cache", cache, "Report")
    assert code == 0, err
    assert _statuses(doc)["Parts()"] == "ran" and "is missing" in err
    assert _tree(b.root / "out") == _tree(a.root / "out")
    assert not [p for p in (b.root / "out").iterdir() if p.name.startswith(".")]


def test_a_truncated_entry_is_detected_and_the_task_rebuilt(clones):
    """An entry cut in half: one warning naming the task, which runs; the next store rewrites it."""
    a, b, cache = clones
    assert _build(a, "--cache", cache, "Report")[0] == 0
    path = _entry_of(Path(cache), "out/report.txt")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    code, doc, err = _build(b, "--cache", cache, "Report")
    assert code == 0, err
    assert _statuses(doc)["Report()"] == "ran"
    assert err.count("damaged") == 1 and "Report()" in err
    assert json.loads(path.read_text())["outputs"][0]["key"] == "out/report.txt"


def test_an_entry_that_climbs_out_of_its_directory_is_refused(clones, tmp_path):
    """A forged entry whose directory listing names ../escape: a miss; nothing is written
    outside the output."""
    a, b, cache = clones
    assert _build(a, "--cache", cache, "Report")[0] == 0
    path = _entry_of(Path(cache), "out/parts")
    entry = json.loads(path.read_text())
    entry["outputs"][0]["files"][0]["path"] = "../../escape.txt"
    path.write_text(json.dumps(entry))
    code, doc, err = _build(b, "--cache", cache, "Report")
    assert code == 0 and _statuses(doc)["Parts()"] == "ran"
    assert "leaves its directory" in err
    assert not (b.root / "escape.txt").exists() and not (tmp_path / "escape.txt").exists()


OPT_OUT = """
import flow
from flow.parameter import ParameterVisibility


class Stamp(flow.Task):
    cacheable = False

    def output(self):
        return flow.LocalTarget("out/stamp.txt")

    def run(self):
        with self.output().open("w") as f:
            f.write("side effect")


class Secret(flow.Task):
    token = flow.Parameter(default="s3cr3t", visibility=ParameterVisibility.PRIVATE)

    def output(self):
        return flow.LocalTarget("out/secret.txt")

    def run(self):
        with self.output().open("w") as f:
            f.write("made with a token")


class Hello(flow.Task):
    def output(self):
        return flow.LocalTarget("out/hello.txt")

    def run(self):
        with self.output().open("w") as f:
            f.write("hello")


class Phony(flow.Task):
    def run(self):
        pass


class All(flow.WrapperTask):
    def requires(self):
        return [Stamp(), Secret(), Hello(), Phony()]
"""


def test_cacheable_false_private_parameters_and_phony_tasks_always_run(tmp_path):
    """cacheable = False, a task with a private parameter and a phony task are never stored or
    restored; an ordinary task beside them is."""
    a, b = _clone(tmp_path / "a", OPT_OUT), _clone(tmp_path / "b", OPT_OUT)
    cache = str(tmp_path / "cache")
    assert _build(a, "--cache", cache, "All")[0] == 0
    assert len(_entries(Path(cache))) == 1  # Hello's
    assert "s3cr3t" not in "".join(p.read_text() for p in _entries(Path(cache)))
    code, doc, err = _build(b, "--cache", cache, "All")
    assert code == 0, err
    got = {t["task"]: t["status"] for t in doc["tasks"]}
    assert got["Hello()"] == "restored"
    assert got["Stamp()"] == got["Secret()"] == got["Phony()"] == "ran"


def test_force_rebuilds_instead_of_restoring(clones):
    """-B means rebuild: nothing is restored, and what ran is stored again."""
    a, b, cache = clones
    assert _build(a, "--cache", cache, "Report")[0] == 0
    code, doc, _ = _build(b, "--cache", cache, "-B", "Report")
    assert code == 0 and set(_statuses(doc).values()) == {"ran"}


def test_an_unusable_cache_is_one_warning_then_an_ordinary_build(clones, tmp_path):
    """The cache path lies under a regular file: one warning, everything runs, exit 0; a
    no-op build does not look at the cache at all."""
    a, _, _ = clones
    (tmp_path / "file").write_text("not a directory")
    bad = str(tmp_path / "file" / "cache")
    code, doc, err = _build(a, "--cache", bad, "Report")
    assert code == 0, err
    assert set(_statuses(doc).values()) == {"ran"}
    assert err.count("warning") == 1 and "unusable" in err
    code, doc, err = _build(a, "--cache", bad, "Report")
    assert code == 0 and "warning" not in err


def test_two_concurrent_writers_of_one_key_leave_a_sound_cache(tmp_path):
    """Two clones build the same tasks at the same moment into one cache (each task waits for
    its twin to start): both succeed, and a third clone restores everything, intact."""
    gate = tmp_path / "gate"
    gate.mkdir()
    flowfile = PIPELINE.replace(
        '        with self.input().open() as fin, self.output().open("w") as fout:',
        "        import pathlib, time\n"
        f"        gate = pathlib.Path({str(gate)!r})\n"
        "        (gate / f'{self.name}-{os.getpid()}').touch()\n"
        "        deadline = time.monotonic() + 60\n"
        "        while len(list(gate.glob(f'{self.name}-*'))) < 2 and time.monotonic() < deadline:\n"
        "            time.sleep(0.02)\n"
        '        with self.input().open() as fin, self.output().open("w") as fout:',
    )
    a, b = _clone(tmp_path / "a", flowfile), _clone(tmp_path / "b", flowfile)
    cache = str(tmp_path / "cache")
    runs = [p.start("--cache", cache, "Report") for p in (a, b)]
    for live in runs:
        code, _, err = live.finish()
        assert code == 0, err
    c = _clone(tmp_path / "c", flowfile)
    code, doc, err = _build(c, "--cache", cache, "Report")
    assert _statuses(doc) == dict.fromkeys(ALL, "restored"), err
    assert _tree(c.root / "out") == _tree(a.root / "out")
    assert not [p for p in Path(cache).rglob(".*") if p.is_file()]  # no temporaries left


def test_parallel_builds_store_and_restore(clones, tmp_path):
    """-j 2: the flow process restores and stores around the worker processes."""
    a, b, cache = clones
    code, doc, err = _build(a, "--cache", cache, "-j", "2", "Report")
    assert code == 0 and set(_statuses(doc).values()) == {"ran"}, err
    code, doc, err = _build(b, "--cache", cache, "-j", "2", "Report")
    assert code == 0 and _statuses(doc) == dict.fromkeys(ALL, "restored"), err
    b.write("data/b.txt", "changed\n")
    code, doc, err = _build(b, "--cache", cache, "-j", "2", "Report")
    assert code == 0, err
    assert _statuses(doc)["Upper(name=a)"] == "up-to-date"
    assert _statuses(doc)["Upper(name=b)"] == "ran"
    assert _tree(b.root / "out/parts")["part1.txt"][0] == b"CHANGED\n"


def test_the_key_holds_the_python_version_and_imported_distributions(tmp_path):
    """An entry keeps what its key is made of: the Python version, the version of a
    distribution the Flowfile imports, and one a task names in cache_env; no path of this
    machine."""
    flowfile = (
        "import click\n"
        + PIPELINE
        + "\n\nclass Pinned(Upper):\n    cache_env = ('pytest',)\n"
        + "    def output(self):\n        return flow.LocalTarget('out/pinned.txt')\n"
    )
    a = _clone(tmp_path / "a", flowfile)
    cache = tmp_path / "cache"
    assert _build(a, "--cache", str(cache), "Pinned", "name=a")[0] == 0
    from importlib import metadata

    recipe = json.loads(_entry_of(cache, "out/pinned.txt").read_text())["recipe"]
    major, minor = sys.version_info[:2]
    assert recipe["env"]["python"].endswith(f"-{major}.{minor}")
    assert recipe["env"]["click"] == metadata.version("click")
    assert recipe["env"]["pytest"] == pytest.__version__
    assert str(tmp_path) not in json.dumps(recipe)


def _sized_pipeline(n: int) -> str:
    return (
        "import flow\n\n"
        "class Blob(flow.Task):\n"
        "    i = flow.IntParameter()\n"
        "    def output(self):\n"
        "        return flow.LocalTarget(f'out/blob{self.i}.bin')\n"
        "    def run(self):\n"
        "        with self.output().open('wb') as f:\n"
        "            f.write(bytes([self.i]) * 10_000)\n\n"
        "class Blobs(flow.WrapperTask):\n"
        "    def requires(self):\n"
        f"        return [Blob(i=i) for i in range({n})]\n"
    )


def test_prune_keeps_the_most_recently_used_entries_that_fit(tmp_path):
    """Five 10 kB entries, the oldest used first; a prune to 25kB keeps the two used last,
    removes the rest with their objects, and a clone restores exactly those two."""
    a = _clone(tmp_path / "a", _sized_pipeline(5))
    cache = tmp_path / "cache"
    assert _build(a, "--cache", str(cache), "Blobs")[0] == 0
    now = time.time()
    for i in range(5):  # Blob(i) was last used i hours ago... reversed: blob4 newest
        entry = _entry_of(cache, f"out/blob{i}.bin")
        os.utime(entry, (now - 3600 * (5 - i), now - 3600 * (5 - i)))
    proc = a.run("--cache", str(cache), "--cache-prune", "25kB", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "removed 3 entries and 3 objects" in proc.stdout
    assert len(_entries(cache)) == 2
    assert len([p for p in (cache / "v1" / "cas").rglob("*") if p.is_file()]) == 2
    b = _clone(tmp_path / "b", _sized_pipeline(5))
    code, doc, _ = _build(b, "--cache", str(cache), "Blobs")
    got = {t["task"]: t["status"] for t in doc["tasks"] if t["task"].startswith("Blob(")}
    assert got == {
        "Blob(i=0)": "ran",
        "Blob(i=1)": "ran",
        "Blob(i=2)": "ran",
        "Blob(i=3)": "restored",
        "Blob(i=4)": "restored",
    }


def test_a_restore_renews_an_entry_for_pruning(tmp_path):
    """Restoring an entry counts as a use: an old entry just restored outlives a newer one."""
    a = _clone(tmp_path / "a", _sized_pipeline(2))
    cache = tmp_path / "cache"
    assert _build(a, "--cache", str(cache), "Blobs")[0] == 0
    old = _entry_of(cache, "out/blob0.bin")
    os.utime(old, (time.time() - 86400, time.time() - 86400))
    b = _clone(tmp_path / "b", _sized_pipeline(2))
    (b.root / "out").mkdir()
    (b.root / "out/blob1.bin").write_bytes(bytes([1]) * 10_000)  # adopted: only blob0 restored
    code, doc, err = _build(b, "--cache", str(cache), "Blobs")
    assert code == 0, err
    assert old.stat().st_mtime > time.time() - 3600


def test_prune_needs_a_cache_and_a_size_it_understands(tmp_path):
    """No cache named: exit 2 saying how to name one; a bad size: exit 2 with the forms."""
    proc = Project(tmp_path).run("--cache-prune", "1GB", env={"FLOW_CACHE": ""})
    assert proc.returncode == 2 and "--cache-prune needs a cache" in proc.stderr
    proc = Project(tmp_path).run("--cache", str(tmp_path / "c"), "--cache-prune", "lots")
    assert proc.returncode == 2 and "500MB" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_a_local_cache_imports_no_fsspec(clones):
    """A build with a directory cache stays light: fsspec is for URLs only."""
    a, b, cache = clones
    assert a.run("--cache", cache, "Report").returncode == 0
    code = (
        "import sys, json\n"
        "from flow.cli import main\n"
        f"try:\n    main(['-q', '--cache', {cache!r}, 'Report'])\n"
        "except SystemExit as e:\n    code = e.code\n"
        "print(json.dumps([code, sorted(sys.modules)]))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=b.root, capture_output=True, text=True, timeout=60
    )
    status, loaded = json.loads(proc.stdout.strip().splitlines()[-1])
    assert status == 0 and (b.root / "out/report.txt").exists()
    assert "fsspec" not in loaded


# -- S3, against moto's server on 127.0.0.1 ------------------------------------------------------
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def s3(tmp_path: Path):
    """A moto S3 server on 127.0.0.1 with a bucket, and the environment that points s3fs at it."""
    pytest.importorskip("s3fs")
    pytest.importorskip("moto.server")
    boto3 = pytest.importorskip("boto3")
    port = _free_port()
    log = open(tmp_path / "moto.log", "w")  # noqa: SIM115 - closed below
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    endpoint = f"http://127.0.0.1:{port}"
    env = {
        "FSSPEC_S3_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    try:
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

        def bucket_made() -> bool:
            try:
                client.create_bucket(Bucket="flow-cache")
                return True
            except Exception:  # noqa: BLE001 - the server is still starting
                return server.poll() is not None and _raise_dead(server, tmp_path)

        wait_until(bucket_made, "moto's S3 server", timeout=DEADLINE)
        yield env, client
    finally:
        server.kill()
        server.wait(timeout=DEADLINE)
        log.close()


def _raise_dead(server: subprocess.Popen, tmp_path: Path) -> bool:
    raise AssertionError(f"moto exited {server.returncode}: {(tmp_path / 'moto.log').read_text()}")


def test_an_s3_cache_is_shared_verified_and_pruned(clones, s3):
    """The same flow against S3: A stores, B restores everything, an altered object is a miss,
    and --cache-prune trims the bucket."""
    env, client = s3
    a, b, _ = clones
    url = "s3://flow-cache/team"
    code, doc, err = _build(a, "--cache", url, "Report", env=env)
    assert code == 0 and set(_statuses(doc).values()) == {"ran"}, err
    code, doc, err = _build(b, "--cache", url, "Report", env=env)
    assert _statuses(doc) == dict.fromkeys(ALL, "restored"), err
    assert _tree(b.root / "out") == _tree(a.root / "out")

    keys = [o["Key"] for o in client.list_objects_v2(Bucket="flow-cache")["Contents"]]
    objects = [k for k in keys if "/v1/cas/" in k]
    for key in objects:
        client.put_object(Bucket="flow-cache", Key=key, Body=b"tampered")
    c = _clone(b.root.parent / "c")
    code, doc, err = _build(c, "--cache", url, "Report", env=env)
    assert code == 0 and set(_statuses(doc).values()) == {"ran"}, err
    assert "does not match its hash" in err
    assert c.read("out/a.upper") == "ALPHA\n"

    proc = c.run("--cache", url, "--cache-prune", "0", env=env)
    assert proc.returncode == 0, proc.stderr
    left = client.list_objects_v2(Bucket="flow-cache").get("Contents", [])
    assert left == []


def test_credentials_in_a_cache_url_are_never_shown(clones):
    """A URL flow cannot use (an unknown protocol) carrying user:password@ and a query: one
    warning naming the URL without them, and an ordinary build."""
    pytest.importorskip("fsspec")
    a, _, _ = clones
    url = "nosuchproto://someone:hunter2@example.invalid/cache?token=abc123"
    code, doc, err = _build(a, "--cache", url, "Report")
    assert code == 0 and set(_statuses(doc).values()) == {"ran"}, err
    assert "nosuchproto://example.invalid/cache" in err and err.count("warning") == 1
    assert "hunter2" not in err + json.dumps(doc) and "abc123" not in err + json.dumps(doc)


def test_flow_build_takes_the_cache_and_lists_restored_tasks(clones):
    """The library entry point: flow.build(..., cache=DIR); result.restored names the tasks,
    and subscribers hear each restored task finish, never start."""
    a, b, cache = clones
    assert _build(a, "--cache", cache, "Report")[0] == 0
    script = (
        "import json, os, sys\n"
        "sys.path.insert(0, os.getcwd())\n"
        "import flow\n"
        "from flow.report import Reporter\n"
        "from Flowfile import Report\n"
        "class Heard:\n"
        "    started, finished = [], []\n"
        "    def task_started(self, tid, k, n): self.started.append(tid)\n"
        "    def task_finished(self, r, k, n): self.finished.append([r.task_id, r.status])\n"
        "heard = Heard()\n"
        f"result = flow.build([Report()], cache={cache!r}, reporter=Reporter(quiet=True),\n"
        "                     subscribers=(heard,))\n"
        "print(json.dumps([bool(result), result.restored, result.ran, heard.started,\n"
        "                  heard.finished]))\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", script], cwd=b.root, capture_output=True, text=True, timeout=60
    )
    ok, restored, ran, started, finished = json.loads(proc.stdout.strip().splitlines()[-1])
    assert ok and sorted(restored) == sorted(ALL) and ran == []
    # A restored task never started (Luigi's START handlers do not fire): it only finished.
    assert started == [] and finished == [[tid, "restored"] for tid in ALL]


def test_outputs_outside_the_project_are_never_cached(tmp_path):
    """A task writing outside its project (an absolute path: no clone shares it) always runs;
    a task beside it in the project is restored."""
    elsewhere = tmp_path / "elsewhere"
    flowfile = OPT_OUT.replace(
        'return flow.LocalTarget("out/stamp.txt")', f"return flow.LocalTarget({str(elsewhere)!r})"
    ).replace("    cacheable = False\n", "")
    a, b = _clone(tmp_path / "a", flowfile), _clone(tmp_path / "b", flowfile)
    cache = str(tmp_path / "cache")
    assert _build(a, "--cache", cache, "All")[0] == 0
    elsewhere.unlink()
    code, doc, err = _build(b, "--cache", cache, "All")
    got = {t["task"]: t["status"] for t in doc["tasks"]}
    assert code == 0 and got["Stamp()"] == "ran" and got["Hello()"] == "restored", err


TWO = """
import flow


class First(flow.Task):
    def output(self):
        return flow.LocalTarget("blocked/x.txt")

    def run(self):
        with self.output().open("w") as f:
            f.write("x")


class Second(flow.Task):
    def output(self):
        return flow.LocalTarget("free/y.txt")

    def run(self):
        with self.output().open("w") as f:
            f.write("y")


class Both(flow.WrapperTask):
    def requires(self):
        return [First(), Second()]
"""


def test_a_restore_the_project_cannot_take_is_a_miss_for_that_task_only(tmp_path):
    """In B a file stands where First's output directory belongs: its restore fails (a warning
    naming it, then it runs and fails as it would), and the cache still serves Second."""
    a, b = _clone(tmp_path / "a", TWO), _clone(tmp_path / "b", TWO)
    cache = str(tmp_path / "cache")
    assert _build(a, "--cache", cache, "Both")[0] == 0
    b.write("blocked", "a file, not a directory")
    code, doc, err = _build(b, "--cache", cache, "-k", "Both")
    got = {t["task"]: t["status"] for t in doc["tasks"]}
    assert code == 1 and got["First()"] == "failed" and got["Second()"] == "restored", err
    assert "cannot restore the outputs of First()" in err and "unusable" not in err


def test_show_config_says_the_cache_came_from_flow_cache(clones):
    """FLOW_CACHE beats [tool.flow] cache, and --show-config names it as the source."""
    a, _, cache = clones
    a.write("pyproject.toml", '[tool.flow]\ncache = "elsewhere"\n')
    proc = a.run("--json", "--show-config", env={"FLOW_CACHE": cache})
    option = json.loads(proc.stdout)["options"]["cache"]
    assert option["value"] == cache and option["from"] == "FLOW_CACHE"
    assert "# FLOW_CACHE" in a.run("--show-config", env={"FLOW_CACHE": cache}).stdout


def test_credentials_in_an_unusable_cache_url_never_show(clones):
    """Found by a tester: a store's message quoted the URL as given, password and signature
    included; --show-config printed it too."""
    a, _, _ = clones
    url = "https://bob:hunter2@127.0.0.1:9/c?sig=SECRETSIG"
    code, doc, err = _build(a, "--cache", url, "Report")
    assert code == 0, err
    assert "hunter2" not in err + json.dumps(doc) and "SECRETSIG" not in err + json.dumps(doc)
    shown = a.run("--show-config", env={"FLOW_CACHE": "ftp://bob:hunter2@h/c?token=abcdef"})
    assert "hunter2" not in shown.stdout + shown.stderr
    assert "abcdef" not in shown.stdout + shown.stderr


def test_prune_with_dry_run_is_refused_and_deletes_nothing(clones):
    """Found by a tester: `flow -n --cache-prune 0` emptied the cache."""
    a, _, cache = clones
    assert _build(a, "--cache", cache, "Report")[0] == 0
    before = sorted(p.name for p in Path(cache).rglob("*"))
    proc = a.run("-n", "--cache", cache, "--cache-prune", "0")
    assert proc.returncode == 2 and "-n" in proc.stderr
    assert sorted(p.name for p in Path(cache).rglob("*")) == before


def test_a_silent_s3_cache_is_one_warning_then_a_normal_build(clones):
    """Found by a tester: an S3 endpoint that accepts and never answers hung the upload after
    the build; the cache's filesystem now has the remote targets' bounded timeouts."""
    pytest.importorskip("s3fs")
    from servers import black_hole

    a, _, _ = clones
    with black_hole() as port:
        env = {
            "FSSPEC_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}",
            "AWS_ACCESS_KEY_ID": "x",
            "AWS_SECRET_ACCESS_KEY": "y",
            "FLOW_REMOTE_TIMEOUT": "1",
        }
        proc = a.run("-B", "--cache", "s3://flowcache/c", "Report", env=env, timeout=240)
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr.count("warning") >= 1 and "s3://flowcache/c" in proc.stderr


def test_a_directory_output_named_with_a_trailing_slash_is_restored(tmp_path):
    """Found by a tester: LocalTarget("out/gen/") was stored but never restored."""
    flowfile = """
import os
import flow

class Gen(flow.Task):
    def output(self):
        return flow.LocalTarget("out/gen/")
    def run(self):
        os.makedirs("out/gen", exist_ok=True)
        with open("out/gen/a.txt", "w") as f:
            f.write("generated")
"""
    a, b = _clone(tmp_path / "a", flowfile), _clone(tmp_path / "b", flowfile)
    cache = str(tmp_path / "cache")
    assert _build(a, "--cache", cache, "Gen")[0] == 0
    code, doc, err = _build(b, "--cache", cache, "Gen")
    assert code == 0 and "warning" not in err, err
    assert [t["status"] for t in doc["tasks"]] == ["restored"]
    assert (b.root / "out" / "gen" / "a.txt").read_text() == "generated"
