"""Targets: what a task produces. Local files are written atomically through a temporary sibling."""

from __future__ import annotations

import contextlib
import io
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

TMP_SUFFIX = ".flow-tmp"


@dataclass(frozen=True, slots=True)
class Info:
    """What one look at a target tells: does it exist, and its content fingerprint (None when
    the target cannot be fingerprinted: flow then knows only existence, as Luigi does)."""

    exists: bool
    fingerprint: str | None = None


class Target:
    """Something a task produces. Only ``exists()`` is required.

    A target may also define ``fingerprint()`` returning a string that changes when its content
    changes; without one flow treats it like Luigi does (existence only), and keeps no record of it.
    A target that can answer both in one request (a remote store's metadata) defines ``info()``.
    """

    #: A stable name under which flow records this target (a path, a URL), or None for no record.
    key: str | None = None

    def exists(self) -> bool:
        raise NotImplementedError(f"{type(self).__name__} must define exists()")

    def fingerprint(self) -> str | None:
        return None

    def info(self) -> Info:
        """Existence and fingerprint in one look; flow asks this at most once per run and key."""
        if not self.exists():
            return Info(False)
        return Info(True, self.fingerprint())

    def snapshot(self) -> Any:
        """What the target looks like now, as plain JSON data (None: absent). Taken before a task
        runs, so that after a failure or a crash flow can tell what the task wrote."""
        return True if self.exists() else None

    def changed_since(self, before: Any) -> bool:
        """True when the target exists and differs from the ``snapshot()`` taken before."""
        now = self.snapshot()
        return now is not None and now != before

    def clean_temporaries(self) -> None:
        """Remove what an interrupted atomic write left beside the target (nothing by default)."""


class FileSystemTarget(Target):
    """A target with a ``path``: base of local and remote file targets."""

    path: str

    def open(self, mode: str = "r") -> IO[Any]:
        raise NotImplementedError

    def remove(self) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"

    def __eq__(self, other: object) -> bool:
        return type(other) is type(self) and other.path == self.path  # type: ignore[attr-defined]

    def __hash__(self) -> int:
        return hash((type(self).__name__, self.path))


class LocalTarget(FileSystemTarget):
    """A file (or directory) on the local disk, relative paths resolved against the Flowfile.

    ``open("w")``/``open("wb")`` write to a temporary sibling that replaces the file only when the
    ``with`` block exits cleanly (or ``close()`` is called), so a failed run never leaves half a file.
    """

    def __init__(
        self, path: str | os.PathLike[str], format: Any = None, is_tmp: bool = False
    ) -> None:
        self.path = os.fspath(path)
        # A flow.format (Luigi's luigi.format) that open() applies; None: text, or binary for "rb"/"wb".
        self.format = format
        self.key: str = _canonical(self.path)

    def exists(self) -> bool:
        return os.path.exists(self.path)

    def fingerprint(self) -> str | None:
        """The xxh3_128 of the file's content (of every file, for a directory); None if absent."""
        from .fingerprint import Fingerprinter

        return Fingerprinter(lambda path: None).file(self.path)

    def snapshot(self) -> Any:
        """``[mtime_ns, size, inode]`` of a file; for a directory, a digest of those of every file
        inside it, so that a task that rewrote some of a directory is seen to have written it."""
        try:
            st = os.stat(self.path)
        except (OSError, ValueError):
            return None
        if stat.S_ISDIR(st.st_mode):
            return _tree_snapshot(self.path)
        return [st.st_mtime_ns, st.st_size, st.st_ino]

    def clean_temporaries(self) -> None:
        """Atomic-write temporaries (``.name.<hex>.flow-tmp``) a killed task left beside it."""
        import glob  # only after an interrupted run: keep it off every start

        head, tail = os.path.split(self.path)
        for tmp in glob.glob(os.path.join(head, f".{glob.escape(tail)}.*{TMP_SUFFIX}")):
            _discard(tmp)

    def open(self, mode: str = "r") -> IO[Any]:
        """Open for reading (``r``, ``rb``) or for an atomic write (``w``, ``wb``), through
        the target's ``format`` when it has one (``flow.format.Nop``: binary)."""
        if self.format is not None:
            return self._open_formatted(mode)
        if mode in ("r", "rb", "rt"):
            if mode == "rb":
                return open(self.path, "rb")
            return open(self.path, encoding="utf-8")
        if mode in ("w", "wb", "wt"):
            return AtomicFile(self.path, binary=mode == "wb")  # type: ignore[return-value]
        raise ValueError(f"unsupported mode {mode!r} for {self!r}: use r, rb, w or wb")

    def _open_formatted(self, mode: str) -> Any:
        from .format import wrap

        if mode.replace("b", "").replace("t", "") == "w":
            return wrap(self.format, AtomicFile(self.path, binary=True), mode)
        if mode.replace("b", "").replace("t", "") != "r":
            raise ValueError(f"unsupported mode {mode!r} for {self!r}: use r, rb, w or wb")
        return wrap(self.format, open(self.path, "rb"), mode)

    def remove(self) -> None:
        """Delete the file or directory; a missing one is not an error. A symbolic link is
        removed itself, never what it points to (``out/`` naming a link to ``..`` included)."""
        path = self.path.rstrip("/" + os.sep) or self.path
        if os.path.isdir(path) and not os.path.islink(path):
            import shutil

            shutil.rmtree(path)
        else:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(path)

    def makedirs(self) -> None:
        """Create the parent directory (Luigi's habit before writing by hand)."""
        parent = os.path.dirname(self.path)
        if parent:
            os.makedirs(parent, exist_ok=True)

    @contextlib.contextmanager
    def temporary_path(self) -> Iterator[str]:
        """Yield a temporary path to write; it is moved into place when the block succeeds."""
        self.makedirs()
        tmp = _tmp_sibling(self.path)
        try:
            yield tmp
            _replace_path(tmp, self.path)
        except BaseException:
            _discard(tmp)
            raise

    @property
    def fn(self) -> str:  # Luigi's old name for the path
        return self.path


def _canonical(p: str) -> str:
    """The key a local file is recorded under: a normalized path, relative to the Flowfile
    directory when inside it. Cheap on the common path: a clean relative path is already canonical."""
    if p.startswith(("/", "./", "../")) or "/." in p or "//" in p or p.endswith("/"):
        p = os.path.normpath(p)
        if os.path.isabs(p):
            with contextlib.suppress(ValueError):
                rel = os.path.relpath(p)
                if not rel.startswith(".."):
                    p = rel
    return p


def _tree_snapshot(root: str) -> str:
    """A digest of the name, mtime, size and inode of everything below ``root``."""
    import xxhash

    h = xxhash.xxh3_128()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        for name in sorted(filenames) + [""]:
            full = os.path.join(dirpath, name) if name else dirpath
            try:
                st = os.lstat(full)
            except OSError:
                continue
            rel = os.path.relpath(full, root).encode("utf-8", "surrogateescape")
            h.update(b"%s\0%d %d %d\n" % (rel, st.st_mtime_ns, st.st_size, st.st_ino))
    return "tree:" + h.hexdigest()


def _replace_path(tmp: str, path: str) -> None:
    """Move ``tmp`` over ``path``. A directory cannot be renamed over a non-empty one: the old
    one is first moved aside (under a temporary name, so a crash leaves nothing a later run
    mistakes for output) and removed once the new one is in place."""
    if not (os.path.isdir(tmp) and os.path.isdir(path) and not os.path.islink(path)):
        os.replace(tmp, path)
        return
    aside = _tmp_sibling(path)
    os.replace(path, aside)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(aside, path)  # put the old one back: the task fails, the output stays
        raise
    _discard(aside)


def _tmp_sibling(path: str) -> str:
    head, tail = os.path.split(path)
    return os.path.join(head, f".{tail}.{os.urandom(4).hex()}{TMP_SUFFIX}")


def _discard(tmp: str) -> None:
    if os.path.isdir(tmp) and not os.path.islink(tmp):
        import shutil

        shutil.rmtree(tmp, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


class AtomicWriter(io.IOBase):
    """A file being written whose data lands only on a clean close (``_commit``); a ``with``
    block that raises, ``discard()`` or dropping it unclosed throws the data away (``_abandon``)."""

    _file: IO[Any]
    _done = False

    def _commit(self) -> None:
        raise NotImplementedError

    def _abandon(self) -> None:
        raise NotImplementedError

    def write(self, data: Any) -> int:
        return self._file.write(data)

    def writelines(self, lines: Any) -> None:
        self._file.writelines(lines)

    def flush(self) -> None:
        self._file.flush()

    def fileno(self) -> int:
        return self._file.fileno()

    def writable(self) -> bool:
        return True

    @property
    def closed(self) -> bool:  # type: ignore[override]
        return self._done

    def close(self) -> None:
        """Commit (Luigi's ``open('w') ... close()`` habit)."""
        if self._done:
            return
        self._done = True
        self._file.close()
        self._commit()

    def discard(self) -> None:
        """Throw the written data away; the target is left as it was."""
        if self._done:
            return
        self._done = True
        self._file.close()
        self._abandon()

    def __enter__(self) -> AtomicWriter:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is None:
            self.close()
        else:
            self.discard()

    def __del__(self) -> None:
        # Dropped without close(): the write never finished, so it must not land.
        with contextlib.suppress(Exception):
            self.discard()


class AtomicFile(AtomicWriter):
    """A file opened for writing whose content replaces ``path`` on a clean close."""

    def __init__(self, path: str, binary: bool = False) -> None:
        self.path = path
        self.tmp_path = _tmp_sibling(path)
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        try:
            fd = os.open(self.tmp_path, flags, 0o666)
        except FileNotFoundError:  # the directory is missing: create it only then (one syscall)
            os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
            fd = os.open(self.tmp_path, flags, 0o666)
        self._file = os.fdopen(fd, "wb") if binary else os.fdopen(fd, "w", encoding="utf-8")

    def _commit(self) -> None:
        os.replace(self.tmp_path, self.path)

    def _abandon(self) -> None:
        _discard(self.tmp_path)

    def __del__(self) -> None:
        # Dropped without close(): the write never finished, so it must not land.
        with contextlib.suppress(Exception):
            self.discard()
