"""In-memory targets for a pipeline's own tests (Luigi's ``luigi.mock``): atomic on close, with
a key and a fingerprint so a build records them like files."""

from __future__ import annotations

import io
from typing import Any

from .target import Info, Target

__all__ = ["MockFileSystem", "MockTarget"]


class MockFileSystem:
    """The store every MockTarget of this process shares: path -> bytes."""

    _data: dict[str, bytes] = {}

    def get_all_data(self) -> dict[str, bytes]:
        return self._data

    def get_data(self, fn: str) -> bytes:
        return self._data[fn]

    def exists(self, path: str) -> bool:
        return path in self._data

    def remove(self, path: str, recursive: bool = True, skip_trash: bool = True) -> None:
        for fn in [p for p in self._data if p == path or (recursive and p.startswith(path))]:
            del self._data[fn]

    def move(self, path: str, dest: str, raise_if_exists: bool = False) -> None:
        if raise_if_exists and dest in self._data:
            raise FileExistsError(dest)
        self._data[dest] = self._data.pop(path)

    def listdir(self, path: str) -> list[str]:
        return sorted(p for p in self._data if p.startswith(path))

    def clear(self) -> None:
        self._data.clear()


class _Writer(io.RawIOBase):
    """Bytes for one MockTarget: they land on ``close()``, and not at all on ``discard()``."""

    def __init__(self, fs: MockFileSystem, path: str) -> None:
        self._fs, self._path, self._buf = fs, path, io.BytesIO()

    def writable(self) -> bool:
        return True

    def write(self, data: Any) -> int:
        return self._buf.write(data)

    def close(self) -> None:
        if not self.closed:
            self._fs._data[self._path] = self._buf.getvalue()
        super().close()

    def discard(self) -> None:
        if not self.closed:
            super().close()

    def __exit__(self, exc_type: Any, *rest: Any) -> None:
        self.discard() if exc_type is not None else self.close()

    def __del__(self) -> None:
        self.discard()  # dropped without close(): the write never finished


class MockTarget(Target):
    """A file kept in memory, shared by every MockTarget of the process with the same path.

    Writes are atomic: the data appears when the file is closed (a failed ``with`` leaves none).
    flow records it under ``mock:PATH`` with a content fingerprint, so within one process a
    second build finds it up to date. Its data lives in this process only: build tasks that
    write MockTargets in-process (``-j 1``, or ``flow.build`` without ``workers``).
    """

    fs = MockFileSystem()
    in_process = True  # its data is in this process: the tasks writing it run here too

    def __init__(
        self, fn: str, is_tmp: bool = False, mirror_on_stderr: bool = False, format: Any = None
    ) -> None:
        self.path = self.fn = fn
        self.format = format
        self.key: str = f"mock:{fn}"

    def exists(self) -> bool:
        return self.path in self.fs._data

    def fingerprint(self) -> str | None:
        import xxhash

        data = self.fs._data.get(self.path)
        return None if data is None else xxhash.xxh3_128_hexdigest(data)

    def info(self) -> Info:
        fingerprint = self.fingerprint()
        return Info(fingerprint is not None, fingerprint)

    def snapshot(self) -> Any:
        return self.fingerprint()

    def remove(self) -> None:
        self.fs._data.pop(self.path, None)

    def move(self, path: str, raise_if_exists: bool = False) -> None:
        self.fs.move(self.path, path, raise_if_exists)

    def open(self, mode: str = "r") -> Any:
        """``r``/``w`` text (UTF-8) or ``rb``/``wb`` bytes, through ``format`` when given."""
        from .format import wrap

        if mode.replace("b", "").replace("t", "") == "w":
            return wrap(self.format, _Writer(self.fs, self.path), mode)
        return wrap(self.format, io.BytesIO(self.fs.get_data(self.path)), mode)

    def __repr__(self) -> str:
        return f"MockTarget({self.path!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MockTarget) and other.path == self.path

    def __hash__(self) -> int:
        return hash(("mock", self.path))
