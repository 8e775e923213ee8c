"""Make-style helpers: ``flow.sh`` runs a shell command, ``flow.Files`` is a glob as an input."""

from __future__ import annotations

import contextlib
import glob
import os
import re
import shlex
import stat
import string
import subprocess
import sys
from typing import Any

from .errors import TaskFailure
from .parameter import Parameter
from .target import LocalTarget, Target
from .task import PARALLEL, ExternalTask, current_task, flatten


class CommandFailed(TaskFailure):
    """A command run by ``flow.sh`` exited with a non-zero status."""

    def __init__(self, command: str, status: int) -> None:
        self.command = command
        self.status = status
        what = f"killed by signal {-status}" if status < 0 else f"exit status {status}"
        super().__init__(f"command failed ({what}): {command}")


class PlaceholderError(ValueError):
    """A ``{name}`` in a ``flow.sh`` command that has no value."""


def sh(
    cmd: str | list[str],
    *,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    echo: bool = True,
    check: bool = True,
    **values: Any,
) -> int:
    """Run a command as make would: echo it, let its output through, fail the task on error.

    In a command line, ``{input}`` and ``{output}`` stand for the running task's input and output
    paths, shell-quoted (a list gives space-separated paths; ``{input[0]}`` and ``{output[name]}``
    pick one of a list or dict); ``{name}`` stands for a keyword argument ``name=value``, quoted
    the same way. Write ``{{`` and ``}}`` for literal braces (``awk '{{print $1}}'``).

    Args:
        cmd: a shell command line (run by ``/bin/sh``) or an argument list (run directly, not
            formatted).
        cwd: the directory to run it in (default: the Flowfile's).
        env: extra environment variables.
        echo: print the command before running it (prefixed with the task id when several
            tasks run at once).

    Inside a task's ``run()``, the parent directories of the task's local outputs are created
    first, so ``{output}`` can be written to directly.
        check: raise (failing the task) when the command exits non-zero.
        **values: values for ``{name}`` placeholders; paths and targets are shell-quoted.

    Returns:
        The command's exit status.
    """
    if isinstance(cmd, str):
        cmd = format_command(cmd, values)
    shown = cmd if isinstance(cmd, str) else shlex.join(cmd)
    task = current_task()
    if task is not None:
        # `cc -o {output}` cannot create out/; make users write `mkdir -p $(@D)` for this.
        for target in flatten(task.output()):
            makedirs = getattr(target, "makedirs", None)
            if makedirs is not None:
                makedirs()
    # The command runs with the real values; what is echoed (and named on failure) is masked.
    shown = _masked(shown, task)
    if echo:
        prefix = f"[{task.task_id}] " if task is not None and PARALLEL.get() else ""
        print(prefix + shown, flush=True)
    sys.stderr.flush()
    full_env = {**os.environ, **env} if env else None
    # The command inherits flow's file descriptors: with -j N the executor captures them.
    status = _spawn(cmd, cwd, full_env)
    if check and status != 0:
        raise CommandFailed(shown, status)
    return status


def _masked(text: str, task: Any) -> str:
    """``text`` with the running task's private parameter values replaced by ``****``."""
    if task is None:
        return text
    secrets = set()
    for name, param in task.get_params():
        value = task.param_kwargs.get(name)
        if param.private and value is not None:
            raw = param.serialize(value)
            secrets |= {raw, shlex.quote(raw), str(value), shlex.quote(str(value))}
    for secret in sorted(secrets - {""}, key=len, reverse=True):  # a quoted form before its core
        text = text.replace(secret, "****")
    return text


# As make does, a command line with nothing for the shell to interpret is run directly: one fork
# and exec instead of two. The rule: no character of _SHELL_CHARS (expansions, globs,
# redirections, operators, comments, backslashes, line breaks), no "=" in the first word (an
# assignment), and a first word that is not a shell builtin or keyword. Quotes are allowed: the
# line is split as sh would split it ('a b' and "a b" are one argument). Anything else, or a line
# with unbalanced quotes, goes to /bin/sh.
_SHELL_CHARS = frozenset("|&;<>()$`\\*?[]#~%{}!^\n\t\r\x0b\x0c")
_SHELL_WORDS = frozenset(
    ". : [ alias bg break case cd command continue do done echo elif else esac eval exec exit "
    "export false fc fg fi for function getopts hash if jobs kill local printf pwd read "
    "readonly return select set shift source test then time times trap true type typeset "
    "ulimit umask unalias unset until wait while".split()
)


def direct_argv(cmd: str) -> list[str] | None:
    """The argument list ``cmd`` runs as when it needs no shell (see the rule above), else None."""
    if not _SHELL_CHARS.isdisjoint(cmd) or "=" in cmd.lstrip(" ").split(" ", 1)[0]:
        return None
    if "'" in cmd or '"' in cmd:
        try:
            words = shlex.split(cmd)
        except ValueError:  # unbalanced quotes: the shell says what is wrong
            return None
    else:
        words = cmd.split()
    if not words or not words[0] or words[0] in _SHELL_WORDS:
        return None
    return words


def _spawn(cmd: str | list[str], cwd: str | None, env: dict[str, str] | None) -> int:
    shell = False
    if isinstance(cmd, str):
        argv = direct_argv(cmd)
        shell = argv is None
        if argv is not None:
            cmd = argv
    try:
        proc = subprocess.Popen(cmd, shell=shell, cwd=cwd, env=env)
    except FileNotFoundError:
        print(f"flow.sh: {cmd[0]}: command not found", file=sys.stderr, flush=True)
        return 127  # what /bin/sh answers
    except PermissionError:
        print(f"flow.sh: {cmd[0]}: permission denied", file=sys.stderr, flush=True)
        return 126
    try:
        return proc.wait()
    except BaseException:
        # Ctrl-C, SIGTERM, a failing run: the command and everything it started stop with it,
        # so that nothing writes an output after flow has cleaned it up.
        _kill_tree(proc)
        raise


def _kill_tree(proc: subprocess.Popen[Any]) -> None:
    """Kill a command and every process below it, then reap it.

    The tree is frozen first (SIGSTOP, scanning again until no new process appears), so that a
    process forked during the scan is found, not orphaned; then everything is killed at once.
    """
    import signal

    if proc.poll() is not None:
        return  # it ended (a terminal's Ctrl-C reaches the whole group): its pid may be reused
    frozen: list[int] = []
    found = [proc.pid]
    while found:
        for pid in found:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGSTOP)
            frozen.append(pid)
        found = [pid for pid in _descendants(proc.pid) if pid not in frozen]
    for pid in frozen:
        with contextlib.suppress(OSError):
            os.kill(pid, signal.SIGKILL)
    try:
        proc.wait(timeout=5)
    except (subprocess.TimeoutExpired, KeyboardInterrupt):
        pass


def _descendants(root: int) -> list[int]:
    """Every process below ``root``, from /proc (Linux); elsewhere, none."""
    children: dict[int, list[int]] = {}
    try:
        names = os.listdir("/proc")
    except OSError:
        return []
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        # The command name (field 2) may hold spaces and parentheses: split after its last ")".
        ppid = int(stat[stat.rindex(b")") + 2 :].split()[1])
        children.setdefault(ppid, []).append(int(name))
    found, stack = [], [root]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def format_command(cmd: str, values: dict[str, Any]) -> str:
    """Expand ``{input}``, ``{output}`` and ``{name}`` in ``cmd``, shell-quoting every path."""
    formatter = string.Formatter()
    parts = []
    try:
        parsed = list(formatter.parse(cmd))
    except ValueError as exc:
        raise PlaceholderError(
            f"flow.sh: {exc} in {cmd!r}; write {{{{ and }}}} for literal braces"
        ) from None
    for literal, field, spec, conversion in parsed:
        parts.append(literal)
        if field is None:
            continue
        value = _field_value(cmd, field, values)
        if conversion:
            value = formatter.convert_field(value, conversion)
        parts.append(_quoted(value, spec or ""))
    return "".join(parts)


def _field_value(cmd: str, field: str, values: dict[str, Any]) -> Any:
    """The value of ``{field}``: a keyword value, or the running task's input/output, indexed."""
    key = field.split(".", 1)[0].split("[", 1)[0]
    if not key or key.isdigit():
        raise PlaceholderError(
            f"flow.sh: positional placeholder {{{field}}} in {cmd!r}; name it, "
            "e.g. {src} with src=..., or write {{ and }} for literal braces"
        )
    if key in values:
        namespace = values
    elif key in ("input", "output"):
        task = current_task()
        if task is None:
            raise PlaceholderError(
                f"flow.sh: {{{key}}} in {cmd!r} is only known inside a task's run(); "
                f"pass {key}=... to flow.sh outside a task"
            )
        namespace = {key: task.input() if key == "input" else task.output()}
    else:
        raise PlaceholderError(
            f"flow.sh: unknown placeholder {{{key}}} in {cmd!r}; pass {key}=... to flow.sh, "
            "or write {{ and }} for literal braces"
        )
    try:
        value, _ = string.Formatter().get_field(field, (), namespace)
    except (KeyError, IndexError, AttributeError, TypeError) as exc:
        raise PlaceholderError(f"flow.sh: cannot look up {{{field}}} in {cmd!r}: {exc!r}") from None
    return value


def _quoted(value: Any, spec: str) -> str:
    """A path, target or string shell-quoted; a list or dict as space-separated quoted items."""
    if isinstance(value, dict):
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        return " ".join(_quoted(v, spec) for v in value)
    path = getattr(value, "path", None)
    if isinstance(path, str):
        value = path
    elif isinstance(value, os.PathLike):
        value = os.fspath(value)
    return shlex.quote(format(value, spec))


class _NoMatch(Target):
    """Stands for a glob that matched nothing: a missing external input."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    def exists(self) -> bool:
        return False

    def __str__(self) -> str:
        return f"no file matches {self.pattern!r}"


_MAGIC = re.compile(r"[*?[]")  # what makes glob.glob match rather than take a path as it is


def _is_file(path: str) -> bool:
    """What ``glob`` makes of a literal path, kept by ``Files``: it exists (a dangling symlink
    too), and it is not a directory."""
    try:
        return not stat.S_ISDIR(os.stat(path).st_mode)
    except (OSError, ValueError):
        return os.path.lexists(path)


class Files(ExternalTask):
    """The files matching a glob (``**`` recurses), as an input: ``requires(): return flow.Files("src/*.c")``.

    A file appearing, disappearing or changing counts as a change for the tasks that need them;
    a pattern that matches nothing is a missing input. A URL pattern (``s3://bucket/raw/*.csv``)
    matches remote objects, with storage options from fsspec's configuration.
    """

    pattern = Parameter(
        description="a glob pattern, relative to the Flowfile; ** matches directories"
    )

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if "@" in self.pattern and "://" in self.pattern:
            from .remote import credentials_refused

            credentials_refused(self.pattern)

    def output(self) -> list[Target]:
        if "://" in self.pattern:
            from .remote import glob as remote_glob
            from .remote import is_remote

            if is_remote(self.pattern):
                found = remote_glob(self.pattern)
                return list(found) if found else [_NoMatch(self.pattern)]
        if not _MAGIC.search(self.pattern):
            # A literal path (what a Makefile replacement writes per task): one stat, no glob.
            return (
                [LocalTarget(self.pattern)] if _is_file(self.pattern) else [_NoMatch(self.pattern)]
            )
        matches = sorted(p for p in glob.glob(self.pattern, recursive=True) if not os.path.isdir(p))
        if not matches:
            return [_NoMatch(self.pattern)]
        return [LocalTarget(p) for p in matches]
