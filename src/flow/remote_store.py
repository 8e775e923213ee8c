"""The fsspec side of remote targets: filesystems made once per process with bounded
timeouts and the usual credentials, atomic uploads, and store errors as one clean line."""

from __future__ import annotations

import contextlib
import os
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from .errors import FlowError
from .target import TMP_SUFFIX

# Seconds a network call may take before it fails: FLOW_REMOTE_TIMEOUT, or a storage option.
DEFAULT_TIMEOUT = 10.0
# How often s3fs retries a request that failed in a way it deems passing (its default is 5).
S3_RETRIES = 1


# Stores where an upload becomes visible only when complete (a single PUT or a completed
# multipart upload): write straight to the name. Elsewhere: a temporary name, then a rename.
ATOMIC_PUT = frozenset({"s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "memory"})


# Packages to install per protocol, for the error when one is missing.
_PACKAGES = {
    "s3": "s3fs",
    "s3a": "s3fs",
    "gs": "gcsfs",
    "gcs": "gcsfs",
    "az": "adlfs",
    "abfs": "adlfs",
    "abfss": "adlfs",
    "sftp": "paramiko",
    "ssh": "paramiko",
    "http": "aiohttp",
    "https": "aiohttp",
}


# Query-string keys whose values are credentials (Azure SAS, signed URLs).
_SECRET_QUERY = ("sig", "signature", "token", "password", "secret", "key", "credential")


# Where a "?" is part of an object's name (elsewhere it starts a query string, which may hold
# a signature or a token: its values are hidden).
_NAME_PROTOCOLS = frozenset({"s3", "s3a", "gs", "gcs", "ftp", "sftp", "ssh", "memory", "hdfs"})


# Storage options whose values are credentials, by a part of their name.
_SECRET_OPTIONS = ("pass", "secret", "token", "key", "credential", "sas", "signature")


# Spellings of one store: records use the first, so both name one output.
SAME_STORE = {"s3a": "s3", "gcs": "gs"}


class RemoteError(FlowError):
    """A remote store failed: unreachable, denied, missing bucket, or a library is missing."""


class RemoteNotFound(RemoteError, FileNotFoundError):
    """What was asked for is not there (an object, a bucket): still a FileNotFoundError."""


def redact(url: str) -> str:
    """``url`` without user name, password or credential query values: what flow shows and
    records."""
    if "://" not in url:
        return url
    parts = urlsplit(url)
    netloc = parts.netloc.rpartition("@")[2]
    query = parts.query
    if query and parts.scheme.lower() not in _NAME_PROTOCOLS:
        pairs = [q.partition("=") for q in query.split("&")]
        query = "&".join(
            k + (s + "***" if s and k.lower().endswith(_SECRET_QUERY) else s + v)
            for k, s, v in pairs
        )
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def protocol_of(url: str) -> str:
    return url.split("://", 1)[0].lower() if "://" in url else "file"


def is_remote(url: str) -> bool:
    """True for a URL that names a store other than the local disk."""
    return "://" in url and protocol_of(url) not in ("file", "local")


FILESYSTEMS: dict[tuple[str, str], Any] = {}


def fs_token(url: str, options: dict[str, Any]) -> tuple[str, str]:
    """What tells filesystems apart: protocol, host part of the URL, storage options."""
    host = url.split("/", 3)[2] if "://" in url else ""
    return protocol_of(url), repr((host, sorted(options.items())))


def forget_filesystem(url: str, options: dict[str, Any]) -> None:
    """Drop the filesystem of ``url``, so the next use connects afresh."""
    FILESYSTEMS.pop(fs_token(url, options), None)


def filesystem(url: str, options: dict[str, Any]) -> Any:
    """The fsspec filesystem for ``url``: defaults < fsspec's configuration < ``options``.
    Made once per process and set of options (FTP connects when made)."""
    protocol = protocol_of(url)
    token = fs_token(url, options)
    found = FILESYSTEMS.get(token)
    if found is not None:
        return found
    try:
        import fsspec
        from fsspec.core import url_to_fs
    except ImportError:
        raise RemoteError(
            f"remote targets ({protocol}://) need fsspec: pip install 'flow-build[remote]'"
        ) from None
    configured = fsspec.config.conf.get(protocol, {})
    merged = _with_defaults(url, configured, options)
    fs, _ = url_to_fs(url, **merged)
    if protocol in ("s3", "s3a") and "retries" not in configured:
        fs.retries = S3_RETRIES  # s3fs's own retry loop, on top of botocore's: keep it bounded
    FILESYSTEMS[token] = fs
    return fs


def _with_defaults(url: str, configured: dict[str, Any], options: dict[str, Any]) -> dict[str, Any]:
    """Bounded timeouts (FLOW_REMOTE_TIMEOUT) and netrc credentials under what was configured."""
    protocol = protocol_of(url)
    timeout = _timeout()
    given = {**configured, **options}
    merged = dict(options)
    if protocol in ("s3", "s3a"):
        config = dict(given.get("config_kwargs") or {})
        config.setdefault("connect_timeout", timeout)
        config.setdefault("read_timeout", timeout)
        config.setdefault("retries", {"max_attempts": 2, "mode": "standard"})
        merged["config_kwargs"] = config
    elif protocol in ("ftp", "sftp", "ssh"):
        if "timeout" not in given:
            merged["timeout"] = timeout
        parts = urlsplit(url)
        if protocol == "ftp" and not parts.username and "username" not in given:
            merged.update(_netrc_login(parts.hostname or ""))
    return merged


def bounded(fs: Any, size: int = 0) -> dict[str, float]:
    """A deadline for one whole call on an async store (fsspec's ``timeout=``): per-request
    timeouts do not cover every wait (a PUT to a server that never answers hung without one).
    It allows four timeouts, plus the transfer at 256 KiB/s."""
    if not getattr(fs, "async_impl", False):
        return {}
    return {"timeout": 4 * _timeout() + size / (256 * 1024)}


def _timeout() -> float:
    text = os.environ.get("FLOW_REMOTE_TIMEOUT") or ""
    try:
        return float(text) if text else DEFAULT_TIMEOUT
    except ValueError:
        raise RemoteError(
            f"FLOW_REMOTE_TIMEOUT={text!r} is not a number of seconds (e.g. FLOW_REMOTE_TIMEOUT=30)"
        ) from None


def _netrc_login(host: str) -> dict[str, str]:
    """FTP's user and password for ``host`` from ~/.netrc, as ftp(1) and curl read them."""
    import netrc

    try:
        found = netrc.netrc().authenticators(host)
    except (FileNotFoundError, netrc.NetrcParseError, OSError):
        return {}
    if not found:
        return {}
    login, _, password = found
    return {"username": login, "password": password or ""}


def interruption(exc: BaseException) -> BaseException | None:
    """A KeyboardInterrupt (or flow's Terminated) that ``exc`` was raised while handling: an
    upload cut by Ctrl-C fails again while closing, and that error must not hide the signal."""
    seen: set[int] = set()
    cause = exc.__context__
    while cause is not None and id(cause) not in seen:
        if not isinstance(cause, Exception):
            return cause
        seen.add(id(cause))
        cause = cause.__context__
    return None


def secret_values(options: dict[str, Any]) -> list[str]:
    """The string values of options named like credentials, nested dicts included."""
    found = []
    for name, value in options.items():
        if isinstance(value, dict):
            found += secret_values(value)
        elif isinstance(value, str) and any(s in name.lower() for s in _SECRET_OPTIONS):
            found.append(value)
    return found


def login_from_url(url: str, protocol: str, options: dict[str, Any]) -> tuple[str, dict[str, Any]]:
    """FTP and SFTP credentials in the URL become options (percent-decoded, so a password may
    hold ``@ : / #``), and the URL handed to fsspec carries none."""
    if protocol not in ("ftp", "sftp", "ssh"):
        return url, dict(options)
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at:
        return url, dict(options)
    from urllib.parse import unquote

    user, colon, password = userinfo.partition(":")
    found = {"username": unquote(user)}
    if colon:
        found["password"] = unquote(password)
    bare = urlunsplit((parts.scheme, hostport, parts.path, parts.query, parts.fragment))
    return bare, {**found, **options}


def is_root(url: str) -> bool:
    """A whole bucket (``s3://bucket``) or a server's root directory (``ftp://host/``)."""
    parts = urlsplit(url)
    rest = parts.netloc + parts.path if protocol_of(url) == "memory" else parts.path
    return not rest.strip("/")


def fresh_info(fs: Any, path: str) -> dict[str, Any]:
    """``fs.info(path)`` asked of the store, not of a listing fsspec cached (FTP answers from
    the parent's listing: drop that too)."""
    fs.invalidate_cache(path)
    fs.invalidate_cache(path.rstrip("/").rpartition("/")[0] or "/")
    return dict(fs.info(path))


def put(fs: Any, protocol: str, local_path: str, path: str) -> None:
    """Upload so that ``path`` is never half-written: one put on object stores, else a
    temporary sibling renamed over it."""
    deadline = bounded(fs, os.path.getsize(local_path))
    if protocol in ATOMIC_PUT:
        fs.put_file(local_path, path, **deadline)
    else:
        head, _, tail = path.rpartition("/")
        if head:
            fs.makedirs(head, exist_ok=True)
        tmp = f"{head}/.{tail}.{os.urandom(4).hex()}{TMP_SUFFIX}"
        try:
            fs.put_file(local_path, tmp, **deadline)
            _replace(fs, tmp, path)
        except BaseException:
            with contextlib.suppress(Exception):
                fs.rm(tmp)
            raise
    fs.invalidate_cache(path)


def _replace(fs: Any, tmp: str, path: str) -> None:
    """Rename ``tmp`` over ``path``; where the server refuses to overwrite, remove it first."""
    try:
        fs.mv(tmp, path)
    except Exception:
        fs.invalidate_cache(path)
        if not fs.exists(path):
            raise
        fs.rm(path)
        fs.mv(tmp, path)


def describe(exc: BaseException) -> str:
    """The store's own message, one line."""
    text = str(exc).strip() or type(exc).__name__
    if isinstance(exc, TimeoutError | OSError) and not str(exc).strip():
        text = f"{type(exc).__name__} (no answer in time)"
    first = text.splitlines()[0] if text else type(exc).__name__
    return first if len(first) < 300 else first[:300] + "..."


def missing_library(protocol: str, exc: ImportError) -> str:
    package = _PACKAGES.get(protocol) or getattr(exc, "name", None) or "its fsspec library"
    return (
        f"{protocol}:// targets need the package {package}: "
        f"pip install 'flow-build[remote]' (or pip install {package})"
    )
