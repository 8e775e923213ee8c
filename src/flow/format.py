"""File formats as Luigi has them (Nop, UTF8, Gzip, Bzip2, chained with ``>>``) and ``wrap``,
which puts one around an opened binary file.

A format turns a binary pipe into the file a task reads or writes: ``pipe_reader(pipe)`` and
``pipe_writer(pipe)``. A chain reads from the task's side to the file's: ``UTF8 >> Gzip`` takes
text, encodes it, then compresses it. Writers stay atomic: closing a format's file commits the
binary writer below it, and leaving a ``with`` block by an exception discards it (the writer's
``discard()``), so a failed task never leaves half a file.
"""

from __future__ import annotations

import contextlib
import io
import os
from typing import Any

__all__ = [
    "Bzip2",
    "Bzip2Format",
    "ChainFormat",
    "Format",
    "Gzip",
    "GzipFormat",
    "MixedUnicodeBytes",
    "MixedUnicodeBytesFormat",
    "NewlineFormat",
    "Nop",
    "NopFormat",
    "SysNewLine",
    "Text",
    "TextFormat",
    "UTF8",
    "get_default_format",
    "wrap",
]


def wrap(fmt: Any, binary_file: Any, mode: str) -> Any:
    """The file a task sees for ``binary_file`` opened in ``mode`` through format ``fmt``.

    Args:
        fmt: a Format (``Nop``, ``UTF8 >> Gzip``, a user's own with ``pipe_reader``/``pipe_writer``),
            or None: text (UTF-8) for ``r``/``w``, the binary file itself for ``rb``/``wb``.
        binary_file: an already opened binary file (read), or a binary atomic writer (write)
            whose ``close()`` commits and whose ``discard()``, if it has one, throws the data away.
        mode: ``r``, ``rb``, ``rt``, ``w``, ``wb`` or ``wt``; with a format the ``b`` is
            ignored, as in Luigi (the format says what the task reads and writes).
    """
    rw = mode.replace("b", "").replace("t", "")
    if rw not in ("r", "w"):
        raise ValueError(f"unsupported mode {mode!r}: use r, rb, w or wb")
    if fmt is None:
        fmt = Nop if "b" in mode else UTF8
    return fmt.pipe_writer(binary_file) if rw == "w" else fmt.pipe_reader(binary_file)


class Format:
    """A file format: ``pipe_reader`` and ``pipe_writer`` wrap a pipe; ``a >> b`` chains."""

    input: str = "bytes"  # what the task's side takes: "bytes" or "unicode"
    output: str = "bytes"  # what goes to the pipe below

    def pipe_reader(self, input_pipe: Any) -> Any:
        raise NotImplementedError

    def pipe_writer(self, output_pipe: Any) -> Any:
        raise NotImplementedError

    def __rshift__(self, other: Any) -> ChainFormat:
        return ChainFormat(self, other)


class ChainFormat(Format):
    """Formats applied in turn: the first faces the task, the last the file."""

    def __init__(self, *formats: Any, check_consistency: bool = True) -> None:
        self.args = formats
        self.input = getattr(formats[0], "input", "bytes")
        self.output = getattr(formats[-1], "output", "bytes")
        if not check_consistency:
            return
        for a, b in zip(formats, formats[1:], strict=False):
            out, want = getattr(a, "output", None), getattr(b, "input", None)
            if out and want and out != want:
                raise TypeError(
                    f"cannot chain {type(a).__name__} >> {type(b).__name__}: "
                    f"{type(b).__name__} takes {want} but {type(a).__name__} gives {out}"
                )

    def pipe_reader(self, input_pipe: Any) -> Any:
        for fmt in reversed(self.args):
            input_pipe = fmt.pipe_reader(input_pipe)
        return input_pipe

    def pipe_writer(self, output_pipe: Any) -> Any:
        for fmt in reversed(self.args):
            output_pipe = fmt.pipe_writer(output_pipe)
        return output_pipe


class NopFormat(Format):
    """Bytes as they are: the pipe itself (``format=Nop`` opens a target in binary)."""

    def pipe_reader(self, input_pipe: Any) -> Any:
        return input_pipe

    def pipe_writer(self, output_pipe: Any) -> Any:
        return output_pipe


class TextFormat(Format):
    """Text encoded as ``encoding`` (UTF-8 by default); Luigi's ``Text`` and ``UTF8``."""

    input = "unicode"
    output = "bytes"

    def __init__(self, encoding: str = "utf-8", **options: Any) -> None:
        self.encoding = encoding
        self.options = options  # newline=, errors=: as io.TextIOWrapper takes them

    def pipe_reader(self, input_pipe: Any) -> Any:
        return _Layer(self._text(input_pipe), input_pipe, writing=False)

    def pipe_writer(self, output_pipe: Any) -> Any:
        return _Layer(self._text(output_pipe), output_pipe, writing=True)

    def _text(self, pipe: Any) -> io.TextIOWrapper:
        return io.TextIOWrapper(_Shield(pipe), encoding=self.encoding, **self.options)  # type: ignore[arg-type]


class GzipFormat(Format):
    """gzip compression (in this process, with Python's ``gzip``)."""

    def __init__(self, compression_level: int | None = None) -> None:
        self.compression_level = compression_level

    def pipe_reader(self, input_pipe: Any) -> Any:
        import gzip

        return _Layer(gzip.GzipFile(fileobj=input_pipe, mode="rb"), input_pipe, writing=False)

    def pipe_writer(self, output_pipe: Any) -> Any:
        import gzip

        level = 9 if self.compression_level is None else int(self.compression_level)
        stream = gzip.GzipFile(fileobj=output_pipe, mode="wb", compresslevel=level, mtime=0)
        return _Layer(stream, output_pipe, writing=True)


class Bzip2Format(Format):
    """bzip2 compression (with Python's ``bz2``)."""

    def pipe_reader(self, input_pipe: Any) -> Any:
        import bz2

        return _Layer(bz2.BZ2File(input_pipe, mode="rb"), input_pipe, writing=False)

    def pipe_writer(self, output_pipe: Any) -> Any:
        import bz2

        return _Layer(bz2.BZ2File(output_pipe, mode="wb"), output_pipe, writing=True)


class NewlineFormat(Format):
    """Bytes with ``\\r\\n`` and ``\\r`` read as ``\\n``, and ``\\n`` written as the system's."""

    def pipe_reader(self, input_pipe: Any) -> Any:
        data = input_pipe.read().replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        input_pipe.close()
        return io.BytesIO(data)

    def pipe_writer(self, output_pipe: Any) -> Any:
        return _Layer(_Convert(output_pipe, _to_system_newlines), output_pipe, writing=True)


class MixedUnicodeBytesFormat(Format):
    """A writer that takes str (encoded as UTF-8) as well as bytes."""

    output = "bytes"

    def pipe_reader(self, input_pipe: Any) -> Any:
        return input_pipe

    def pipe_writer(self, output_pipe: Any) -> Any:
        return _Layer(_Convert(output_pipe, _as_bytes), output_pipe, writing=True)


def _to_system_newlines(data: bytes) -> bytes:
    return data.replace(b"\n", os.linesep.encode())


def _as_bytes(data: Any) -> bytes:
    return data.encode("utf-8") if isinstance(data, str) else bytes(data)


Text = TextFormat()
UTF8 = TextFormat(encoding="utf-8")
Nop = NopFormat()
Gzip = GzipFormat()
Bzip2 = Bzip2Format()
SysNewLine = NewlineFormat()
MixedUnicodeBytes = MixedUnicodeBytesFormat()


def get_default_format() -> Format:
    """The format of a target opened in text mode without one: UTF-8 text."""
    return UTF8


def discard(pipe: Any) -> None:
    """Throw away what was written to ``pipe``: its ``discard()``, else (no such thing) close it."""
    throw_away = getattr(pipe, "discard", None)
    if throw_away is not None:
        throw_away()
    else:
        pipe.close()


class _Shield:
    """A pipe whose ``close()`` does nothing: a TextIOWrapper closing (or being collected) must
    not commit the atomic writer below; the layer above decides that."""

    def __init__(self, pipe: Any) -> None:
        self._pipe = pipe
        self.closed = False

    def __getattr__(self, name: str) -> Any:
        if name == "_pipe":
            raise AttributeError(name)
        return getattr(self._pipe, name)

    def close(self) -> None:
        self.closed = True

    def readable(self) -> bool:
        return bool(getattr(self._pipe, "readable", lambda: True)())

    def writable(self) -> bool:
        return bool(getattr(self._pipe, "writable", lambda: True)())

    def seekable(self) -> bool:
        return False


class _Convert:
    """Writes through ``convert`` to the pipe below."""

    def __init__(self, pipe: Any, convert: Any) -> None:
        self._pipe = pipe
        self._convert = convert

    def write(self, data: Any) -> int:
        self._pipe.write(self._convert(data))
        return len(data)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        self._pipe.flush()

    def writable(self) -> bool:
        return True

    def close(self) -> None:
        """Nothing of its own to close: the layer closes the pipe."""


class _Layer:
    """One format's stream over the pipe below it. ``close()`` finishes the stream, then closes
    (for a writer: commits) the pipe; a failed ``with`` block, or a writer dropped unclosed,
    discards the pipe instead."""

    def __init__(self, stream: Any, below: Any, writing: bool) -> None:
        self._stream = stream
        self._below = below
        self._writing = writing
        self._closed = False

    def __getattr__(self, name: str) -> Any:
        if name.startswith("__") or name in ("_stream", "_below", "_writing", "_closed"):
            raise AttributeError(name)
        return getattr(self._stream, name)

    def __iter__(self) -> Any:
        return iter(self._stream)

    def __next__(self) -> Any:
        return next(self._stream)

    def readable(self) -> bool:
        return not self._writing

    def writable(self) -> bool:
        return self._writing

    def seekable(self) -> bool:
        return False

    @property
    def closed(self) -> bool:
        return self._closed

    def close(self) -> None:
        """Finish this stream (a gzip trailer, buffered text), then close the pipe below."""
        if self._closed:
            return
        self._closed = True
        try:
            self._stream.close()
        except BaseException:
            if self._writing:
                discard(self._below)
            raise
        self._below.close()

    def discard(self) -> None:
        """Throw away what was written: nothing reaches the target."""
        if self._closed:
            return
        self._closed = True
        with contextlib.suppress(Exception):
            self._stream.close()
        discard(self._below)

    def __enter__(self) -> _Layer:
        return self

    def __exit__(self, exc_type: Any, exc: Any, tb: Any) -> None:
        if exc_type is not None and self._writing:
            self.discard()
        else:
            self.close()

    def __del__(self) -> None:
        # A writer dropped without close() never finished: it must not land.
        with contextlib.suppress(Exception):
            if self._writing:
                self.discard()
            else:
                self.close()
