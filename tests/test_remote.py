"""Remote targets: memory:// through flow.build, and real S3 (moto) and FTP (pyftpdlib) servers
on 127.0.0.1 driven by `flow` as a subprocess."""

from __future__ import annotations

import io
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import servers
from servers import FTP, S3, closed_port, env_without_proxies, start_ftp, start_s3

fsspec = pytest.importorskip("fsspec", reason="fsspec is not installed: pip install -e '.[test]'")

import flow  # noqa: E402
from flow.remote import RemoteError, RemoteTarget, redact  # noqa: E402

_names = itertools.count()


# -- memory:// in-process: every staleness reason, fast -------------------------------------


@pytest.fixture
def mem(tmp_path, monkeypatch):
    """A fresh memory:// prefix, and the project directory as the working directory."""
    monkeypatch.chdir(tmp_path)
    return f"memory://t{next(_names)}-{os.getpid()}"


def _pipeline(prefix: str):
    class Source(flow.ExternalTask):
        def output(self):
            return flow.RemoteTarget(f"{prefix}/in/data.txt")

    class Upper(flow.Task):
        n = flow.IntParameter(default=1)

        def requires(self):
            return Source()

        def output(self):
            return flow.RemoteTarget(f"{prefix}/out/upper.txt")

        def run(self):
            with self.input().open() as fin, self.output().open("w") as fout:
                fout.write(fin.read().upper() * self.n)

    class Count(flow.Task):
        def requires(self):
            return Upper()

        def output(self):
            return flow.RemoteTarget(f"{prefix}/out/count.txt")

        def run(self):
            with self.input().open() as fin, self.output().open("w") as fout:
                fout.write(str(len(fin.read())))

    return Source, Upper, Count


def _write(url: str, text: str) -> None:
    fs = fsspec.filesystem("memory")
    fs.pipe(fs._strip_protocol(url), text.encode())


def _read(url: str) -> str:
    fs = fsspec.filesystem("memory")
    return fs.cat(fs._strip_protocol(url)).decode()


def _reasons(result, tid):
    return [r.kind for r in result.plan.decisions[tid].reasons]


def test_memory_targets_build_then_no_op(mem):
    """A remote pipeline builds, and a second build runs nothing."""
    _, Upper, Count = _pipeline(mem)
    _write(f"{mem}/in/data.txt", "abc")
    first = flow.build([Count()], reporter=_quiet())
    assert first and first.ran == ["Upper(n=1)", "Count()"]
    assert _read(f"{mem}/out/count.txt") == "3"
    assert flow.build([Count()], reporter=_quiet()).ran == []


def test_remote_input_change_reruns_and_identical_output_cuts_off(mem):
    """An edited remote input gives input-changed; a rerun writing the same bytes stops there."""
    _, Upper, Count = _pipeline(mem)
    _write(f"{mem}/in/data.txt", "abc")
    flow.build([Count()], reporter=_quiet())
    _write(f"{mem}/in/data.txt", "xyz")
    plan = flow.build([Count()], dry_run=True, reporter=_quiet())
    assert _reasons(plan, "Upper(n=1)") == ["input-changed"]
    result = flow.build([Count()], reporter=_quiet())
    # Upper wrote XYZ: same length, so Count's input changed and it ran.
    assert result.ran == ["Upper(n=1)", "Count()"]
    _write(f"{mem}/in/data.txt", "XYZ")  # Upper writes the same bytes again: early cutoff
    assert flow.build([Count()], reporter=_quiet()).ran == ["Upper(n=1)"]


def test_remote_params_changed_and_output_modified(mem):
    """params-changed and output-modified work on remote outputs as on local files."""
    _, Upper, _ = _pipeline(mem)
    _write(f"{mem}/in/data.txt", "ab")
    flow.build([Upper(n=1)], reporter=_quiet())
    plan = flow.build([Upper(n=2)], dry_run=True, reporter=_quiet())
    assert _reasons(plan, "Upper(n=2)") == ["params-changed"]
    _write(f"{mem}/out/upper.txt", "edited by hand")
    plan = flow.build([Upper(n=1)], dry_run=True, reporter=_quiet())
    assert plan.plan.to_run == []  # a hand edit is kept, as for local files
    assert "output-modified" in _reasons(plan, "Upper(n=1)")


def test_failed_write_leaves_no_remote_object(mem):
    """An exception inside `with target.open('w')` uploads nothing; the task fails."""

    class Half(flow.Task):
        def output(self):
            return flow.RemoteTarget(f"{mem}/half.txt")

        def run(self):
            with self.output().open("w") as f:
                f.write("partial")
                raise RuntimeError("boom mid-write")

    result = flow.build([Half()], reporter=_quiet())
    assert result.failed == ["Half()"]
    assert not flow.RemoteTarget(f"{mem}/half.txt").exists()


def test_remote_output_written_directly_by_a_failed_task_is_removed(mem):
    """SPEC §4: what a failed task wrote to its output by hand is removed, remote too."""

    class Direct(flow.Task):
        def output(self):
            return flow.RemoteTarget(f"{mem}/direct.txt")

        def run(self):
            _write(f"{mem}/direct.txt", "written around the atomic writer")
            raise RuntimeError("then failed")

    assert flow.build([Direct()], reporter=_quiet()).failed == ["Direct()"]
    assert not flow.RemoteTarget(f"{mem}/direct.txt").exists()


def test_task_not_writing_its_remote_output_fails_naming_it(mem):
    class Lazy(flow.Task):
        def output(self):
            return flow.RemoteTarget(f"{mem}/never.txt")

        def run(self):
            pass

    result = flow.build([Lazy()], reporter=_quiet())
    assert result.failed == ["Lazy()"]
    assert f"{mem}/never.txt" in result.results["Lazy()"].error


def test_remote_directory_output_fingerprints_its_files(mem):
    """A directory output is fingerprinted from the files under it."""
    t = flow.RemoteTarget(f"{mem}/dir")
    _write(f"{mem}/dir/a.txt", "1")
    _write(f"{mem}/dir/b.txt", "2")
    first = t.info()
    assert first.exists and first.fingerprint.startswith("tree:")
    _write(f"{mem}/dir/b.txt", "3")
    assert t.info().fingerprint != first.fingerprint


def test_files_accepts_a_remote_glob(mem):
    """flow.Files("memory://.../*.csv"): a new matching object is an input change."""

    class Merge(flow.Task):
        def requires(self):
            return flow.Files(f"{mem}/raw/*.csv")

        def output(self):
            return flow.RemoteTarget(f"{mem}/merged.csv")

        def run(self):
            with self.output().open("w") as out:
                for t in self.input():
                    with t.open() as f:
                        out.write(f.read())

    _write(f"{mem}/raw/a.csv", "a\n")
    assert flow.build([Merge()], reporter=_quiet()).ran == ["Merge()"]
    assert flow.build([Merge()], reporter=_quiet()).ran == []
    _write(f"{mem}/raw/b.csv", "b\n")
    assert flow.build([Merge()], reporter=_quiet()).ran == ["Merge()"]
    assert _read(f"{mem}/merged.csv") == "a\nb\n"


def test_target_for_picks_local_or_remote(tmp_path):
    assert isinstance(flow.target_for("out/x.txt"), flow.LocalTarget)
    assert isinstance(flow.target_for(f"file://{tmp_path}/x"), flow.LocalTarget)
    remote = flow.target_for("memory://b/x.txt")
    assert isinstance(remote, RemoteTarget) and remote.path == "memory://b/x.txt"


def test_urls_are_shown_and_recorded_without_credentials():
    assert redact("ftp://ann:pw123@host:2121/a/b.txt") == "ftp://host:2121/a/b.txt"
    assert redact("https://x.blob/c/d?sv=1&sig=SECRET") == "https://x.blob/c/d?sv=1&sig=***"
    t = flow.FTPTarget("/a/b.txt", "host", username="ann", password="pw123")
    assert "pw123" not in repr(t) + t.path + t.key + t.url
    assert flow.S3Target("s3://bucket/k").path == "s3://bucket/k"


def test_a_local_path_is_refused_as_a_remote_target():
    with pytest.raises(RemoteError, match="LocalTarget"):
        flow.RemoteTarget("out/x.txt")


def test_missing_protocol_library_names_the_package(project):
    """A protocol whose library is not installed is a clear planning error (exit 2)."""
    pytest.importorskip("fsspec")
    try:
        import gcsfs  # noqa: F401

        pytest.skip("gcsfs is installed here")
    except ImportError:
        pass
    project.flowfile(
        """
        class G(flow.Task):
            def output(self):
                return flow.RemoteTarget("gs://bucket/x.txt")
            def run(self):
                pass
        """
    )
    proc = project.run("G")
    assert proc.returncode == 2, proc.stderr
    assert "gcsfs" in proc.stderr and "flow-build[remote]" in proc.stderr
    assert "Traceback" not in proc.stderr


def _quiet():
    from flow.report import Reporter

    return Reporter(quiet=True, out=io.StringIO(), err=io.StringIO())


# -- real servers ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def s3(tmp_path_factory) -> S3:
    server = start_s3(tmp_path_factory.mktemp("s3"))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def ftp(tmp_path_factory) -> FTP:
    server = start_ftp(tmp_path_factory.mktemp("ftp"))
    yield server
    server.stop()


PIPELINE = """
import os, time

BUCKET = os.environ["BUCKET"]
FTP_URL = os.environ["FTP_URL"]

class Raw(flow.ExternalTask):
    def output(self):
        return flow.S3Target(f"s3://{BUCKET}/in/data.txt")

class Publish(flow.Task):
    def requires(self):
        return Raw()
    def output(self):
        return flow.RemoteTarget(FTP_URL + "/pub/report.txt")
    def run(self):
        with self.input().open() as fin, self.output().open("w") as fout:
            text = fin.read()
            fout.write(text.upper())
            if "FAIL" in text:
                raise RuntimeError("the data says FAIL")
            if "HANG" in text:
                open("writing", "w").close()
                time.sleep(600)

class Many(flow.WrapperTask):
    n = flow.IntParameter(default=40)
    def requires(self):
        return [Copy(i=i) for i in range(self.n)]

class Copy(flow.Task):
    i = flow.IntParameter()
    def requires(self):
        return Raw()
    def output(self):
        return flow.S3Target(f"s3://{BUCKET}/copies/{self.i}.txt")
    def run(self):
        with self.input().open() as fin, self.output().open("w") as fout:
            fout.write(fin.read())
"""


@pytest.fixture
def remote_project(project, s3, ftp):
    """A project reading s3://BUCKET/in/data.txt and publishing to the FTP server."""
    bucket = s3.bucket(f"b{next(_names)}-{os.getpid()}")
    s3.client().put_object(Bucket=bucket, Key="in/data.txt", Body=b"hello remote\n")
    sub = f"p{next(_names)}"
    (ftp.root / sub).mkdir()
    env = {**env_without_proxies(), **s3.env, "BUCKET": bucket, "FTP_URL": ftp.url(sub)}
    project.flowfile(PIPELINE)
    project.env = env
    project.bucket = bucket
    project.ftp_dir = ftp.root / sub
    return project


def _flow(p, *args, env=None, timeout=120):
    return subprocess.run(
        [sys.executable, "-m", "flow", *args],
        cwd=p.root,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**p.env, "NO_COLOR": "1", **(env or {})},
    )


def _data_gets(lines: list[str], key: str) -> list[str]:
    """Requests that read an object's bytes (GET of the key, not a listing or a HEAD)."""
    return [line for line in lines if re.search(rf'"GET /[^ ?]+/{re.escape(key)}[ ?]', line)]


def test_s3_to_ftp_pipeline_builds_and_no_op_reads_no_data(remote_project, s3):
    """S3 input -> FTP output; the no-op makes no data GET of the input."""
    p = remote_project
    first = _flow(p, "Publish")
    assert first.returncode == 0, first.stderr
    assert (p.ftp_dir / "pub" / "report.txt").read_text() == "HELLO REMOTE\n"
    mark = s3.mark()
    second = _flow(p, "--json", "Publish")
    assert second.returncode == 0, second.stderr
    statuses = {t["task"]: t["status"] for t in json.loads(second.stdout)["tasks"]}
    assert statuses == {"Publish()": "up-to-date"}
    assert _data_gets(s3.since(mark), "in/data.txt") == []


def test_edited_s3_object_is_input_changed(remote_project, s3):
    p = remote_project
    assert _flow(p, "Publish").returncode == 0
    s3.client().put_object(Bucket=p.bucket, Key="in/data.txt", Body=b"new data\n")
    plan = json.loads(_flow(p, "-n", "--json", "Publish").stdout)["plan"]
    publish = next(e for e in plan if e["task"] == "Publish()")
    assert publish["reasons"][0]["kind"] == "input-changed"
    assert _flow(p, "Publish").returncode == 0
    assert (p.ftp_dir / "pub" / "report.txt").read_text() == "NEW DATA\n"


def test_task_raising_mid_write_leaves_no_ftp_object(remote_project, s3):
    p = remote_project
    s3.client().put_object(Bucket=p.bucket, Key="in/data.txt", Body=b"FAIL\n")
    proc = _flow(p, "Publish")
    assert proc.returncode == 1
    assert "the data says FAIL" in proc.stderr + proc.stdout
    pub = p.ftp_dir / "pub"
    assert not (pub / "report.txt").exists()
    assert not list(pub.glob("*")) if pub.exists() else True  # no temporary left either


def test_killed_flow_leaves_no_object_under_the_name(remote_project, s3):
    """SIGKILL while the task is writing: nothing under the target's name, and the next run
    builds it."""
    p = remote_project
    s3.client().put_object(Bucket=p.bucket, Key="in/data.txt", Body=b"HANG\n")
    proc = subprocess.Popen(
        [sys.executable, "-m", "flow", "Publish"],
        cwd=p.root,
        env={**p.env, "NO_COLOR": "1"},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while not (p.root / "writing").exists():
        assert proc.poll() is None and time.monotonic() < deadline, "the task never started"
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=60)
    assert not (p.ftp_dir / "pub" / "report.txt").exists()
    s3.client().put_object(Bucket=p.bucket, Key="in/data.txt", Body=b"fine\n")
    again = _flow(p, "Publish")
    assert again.returncode == 0, again.stderr
    assert (p.ftp_dir / "pub" / "report.txt").read_text() == "FINE\n"


def test_wrong_ftp_password_is_a_clean_error_without_the_password(remote_project, ftp):
    p = remote_project
    wrong = "Wr0ngPassw0rd!"
    url = p.env["FTP_URL"].replace(ftp.password, wrong)
    proc = _flow(p, "Publish", env={"FTP_URL": url})
    assert proc.returncode == 2, proc.stderr
    assert "530" in proc.stderr or "uthentication" in proc.stderr or "login" in proc.stderr
    assert "ftp://127.0.0.1" in proc.stderr
    assert wrong not in proc.stderr + proc.stdout
    assert ftp.password not in proc.stderr + proc.stdout
    assert "Traceback" not in proc.stderr


def test_unreachable_servers_fail_within_the_timeout(remote_project):
    """A refused S3 endpoint and FTP port: a clean error naming the URL, quickly."""
    p = remote_project
    port = closed_port()
    started = time.monotonic()
    proc = _flow(
        p,
        "Publish",
        env={"FSSPEC_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}", "FLOW_REMOTE_TIMEOUT": "3"},
    )
    assert proc.returncode == 2, proc.stderr
    assert f"s3://{p.bucket}/in/data.txt" in proc.stderr and "Traceback" not in proc.stderr
    ftp_proc = _flow(p, "Publish", env={"FTP_URL": f"ftp://u:pw12345@127.0.0.1:{port}/x"})
    assert ftp_proc.returncode == 2 and "refused" in ftp_proc.stderr.lower()
    assert "pw12345" not in ftp_proc.stderr
    assert time.monotonic() - started < 90  # bounded: no hang


def test_credentials_never_leave_the_process(remote_project, ftp):
    """The FTP password is in the URL the Flowfile uses; it appears in no output and not in .flow/."""
    p = remote_project
    outputs = [
        _flow(p, "Publish"),
        _flow(p, "--json", "Publish"),
        _flow(p, "-n", "--json", "-B", "Publish"),
        _flow(p, "--graph", "json", "Publish"),
        _flow(p, "--list"),
        _flow(p, "-n", "--explain", "Publish"),
    ]
    for proc in outputs:
        assert ftp.password not in proc.stdout + proc.stderr
    for path in (p.root / ".flow").rglob("*"):
        if path.is_file():
            assert ftp.password.encode() not in path.read_bytes(), path


def test_parallel_workers_open_remote_targets_themselves(remote_project, s3):
    """-j 2: workers build their own filesystems from the task spec."""
    p = remote_project
    proc = _flow(p, "-j", "2", "Many", "n=6")
    assert proc.returncode == 0, proc.stderr
    keys = {
        o["Key"] for o in s3.client().list_objects_v2(Bucket=p.bucket, Prefix="copies/")["Contents"]
    }
    assert keys == {f"copies/{i}.txt" for i in range(6)}


def test_no_op_of_many_s3_outputs_lists_instead_of_asking_each(remote_project, s3):
    """40 outputs under one prefix: the no-op makes a handful of requests, not 40."""
    p = remote_project
    assert _flow(p, "Many").returncode == 0
    mark = s3.mark()
    proc = _flow(p, "--json", "Many")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["summary"]["ran"] == 0
    requests = [line for line in s3.since(mark) if '"' in line]
    assert len(requests) < 10, requests


def test_s3_credentials_from_storage_options(project, s3):
    """Storage options given to the target are used (and win over the environment)."""
    bucket = s3.bucket(f"opt{next(_names)}-{os.getpid()}")
    project.flowfile(
        f"""
        class W(flow.Task):
            def output(self):
                return flow.S3Target("s3://{bucket}/w.txt", endpoint_url="{s3.url}",
                                     key="testing", secret="testing-secret-key")
            def run(self):
                with self.output().open("w") as f:
                    f.write("via options")
        """
    )
    env = {k: v for k, v in env_without_proxies().items() if not k.startswith(("AWS_", "FSSPEC"))}
    env["AWS_DEFAULT_REGION"] = "us-east-1"
    proc = subprocess.run(
        [sys.executable, "-m", "flow", "W"],
        cwd=project.root,
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr
    body = s3.client().get_object(Bucket=bucket, Key="w.txt")["Body"].read()
    assert body == b"via options"
    assert "testing-secret-key" not in proc.stdout + proc.stderr


def test_missing_bucket_is_a_clean_error(project, s3):
    project.flowfile(
        """
        class Raw(flow.ExternalTask):
            def output(self):
                return flow.S3Target("s3://no-such-bucket-here/in.txt")
        class Use(flow.Task):
            def requires(self):
                return Raw()
            def output(self):
                return flow.LocalTarget("out.txt")
            def run(self):
                pass
        """
    )
    proc = project.run("Use", env={**s3.env})
    assert proc.returncode == 1, proc.stderr  # a missing external input, found while planning
    assert "s3://no-such-bucket-here/in.txt" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr


def test_remote_directory_in_a_real_bucket(s3, tmp_path, monkeypatch):
    """A prefix as a directory target: its fingerprint follows its objects."""
    monkeypatch.setenv("FSSPEC_S3_ENDPOINT_URL", s3.url)
    for k, v in s3.env.items():
        monkeypatch.setenv(k, v)
    import fsspec.config

    monkeypatch.setitem(fsspec.config.conf, "s3", {"endpoint_url": s3.url})
    bucket = s3.bucket(f"dir{next(_names)}-{os.getpid()}")
    client = s3.client()
    client.put_object(Bucket=bucket, Key="d/a.txt", Body=b"1")
    t = flow.S3Target(f"s3://{bucket}/d")
    first = t.info()
    assert first.exists and first.fingerprint.startswith("tree:")
    client.put_object(Bucket=bucket, Key="d/b.txt", Body=b"2")
    assert t.info().fingerprint != first.fingerprint
    t.remove()
    assert not t.exists()


def test_path_helpers_have_no_secret(remote_project, ftp):
    p = remote_project
    url = p.env["FTP_URL"] + "/pub/report.txt"
    t = flow.RemoteTarget(url)
    assert ftp.password not in t.path and t.path.startswith("ftp://127.0.0.1:")
    assert Path(str(p.root)).exists()


def test_listing_a_flowfile_with_remote_targets_imports_no_store_library(project):
    """--list and completion of a remote pipeline do not import fsspec or s3fs: targets make
    their filesystem on first use."""
    project.flowfile(PIPELINE)
    code = (
        "import sys, json\n"
        "from flow.cli import main\n"
        "try:\n    main(['--list'])\nexcept SystemExit as e:\n    pass\n"
        "print(json.dumps(sorted(sys.modules)))"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code],
        cwd=project.root,
        capture_output=True,
        text=True,
        env={**os.environ, "BUCKET": "b", "FTP_URL": "ftp://u:p@127.0.0.1:1/x"},
    )
    loaded = set(json.loads(proc.stdout.strip().splitlines()[-1]))
    assert "Publish" in proc.stdout
    assert not loaded & {"fsspec", "s3fs", "botocore", "ftplib"}


def test_ftp_login_from_netrc(remote_project, ftp, tmp_path):
    """An ftp:// URL without credentials takes them from ~/.netrc, as ftp(1) does."""
    p = remote_project
    home = tmp_path / "home"
    home.mkdir()
    netrc = home / ".netrc"
    netrc.write_text(f"machine 127.0.0.1 login {ftp.user} password {ftp.password}\n")
    netrc.chmod(0o600)
    bare = p.env["FTP_URL"].replace(f"{ftp.user}:{ftp.password}@", "")
    proc = _flow(p, "Publish", env={"FTP_URL": bare, "HOME": str(home)})
    assert proc.returncode == 0, proc.stderr
    assert (p.ftp_dir / "pub" / "report.txt").read_text() == "HELLO REMOTE\n"


def test_bad_timeout_setting_is_a_clean_error(remote_project):
    proc = _flow(remote_project, "Publish", env={"FLOW_REMOTE_TIMEOUT": "soon"})
    assert proc.returncode == 2
    assert "FLOW_REMOTE_TIMEOUT" in proc.stderr and "Traceback" not in proc.stderr


def test_a_dropped_ftp_connection_is_reopened(tmp_path):
    """The FTP server restarts (or drops an idle client, as between watch-mode rebuilds): the
    next look connects afresh instead of failing."""
    first = start_ftp(tmp_path)
    try:
        t = flow.RemoteTarget(first.url("kept.txt"))
        with t.open("w") as f:
            f.write("kept")
        assert t.exists()
    finally:
        first.stop()
    second = FTP(first.root, tmp_path / "ftp2.log", port=first.port)
    try:
        assert t.exists() and t.open().read() == "kept"
    finally:
        second.stop()


def test_a_bucket_or_server_root_is_never_removed():
    """A failed task's cleanup removes what it wrote; a whole bucket or "/" is refused instead."""
    for url in ("s3://some-bucket", "s3://some-bucket/", "ftp://127.0.0.1:1/", "memory://"):
        with pytest.raises(RemoteError, match="refusing to remove"):
            flow.RemoteTarget(url).remove()


def test_remote_target_applies_a_format(mem):
    """format=Gzip compresses on the way up and decompresses on the way down; Nop is bytes."""
    import gzip

    from flow import format as fmt

    t = flow.RemoteTarget(f"{mem}/data.gz", format=fmt.Gzip)
    with t.open("w") as f:
        f.write(b"compressed bytes")
    raw = fsspec.filesystem("memory").cat(t.fs_path)
    assert gzip.decompress(raw) == b"compressed bytes"
    with t.open("r") as f:
        assert f.read() == b"compressed bytes"
    nop = flow.RemoteTarget(f"{mem}/raw.bin", format=fmt.Nop)
    with nop.open("w") as f:
        f.write(b"\x00\x01")
    with nop.open("r") as f:
        assert f.read() == b"\x00\x01"
    with (
        pytest.raises(RuntimeError),
        flow.RemoteTarget(f"{mem}/x.gz", format=fmt.Gzip).open("w") as f,
    ):
        f.write(b"half")
        raise RuntimeError("failed")
    assert not flow.RemoteTarget(f"{mem}/x.gz").exists()


def test_memory_outputs_are_written_in_the_flow_process_under_j2(project):
    """memory:// data lives in one process: under -j 2 the task writing it runs in flow's own,
    so the output is there for flow to check and for the task after it to read."""
    project.flowfile(
        """
        import multiprocessing

        class Up(flow.Task):
            def output(self):
                return flow.RemoteTarget("memory://j2/up.txt")
            def run(self):
                assert multiprocessing.parent_process() is None, "Up ran in a worker"
                with self.output().open("w") as f:
                    f.write("from memory")

        class Down(flow.Task):
            def requires(self):
                return Up()
            def output(self):
                return flow.LocalTarget("down.txt")
            def run(self):
                assert multiprocessing.parent_process() is None, "Down ran in a worker"
                with self.input().open() as fin, self.output().open("w") as fout:
                    fout.write(fin.read())
        """
    )
    proc = project.run("-j", "2", "Down")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert project.read("down.txt") == "from memory"


# -- found by a tester ------------------------------------------------------------------------


def test_hand_edited_remote_output_is_saved_under_backup_before_a_rebuild(mem, tmp_path):
    """-B over a hand-edited remote output: the edit is downloaded to .flow/backup/, then the
    task reruns (it used to crash copying the URL as a local path)."""
    _, Upper, _ = _pipeline(mem)
    _write(f"{mem}/in/data.txt", "ab")
    flow.build([Upper()], reporter=_quiet())
    _write(f"{mem}/out/upper.txt", "edited by hand")
    result = flow.build([Upper()], force=True, reporter=_quiet())
    assert result.ran == ["Upper(n=1)"], result.results
    assert _read(f"{mem}/out/upper.txt") == "AB"
    saved = [p for p in (tmp_path / ".flow" / "backup").rglob("upper.txt")]
    assert [p.read_text() for p in saved] == ["edited by hand"]


def test_hand_edited_remote_directory_is_saved_whole(mem, tmp_path):
    class Tree(flow.Task):
        def output(self):
            return flow.RemoteTarget(f"{mem}/tree")

        def run(self):
            with flow.RemoteTarget(f"{mem}/tree/a.txt").open("w") as f:
                f.write("built")

    flow.build([Tree()], reporter=_quiet())
    _write(f"{mem}/tree/a.txt", "edited")
    _write(f"{mem}/tree/b.txt", "added")
    assert flow.build([Tree()], force=True, reporter=_quiet()).ran == ["Tree()"]
    saved = sorted(p.name for p in (tmp_path / ".flow" / "backup").rglob("*.txt"))
    assert saved == ["a.txt", "b.txt"]


def test_an_interrupt_hidden_by_a_failed_cleanup_is_not_swallowed():
    """Ctrl-C during an upload, then the library's close() fails too: the error that replaced
    the KeyboardInterrupt must not turn into a retry, a RemoteError or a success."""
    t = flow.RemoteTarget("memory://interrupt/x.txt")

    def upload(fs, path):
        try:
            raise KeyboardInterrupt
        finally:
            raise OSError("connection lost while closing")  # noqa: B012 - what ftplib does

    with pytest.raises(KeyboardInterrupt):
        t._using("write", upload)


def test_credentials_in_a_files_pattern_are_refused_without_showing_them(project):
    project.flowfile(
        """
        class H(flow.Task):
            def requires(self):
                return flow.Files("ftp://bob:s3cr3tpw@127.0.0.1:1/pub/*.csv")
            def output(self):
                return flow.LocalTarget("h.txt")
            def run(self):
                pass
        """
    )
    for args in (["H"], ["-n", "--json", "H"], ["--graph", "mermaid", "H"]):
        proc = project.run(*args)
        assert proc.returncode == 2, proc.stderr
        assert "s3cr3tpw" not in proc.stdout + proc.stderr
        assert "netrc" in proc.stderr


def test_ftp_output_written_directly_by_a_failed_task_is_removed(project, ftp):
    (ftp.root / "direct").mkdir()
    project.flowfile(
        f"""
        class Direct(flow.Task):
            def output(self):
                return flow.target_for("{ftp.url("direct/d.txt")}")
            def run(self):
                t = self.output()
                t.fs.pipe_file(t.fs_path, b"direct")
                raise RuntimeError("boom")
        """
    )
    proc = project.run("Direct")
    assert proc.returncode == 1
    assert list((ftp.root / "direct").iterdir()) == []


def test_missing_bucket_inside_run_names_the_url_without_a_library_traceback(project, s3):
    project.flowfile(
        """
        class W(flow.Task):
            def output(self):
                return flow.S3Target("s3://no-bucket-for-writes/x.txt")
            def run(self):
                with self.output().open("w") as f:
                    f.write("x")
        """
    )
    proc = project.run("W", env=s3.env)
    assert proc.returncode == 1, proc.stderr
    assert "s3://no-bucket-for-writes/x.txt" in proc.stderr
    assert "aiobotocore" not in proc.stderr and "s3fs" not in proc.stderr


@pytest.fixture
def black_hole():
    """A port that accepts connections and never answers."""
    with servers.black_hole() as port:
        yield port


def test_a_server_that_never_answers_fails_within_a_few_timeouts(project, black_hole):
    """S3 and FTP endpoints that accept and stay silent: a clean error, bounded by a small
    multiple of FLOW_REMOTE_TIMEOUT (two requests, each tried twice)."""
    pytest.importorskip("s3fs")
    project.flowfile(
        f"""
        class S(flow.Task):
            def output(self):
                return flow.S3Target("s3://bkt/x.txt", endpoint_url="http://127.0.0.1:{black_hole}")
            def run(self):
                pass
        class F(flow.Task):
            def output(self):
                return flow.RemoteTarget("ftp://127.0.0.1:{black_hole}/x.txt")
            def run(self):
                pass
        """
    )
    env = {"FLOW_REMOTE_TIMEOUT": "1", "AWS_ACCESS_KEY_ID": "x", "AWS_SECRET_ACCESS_KEY": "y"}
    for task in ("S", "F"):
        started = time.monotonic()
        proc = project.run("-n", task, env=env, timeout=120)
        assert proc.returncode == 2, proc.stderr
        assert "timed out" in proc.stderr.lower() or "timeout" in proc.stderr.lower()
        assert time.monotonic() - started < 60


def test_question_marks_in_object_names_are_not_taken_for_credentials():
    """On S3 a "?" is part of the key: two objects must not share one record."""
    a = flow.S3Target("s3://bkt/sig/x?sig=1.txt")
    b = flow.S3Target("s3://bkt/sig/x?sig=2.txt")
    assert a.key != b.key and a.path == "s3://bkt/sig/x?sig=1.txt"


def test_s3a_and_s3_name_one_output(project):
    project.flowfile(
        """
        class A(flow.Task):
            def output(self):
                return flow.S3Target("s3://bkt/same.txt")
        class B(flow.Task):
            def output(self):
                return flow.S3Target("s3a://bkt/same.txt")
        class Both(flow.WrapperTask):
            def requires(self):
                return [A(), B()]
        """
    )
    proc = project.run("-n", "Both")
    assert proc.returncode == 2 and "s3://bkt/same.txt" in proc.stderr


def test_percent_encoded_password_in_an_ftp_url(project, ftp, tmp_path):
    """A password holding @ : / # is given percent-encoded in the URL, as in any URL."""
    from urllib.parse import quote

    url = ftp.url("enc/e.txt").replace(ftp.password, quote(ftp.password, safe=""))
    # The test password has none of those characters: check the decoding path with %-escapes.
    url = url.replace("-", "%2D")
    project.flowfile(
        f"""
        class E(flow.Task):
            def output(self):
                return flow.RemoteTarget("{url}")
            def run(self):
                with self.output().open("w") as f:
                    f.write("ok")
        """
    )
    proc = project.run("E")
    assert proc.returncode == 0, proc.stderr
    assert (ftp.root / "enc" / "e.txt").read_text() == "ok"
