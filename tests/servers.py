"""Real servers for the remote tests, on 127.0.0.1, started and stopped by the tests: moto's S3
server and pyftpdlib, each a subprocess whose request log the tests can read."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

STARTUP = 90.0  # seconds: moto imports a lot, and CI may be a loaded 2-core machine


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def closed_port() -> int:
    """A port on 127.0.0.1 where nothing listens (connections are refused)."""
    return free_port()


def _wait_listening(port: int, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"server exited ({proc.returncode}):\n{log.read_text()}")
        with socket.socket() as s:
            s.settimeout(1)
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    proc.kill()
    raise RuntimeError(f"server did not listen on {port} within {STARTUP} s:\n{log.read_text()}")


class Server:
    """A server subprocess with its log; ``requests()`` reads the request lines so far."""

    def __init__(self, argv: list[str], port: int, log: Path) -> None:
        self.port = port
        self.log = log
        with open(log, "wb") as out:
            self.proc = subprocess.Popen(argv, stdout=out, stderr=subprocess.STDOUT)
        try:
            _wait_listening(port, self.proc, log)
        except BaseException:
            self.stop()
            raise

    def requests(self) -> list[str]:
        return self.log.read_text(errors="replace").splitlines()

    def mark(self) -> int:
        """How many log lines there are now: requests after this count are new."""
        return len(self.requests())

    def since(self, mark: int) -> list[str]:
        return self.requests()[mark:]

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class S3(Server):
    """moto's S3 server; ``env`` points s3fs (and boto3) at it with dummy credentials."""

    def __init__(self, log: Path) -> None:
        port = free_port()
        argv = [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
        super().__init__(argv, port, log)
        self.url = f"http://127.0.0.1:{port}"
        self.env = {
            "FSSPEC_S3_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing-secret-key",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def client(self):  # type: ignore[no-untyped-def]
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing-secret-key",
        )

    def bucket(self, name: str) -> str:
        # s3fs cannot create a bucket on moto (location constraint): boto3 can.
        self.client().create_bucket(Bucket=name)
        return name


class FTP(Server):
    """pyftpdlib serving ``root`` to one user with a password (write access)."""

    user = "flowuser"
    password = "s3cret-pw-1234"

    def __init__(self, root: Path, log: Path, port: int = 0) -> None:
        port = port or free_port()
        argv = [
            sys.executable,
            "-m",
            "pyftpdlib",
            "-i",
            "127.0.0.1",
            "-p",
            str(port),
            "-w",
            "-d",
            str(root),
            "-u",
            self.user,
            "-P",
            self.password,
        ]
        super().__init__(argv, port, log)
        self.root = root

    def url(self, path: str, password: str | None = None) -> str:
        pw = self.password if password is None else password
        return f"ftp://{self.user}:{pw}@127.0.0.1:{self.port}/{path.lstrip('/')}"


def start_s3(tmp: Path) -> S3:
    pytest.importorskip("moto", reason="moto is not installed: pip install -e '.[test]'")
    pytest.importorskip("s3fs", reason="s3fs is not installed: pip install 'flow-build[remote]'")
    return S3(tmp / "moto.log")


def start_ftp(tmp: Path) -> FTP:
    pytest.importorskip("pyftpdlib", reason="pyftpdlib is not installed: pip install -e '.[test]'")
    pytest.importorskip(
        "fsspec", reason="fsspec is not installed: pip install 'flow-build[remote]'"
    )
    root = tmp / "ftp-root"
    root.mkdir()
    return FTP(root, tmp / "ftp.log")


@contextlib.contextmanager
def black_hole() -> Iterator[int]:
    """A port on 127.0.0.1 that accepts connections and never answers: the worst server."""
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(50)
    held: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        server.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(server.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(server.getsockname()[1])
    finally:
        stop.set()
        thread.join(5)
        for conn in held:
            conn.close()
        server.close()


def env_without_proxies() -> dict[str, str]:
    """Proxies would send 127.0.0.1 requests elsewhere."""
    return {k: v for k, v in os.environ.items() if "proxy" not in k.lower()}
