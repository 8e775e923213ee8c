"""Where the cache keeps its bytes: a local directory, or any fsspec URL (imported only then).

Names are ``/``-separated paths below the cache's root. Every write is atomic: a reader sees the
old object, the new one, or none, never part of one (a temporary name and a rename on a
filesystem, a single put on an object store, where an object appears only once complete).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
from collections.abc import Callable, Iterator
from typing import IO, Any, Protocol

# An object up to this size is fetched whole, in one request.
SMALL = 8 << 20
# Stores where one put of a whole object is atomic (no rename, which they lack or emulate).
ATOMIC_PUT = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss", "adl", "memory")


class Storage(Protocol):
    """What the cache needs of a place to keep bytes."""

    url: str  # for messages: never carries credentials
    cheap_exists: bool  # asking whether an object exists costs no round trip

    def read(self, name: str) -> bytes | None: ...
    def read_many(self, names: list[str]) -> dict[str, bytes | None]: ...
    def write(self, name: str, data: bytes) -> None: ...
    def exists(self, name: str) -> bool: ...
    def open(self, name: str, size: int) -> IO[bytes]: ...
    def put_file(self, name: str, local: str) -> None: ...
    def touch(self, name: str, data: bytes) -> None: ...
    def listing(self, prefix: str) -> Iterator[tuple[str, int, float]]: ...
    def delete(self, name: str) -> None: ...


def is_url(text: str) -> bool:
    return "://" in text and not text.startswith("file://")


def open_storage(location: str) -> Storage:
    """The storage at ``location``: a directory path (or file:// URL), else an fsspec URL."""
    if not is_url(location):
        return LocalStorage(location.removeprefix("file://"))
    return FsspecStorage(location)


def _tmp_name(path: str) -> str:
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.{os.urandom(6).hex()}.tmp")


class LocalStorage:
    """A directory: plain files, written under a temporary name and renamed into place."""

    cheap_exists = True

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        self.url = self.root

    def _path(self, name: str) -> str:
        return os.path.join(self.root, *name.split("/"))

    def read(self, name: str) -> bytes | None:
        try:
            with open(self._path(name), "rb") as f:
                return f.read()
        except FileNotFoundError:
            return None

    def read_many(self, names: list[str]) -> dict[str, bytes | None]:
        """Several objects (None: absent); on a disk one by one is as fast as it gets."""
        return {name: self.read(name) for name in names}

    def write(self, name: str, data: bytes) -> None:
        def make(tmp: str) -> None:
            with open(tmp, "xb") as f:
                f.write(data)

        self._commit(name, make)

    def exists(self, name: str) -> bool:
        return os.path.exists(self._path(name))

    def open(self, name: str, size: int) -> IO[bytes]:
        return open(self._path(name), "rb")

    def put_file(self, name: str, local: str) -> None:
        self._commit(name, lambda tmp: shutil.copyfile(local, tmp))

    def touch(self, name: str, data: bytes) -> None:
        """Mark an entry used now (least-recently-used pruning reads the time)."""
        with contextlib.suppress(OSError):
            os.utime(self._path(name))

    def listing(self, prefix: str) -> Iterator[tuple[str, int, float]]:
        """``(name, size, mtime)`` of everything below ``prefix``."""
        base = self._path(prefix)
        for dirpath, _dirs, files in os.walk(base):
            for fname in files:
                if fname.startswith("."):
                    continue  # a temporary of a write in progress
                full = os.path.join(dirpath, fname)
                with contextlib.suppress(OSError):
                    st = os.stat(full)
                    rel = os.path.relpath(full, self.root).replace(os.sep, "/")
                    yield rel, st.st_size, st.st_mtime

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self._path(name))

    def _commit(self, name: str, make: Callable[[str], object]) -> None:
        """Write ``name`` through ``make(tmp)`` and a rename: two writers of one name each
        rename a whole file, and the last one wins."""
        path = self._path(name)
        tmp = _tmp_name(path)
        try:
            try:
                make(tmp)
            except FileNotFoundError:  # create directories only then: mkdir is not cheap
                os.makedirs(os.path.dirname(path), exist_ok=True)
                make(tmp)
            os.replace(tmp, path)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise


class FsspecStorage:
    """Any fsspec URL; options come from fsspec's configuration (``FSSPEC_S3_ENDPOINT_URL``...)."""

    cheap_exists = False

    def __init__(self, url: str) -> None:
        self.url = shown(url)
        from ..remote import RemoteError, RemoteTarget

        # Made as remote targets make theirs: bounded timeouts (FLOW_REMOTE_TIMEOUT), netrc,
        # credentials in the URL taken out of it, one clean message when a library is missing.
        try:
            probe = RemoteTarget(url)
            self.fs, root = probe.fs, probe.fs_path
        except RemoteError as exc:
            raise OSError(str(exc)) from None
        self.root = root.rstrip("/")
        protocol = self.fs.protocol
        self.atomic_put = (protocol if isinstance(protocol, str) else protocol[0]) in ATOMIC_PUT

    def _path(self, name: str) -> str:
        return f"{self.root}/{name}"

    def read(self, name: str) -> bytes | None:
        try:
            data: bytes = self.fs.cat_file(self._path(name))
            return data
        except FileNotFoundError:
            return None

    def read_many(self, names: list[str]) -> dict[str, bytes | None]:
        """Several objects in concurrent requests (fsspec batches them): None for an absent one;
        one that failed otherwise is left out, to be read again on its own."""
        if not names:
            return {}
        paths = {self._path(name): name for name in names}
        found = self.fs.cat(list(paths), on_error="return")
        if not isinstance(found, dict):  # one path: fsspec hands back the bytes alone
            found = {next(iter(paths)): found}
        out: dict[str, bytes | None] = {}
        for path, value in found.items():
            name = paths.get(path) or paths.get(self.fs._strip_protocol(path))
            if name is None:
                continue
            if isinstance(value, FileNotFoundError):
                out[name] = None
            elif isinstance(value, bytes):
                out[name] = value
        return out

    def write(self, name: str, data: bytes) -> None:
        from ..remote_store import bounded

        path = self._path(name)
        deadline = bounded(self.fs, len(data))
        if self.atomic_put:
            self.fs.pipe_file(path, data, **deadline)
            return
        tmp = _tmp_name(path)
        self.fs.pipe_file(tmp, data, **deadline)
        self.fs.mv(tmp, path)

    def exists(self, name: str) -> bool:
        path = self._path(name)
        self.fs.invalidate_cache(path)  # another process may have written it since
        return bool(self.fs.exists(path))

    def open(self, name: str, size: int) -> IO[bytes]:
        """A small object in one GET (opening a remote file asks for its size first)."""
        if size <= SMALL:
            return io.BytesIO(self.fs.cat_file(self._path(name)))
        f: IO[bytes] = self.fs.open(self._path(name), "rb")
        return f

    def put_file(self, name: str, local: str) -> None:
        from ..remote_store import bounded

        path = self._path(name)
        deadline = bounded(self.fs, os.path.getsize(local))
        if self.atomic_put:  # multipart uploads too: the object appears only once complete
            self.fs.put_file(local, path, **deadline)
            return
        tmp = _tmp_name(path)
        self.fs.put_file(local, tmp, **deadline)
        self.fs.mv(tmp, path)

    def touch(self, name: str, data: bytes) -> None:
        """An object store keeps no access time: put the entry again to renew its date."""
        self.write(name, data)

    def listing(self, prefix: str) -> Iterator[tuple[str, int, float]]:
        base = self._path(prefix)
        self.fs.invalidate_cache(base)
        try:
            found = self.fs.find(base, detail=True)
        except FileNotFoundError:
            return
        for path, info in found.items():
            name = path[len(self.root) + 1 :] if path.startswith(self.root + "/") else path
            if name.rsplit("/", 1)[-1].startswith("."):
                continue
            yield name, int(info.get("size") or 0), _mtime(info)

    def delete(self, name: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.fs.rm_file(self._path(name))


def _mtime(info: dict[str, Any]) -> float:
    for field in ("LastModified", "mtime", "last_modified", "created"):
        value = info.get(field)
        if value is None:
            continue
        if hasattr(value, "timestamp"):
            return float(value.timestamp())
        with contextlib.suppress(TypeError, ValueError):
            return float(value)
    return 0.0


def shown(url: str) -> str:
    """A URL as shown in messages: ``user:password@`` dropped, and any query string."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url
    host, slash, path = rest.partition("/")
    host = host.rsplit("@", 1)[-1]
    return f"{scheme}://{host}{slash}{path.split('?', 1)[0]}"
