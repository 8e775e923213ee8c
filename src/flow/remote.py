"""Targets on any fsspec URL: metadata fingerprints, batched looks, atomic writes (lazy imports).

fsspec and the protocol libraries (s3fs, paramiko, ...) are imported on first use of a remote
target, never by a local build, ``--version`` or completion.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
from collections.abc import Iterator
from typing import IO, Any
from urllib.parse import urlsplit

from .remote_store import (
    ATOMIC_PUT,
    FILESYSTEMS,
    SAME_STORE,
    RemoteError,
    RemoteNotFound,
    describe,
    filesystem,
    forget_filesystem,
    fresh_info,
    fs_token,
    interruption,
    is_remote,
    is_root,
    login_from_url,
    missing_library,
    protocol_of,
    put,
    redact,
    secret_values,
)
from .target import TMP_SUFFIX, AtomicWriter, FileSystemTarget, Info

# Stores whose metadata says nothing reliable about content: hash the bytes.
_HASH_CONTENT = frozenset({"memory"})


class RemoteTarget(FileSystemTarget):
    """A file or directory at any fsspec URL: ``s3://``, ``gs://``, ``ftp://``, ``sftp://``, ``memory://``...

    Args:
        url: where the data lives. Credentials may be in it (``ftp://user:pw@host/x``); they
            never appear in ``path``, output, errors or ``.flow/``.
        format: a ``flow.format`` (``Nop`` for bytes, ``Gzip``, ``UTF8 >> Gzip``...) that
            ``open()`` applies, as Luigi's targets do.
        **storage_options: passed to the fsspec filesystem (``key=``, ``secret=``,
            ``endpoint_url=``, ``timeout=``...). fsspec's own configuration and the store's
            usual credentials (AWS_* variables, ``~/.aws``, netrc for FTP) fill in the rest.

    ``open("w")`` writes locally and uploads when the ``with`` block exits cleanly: the object
    never exists half-written under its name.
    """

    def __init__(self, url: str, format: Any = None, **storage_options: Any) -> None:
        url = os.fspath(url)
        if not is_remote(url):
            raise RemoteError(f"{url!r} is not a remote URL: use flow.LocalTarget for local files")
        self.protocol = protocol_of(url)
        self.path = redact(url)
        scheme, sep, rest = self.path.partition("://")
        self.key: str = SAME_STORE.get(scheme.lower(), scheme) + sep + rest
        self.format = format
        self._url, self._options = login_from_url(url, self.protocol, storage_options)

    @property
    def url(self) -> str:
        return self.path

    @property
    def in_process(self) -> bool:
        """``memory://`` data lives in this process: tasks writing it are not sent to workers."""
        return self.protocol == "memory"

    @property
    def fs(self) -> Any:
        """The fsspec filesystem (made once per process and set of options)."""
        with self._errors("connect to"):
            return filesystem(self._url, self._options)

    @property
    def fs_path(self) -> str:
        """The path as the filesystem names it (no protocol, host or credentials)."""
        return str(self.fs._strip_protocol(self._url))

    # -- looking -------------------------------------------------------------------------

    def info(self) -> Info:
        """Existence and a metadata fingerprint, from one request (the listing cache bypassed)."""

        def look(fs: Any, path: str) -> Info:
            try:
                meta = fresh_info(fs, path)
            except FileNotFoundError:
                return Info(False)
            return Info(True, self._fingerprint(fs, path, meta))

        return self._using("look at", look)

    def _using(self, action: str, work: Any) -> Any:
        """``work(fs, path)`` with clean errors; once more on a new connection when a reused
        one failed (an FTP server drops an idle client, as between watch-mode rebuilds)."""
        reused = fs_token(self._url, self._options) in FILESYSTEMS
        try:
            with self._errors(action):
                return work(self.fs, self.fs_path)
        except RemoteError:
            if not reused:
                raise
        with self._errors(action):
            return work(self.fs, self.fs_path)

    def exists(self) -> bool:
        return self.info().exists

    def fingerprint(self) -> str | None:
        return self.info().fingerprint

    def snapshot(self) -> Any:
        info = self.info()
        return info.fingerprint if info.exists else None

    @classmethod
    def info_many(cls, targets: list[RemoteTarget]) -> dict[str, Info]:
        """Infos of many targets with few requests: one listing per directory holding several
        of them, issued concurrently on stores that allow it."""
        from .remote_batch import infos

        return infos(targets)

    def _fingerprint(self, fs: Any, path: str, meta: dict[str, Any]) -> str:
        if meta.get("type") == "directory":
            return self._tree_fingerprint(fs, path)
        found = metadata_fingerprint(self.protocol, meta)
        if found is not None:
            return found
        from .fingerprint import hash_file_object

        with fs.open(path, "rb") as f:
            return "content:" + hash_file_object(f)

    def _tree_fingerprint(self, fs: Any, path: str) -> str:
        import xxhash

        h = xxhash.xxh3_128()
        for name, meta in sorted(fs.find(path, detail=True).items()):
            if name.endswith(TMP_SUFFIX):
                continue
            rel = name[len(path) :].lstrip("/")
            h.update(f"{rel}\0{self._fingerprint(fs, name, meta)}\n".encode())
        return "tree:" + h.hexdigest()

    # -- reading and writing -------------------------------------------------------------

    def open(self, mode: str = "r") -> IO[Any]:
        """``r``/``rb`` read from the store; ``w``/``wb`` write atomically on a clean close.
        With a ``format`` (``flow.format.Gzip``...), it is applied on the way."""
        if mode not in ("r", "rt", "rb", "w", "wt", "wb"):
            raise ValueError(f"unsupported mode {mode!r} for {self!r}: use r, rb, w or wb")
        if mode.startswith("w"):
            writer = AtomicUpload(self, binary=self.format is not None or mode == "wb")
            return writer if self.format is None else _formatted(self.format, writer, mode)  # type: ignore[return-value]
        # Looking first reconnects a dropped connection here, not in the middle of a read.
        raw = self._using("open", lambda fs, path: fresh_info(fs, path) and fs.open(path, "rb"))
        if self.format is not None:
            return _formatted(self.format, raw, mode)
        return raw if mode == "rb" else io.TextIOWrapper(raw, encoding="utf-8")

    def remove(self) -> None:
        """Delete the object (or everything under a directory); a missing one is not an error."""

        if is_root(self._url):
            raise RemoteError(
                f"refusing to remove {self.path}: it is a whole bucket or server root; "
                "declare the objects (or a prefix) the task writes instead"
            )

        def remove(fs: Any, path: str) -> None:
            try:
                meta = fresh_info(fs, path)
            except FileNotFoundError:
                return
            if meta.get("type") == "directory":
                fs.rm(path, recursive=True)
            else:  # FTP's rm(recursive=True) of a file tries to remove a directory and fails
                fs.rm_file(path)
            fs.invalidate_cache(path)

        self._using("remove", remove)

    def save_copy(self, local_path: str) -> None:
        """Download the object (or everything under the prefix) to ``local_path``: the backup
        of a hand-edited output, before flow rebuilds it."""

        def get(fs: Any, path: str) -> None:
            if fresh_info(fs, path).get("type") == "directory":
                fs.get(path.rstrip("/") + "/", local_path, recursive=True)
            else:
                fs.get_file(path, local_path)

        self._using("save a copy of", get)

    def clean_temporaries(self) -> None:
        """Temporary uploads (``.name.<hex>.flow-tmp``) a killed run left beside the target."""
        if self.protocol in ATOMIC_PUT:
            return  # uploads there are never visible half-done: nothing to clean
        with self._errors("clean up beside"):
            fs, path = self.fs, self.fs_path
            head, _, tail = path.rpartition("/")
            fs.invalidate_cache(head)
            with contextlib.suppress(FileNotFoundError):
                for name in fs.ls(head or "/", detail=False):
                    base = name.rpartition("/")[2]
                    if base.startswith(f".{tail}.") and base.endswith(TMP_SUFFIX):
                        fs.rm(name)

    def upload(self, local_path: str) -> None:
        """Put a local file under this target's name, atomically."""
        self._using("write", lambda fs, path: put(fs, self.protocol, local_path, path))

    @contextlib.contextmanager
    def _errors(self, action: str) -> Iterator[None]:
        """Turn a store's exception into one line naming the URL (without secrets)."""
        try:
            yield
        except RemoteError:
            raise
        except ImportError as exc:
            raise RemoteError(missing_library(self.protocol, exc)) from None
        except FileNotFoundError as exc:
            message = self._scrub(describe(exc))
            raise RemoteNotFound(f"cannot {action} {self.path}: not found ({message})") from None
        except Exception as exc:  # noqa: BLE001 - every store raises its own types
            interrupted = interruption(exc)
            if interrupted is not None:  # Ctrl-C or SIGTERM, hidden by a failed cleanup
                raise interrupted from None
            forget_filesystem(self._url, self._options)  # reconnect next time (FTP drops idlers)
            message = self._scrub(describe(exc))
            raise RemoteError(f"cannot {action} {self.path}: {message}") from None

    def _scrub(self, text: str) -> str:
        """``text`` with every credential this target knows replaced by ``***``."""
        secrets = [v for v in secret_values(self._options) if len(v) >= 4]
        userinfo = urlsplit(self._url).netloc.rpartition("@")[0]
        secrets += [s for s in userinfo.split(":") if len(s) >= 4]
        for secret in secrets:
            text = text.replace(secret, "***")
        return text.replace(self._url, self.path)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"


class S3Target(RemoteTarget):
    """An object on S3 (or an S3-compatible store): ``S3Target("s3://bucket/key")``, as in Luigi.

    Args:
        path: the ``s3://bucket/key`` URL.
        format: a ``flow.format`` (``Nop`` for bytes), as for ``RemoteTarget``.
        client: Luigi's boto client; refused: give storage options instead.
        **kwargs: s3fs storage options (``key=``, ``secret=``, ``endpoint_url=``, ...).
    """

    def __init__(self, path: str, format: Any = None, client: Any = None, **kwargs: Any) -> None:
        if client is not None:
            raise RemoteError(
                "S3Target(client=...) is Luigi's boto client: give storage options instead "
                "(key=, secret=, endpoint_url=), or set them in fsspec's configuration"
            )
        super().__init__(path, format, **kwargs)


class FTPTarget(RemoteTarget):
    """A file on an FTP (or, with ``sftp=True``, SFTP) server, with Luigi's arguments:
    ``FTPTarget("/data/x.csv", "ftp.example.org", username=..., password=...)``.
    A full URL (``ftp://user:pw@host:2121/data/x.csv``) works too."""

    def __init__(
        self,
        path: str,
        host: str | None = None,
        format: Any = None,
        username: str | None = None,
        password: str | None = None,
        port: int | None = None,
        tls: bool = False,
        timeout: float | None = None,
        sftp: bool = False,
        **kwargs: Any,
    ) -> None:
        if "://" not in path:
            if host is None:
                raise RemoteError(f"FTPTarget({path!r}) needs host= (or a full ftp:// URL)")
            scheme = "sftp" if sftp else "ftp"
            netloc = host if port is None else f"{host}:{port}"
            path = f"{scheme}://{netloc}/{path.lstrip('/')}"
        options: dict[str, Any] = dict(kwargs)
        if username is not None:
            options["username"] = username
        if password is not None:
            options["password"] = password
        if tls:
            options["tls"] = tls
        if timeout is not None:
            options["timeout"] = timeout
        super().__init__(path, format, **options)


def credentials_refused(pattern: str) -> None:
    """A ``flow.Files`` pattern is its task's id, shown everywhere: it must hold no password."""
    if is_remote(pattern) and redact(pattern) != pattern:
        raise RemoteError(
            f"flow.Files({redact(pattern)!r}): the pattern holds credentials, and a pattern is "
            "the task's id, shown in every plan and record; give them in ~/.netrc (FTP), "
            "fsspec's configuration (e.g. FSSPEC_FTP_PASSWORD) or the store's usual credentials"
        )


def target_for(url: str | os.PathLike[str], **storage_options: Any) -> FileSystemTarget:
    """The target for any path or URL: a LocalTarget for a path or ``file://``, else remote.

    Use it when a parameter says where data lives: ``target_for(self.dest)``.

    Args:
        url: a local path, a ``file://`` URL, or any fsspec URL (``s3://bucket/key``).
        **storage_options: passed to fsspec for a remote URL (``anon=True``, ``endpoint_url=``).

    Returns:
        A ``LocalTarget`` or a ``RemoteTarget``.
    """
    from .target import LocalTarget

    text = os.fspath(url)
    if is_remote(text):
        return RemoteTarget(text, **storage_options)
    if text.startswith("file://"):
        text = text[len("file://") :]
    return LocalTarget(text)


def glob(pattern: str, **storage_options: Any) -> list[RemoteTarget]:
    """The remote files matching ``pattern`` (``s3://bucket/raw/*.csv``), sorted."""
    probe = RemoteTarget(pattern, **storage_options)
    with probe._errors("list"):
        fs, path = probe.fs, probe.fs_path
        fs.invalidate_cache()
        found = fs.glob(path, detail=True)
    # What comes before the filesystem's path in the URL (scheme, credentials, host) is kept.
    prefix = (
        pattern[: len(pattern) - len(path)]
        if pattern.endswith(path)
        else protocol_of(pattern) + "://"
    )
    return [
        RemoteTarget(prefix + name, **storage_options)
        for name, meta in sorted(found.items())
        if meta.get("type") != "directory"
    ]


def metadata_fingerprint(protocol: str, meta: dict[str, Any]) -> str | None:
    """A fingerprint from a store's metadata, or None when it offers nothing to trust."""
    if protocol in _HASH_CONTENT:
        return None
    size = meta.get("size")
    for field in ("ETag", "etag", "md5Hash", "crc32c", "content_md5", "checksum"):
        value = meta.get(field)
        if value:
            return f"{field.lower()}:{str(value).strip(chr(34))}:{size}"
    for field in ("mtime", "LastModified", "last_modified", "modify", "updated", "modified"):
        value = meta.get(field)
        if value:
            unique = meta.get("unique", "")
            return f"mtime:{value}:{size}:{unique}"
    return None


def _formatted(fmt: Any, binary_file: Any, mode: str) -> Any:
    from .format import wrap

    return wrap(fmt, binary_file, mode)


class AtomicUpload(AtomicWriter):
    """A remote file being written: data goes to a local temporary file and is uploaded under
    the target's name on a clean close; an exception (or a dropped object) uploads nothing."""

    def __init__(self, target: RemoteTarget, binary: bool = False) -> None:
        self.target = target
        fd, self._local = tempfile.mkstemp(prefix="flow-upload-", suffix=TMP_SUFFIX)
        self._file = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")

    def _commit(self) -> None:
        try:
            self.target.upload(self._local)
        finally:
            _unlink(self._local)

    def _abandon(self) -> None:
        _unlink(self._local)


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)
