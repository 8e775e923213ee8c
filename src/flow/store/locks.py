"""Cross-process locks on names (output keys, task ids) in ``.flow/lock``, with no daemon."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterable

from ..errors import ManifestError


class Locks:
    """Exclusive cross-process locks on names (output keys, task ids), with no daemon.

    Each name is one byte of ``.flow/lock``, locked with POSIX record locks: no file is created
    per task, and the kernel releases a dead process's locks, so a killed flow never blocks the
    next one. Record locks belong to the process, and closing any descriptor of the file drops
    them all: this object keeps the only one.
    """

    def __init__(self, path: str) -> None:
        import fcntl

        self._fcntl = fcntl
        self.path = path
        try:
            # O_NOFOLLOW: a symlink planted at .flow/lock must not make flow open another file.
            flags = os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0)
            self._fd: int | None = os.open(path, flags, 0o644)
        except OSError as exc:
            fix = "remove it" if os.path.islink(path) else "make .flow/ and it writable"
            raise ManifestError(
                f"cannot open the lock file {path}: {exc.strerror}; {fix}"
            ) from None
        self.held: set[str] = set()

    @staticmethod
    def _offset(name: str) -> int:
        import xxhash

        # surrogateescape: a non-UTF-8 file name is still a name to lock.
        return xxhash.xxh64_intdigest(name.encode("utf-8", "surrogateescape")) >> 2

    def _lock(self, name: str) -> bool:
        assert self._fd is not None
        try:
            self._fcntl.lockf(
                self._fd, self._fcntl.LOCK_EX | self._fcntl.LOCK_NB, 1, self._offset(name)
            )
        except OSError:  # EAGAIN/EACCES: another process holds it
            return False
        return True

    def _unlock(self, name: str) -> None:
        assert self._fd is not None
        with contextlib.suppress(OSError):
            self._fcntl.lockf(self._fd, self._fcntl.LOCK_UN, 1, self._offset(name))

    def acquire(self, names: Iterable[str]) -> bool:
        """Take every lock in ``names`` or none of them (never blocks, so never deadlocks)."""
        taken: list[str] = []
        for name in sorted(set(names)):
            # Not re-entrant: a name this process holds is busy (a task running in a worker
            # must not be started again by a dynamic dependency).
            if name not in self.held and self._lock(name):
                taken.append(name)
                continue
            for n in taken:
                self._unlock(n)
            return False
        self.held.update(taken)
        return True

    def release(self, names: Iterable[str]) -> None:
        for name in set(names):
            if name in self.held:
                self.held.discard(name)
                self._unlock(name)

    def probe(self, name: str) -> bool:
        """True when no other process holds ``name`` (checked by taking and dropping it)."""
        if name in self.held:
            return False
        if not self._lock(name):
            return False
        self._unlock(name)
        return True

    def close(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # drops every lock this process holds on the file
            self._fd = None
            self.held.clear()
