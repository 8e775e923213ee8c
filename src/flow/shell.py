"""Make-style helpers: ``flow.sh`` runs a shell command, ``flow.Files`` is a glob as an input."""

from __future__ import annotations

import glob
import os
import shlex
import subprocess
import sys

from .errors import TaskFailure
from .parameter import Parameter
from .target import LocalTarget, Target
from .task import ExternalTask


class CommandFailed(TaskFailure):
    """A command run by ``flow.sh`` exited with a non-zero status."""

    def __init__(self, command: str, status: int) -> None:
        self.command = command
        self.status = status
        what = f"killed by signal {-status}" if status < 0 else f"exit status {status}"
        super().__init__(f"command failed ({what}): {command}")


def sh(
    cmd: str | list[str],
    *,
    cwd: str | None = None,
    env: dict[str, str] | None = None,
    echo: bool = True,
    check: bool = True,
) -> int:
    """Run a command as make would: echo it, let its output through, fail the task on error.

    Args:
        cmd: a shell command line (run by ``/bin/sh``) or an argument list (run directly).
        cwd: the directory to run it in (default: the Flowfile's).
        env: extra environment variables.
        echo: print the command before running it.
        check: raise (failing the task) when the command exits non-zero.

    Returns:
        The command's exit status.
    """
    shown = cmd if isinstance(cmd, str) else shlex.join(cmd)
    if echo:
        print(shown, flush=True)
    sys.stderr.flush()
    full_env = {**os.environ, **env} if env else None
    proc = subprocess.run(cmd, shell=isinstance(cmd, str), cwd=cwd, env=full_env)
    if check and proc.returncode != 0:
        raise CommandFailed(shown, proc.returncode)
    return proc.returncode


class _NoMatch(Target):
    """Stands for a glob that matched nothing: a missing external input."""

    def __init__(self, pattern: str) -> None:
        self.pattern = pattern

    def exists(self) -> bool:
        return False

    def __str__(self) -> str:
        return f"no file matches {self.pattern!r}"


class Files(ExternalTask):
    """The files matching a glob (``**`` recurses), as an input: ``requires(): return flow.Files("src/*.c")``.

    A file appearing, disappearing or changing counts as a change for the tasks that need them;
    a pattern that matches nothing is a missing input.
    """

    pattern = Parameter(
        description="a glob pattern, relative to the Flowfile; ** matches directories"
    )

    def output(self) -> list[Target]:
        matches = sorted(p for p in glob.glob(self.pattern, recursive=True) if not os.path.isdir(p))
        if not matches:
            return [_NoMatch(self.pattern)]
        return [LocalTarget(p) for p in matches]
