"""The errors flow raises for a user's mistakes, each with the exit status SPEC §2 gives it."""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_USAGE = 2
EXIT_SIGINT = 130
EXIT_SIGTERM = 143


class FlowError(Exception):
    """A problem the user can fix; printed as a few clear lines, never as a traceback."""

    exit_status = EXIT_USAGE


class UsageError(FlowError):
    """Bad command line: unknown task or option, bad parameter value."""


class ParameterError(UsageError):
    """A task parameter is unknown, missing, or has a value of the wrong form."""


class ConfigError(UsageError):
    """A configuration file (luigi.cfg, luigi.toml, pyproject.toml) cannot be read or sets a bad value."""


class FlowfileError(FlowError):
    """The Flowfile cannot be found, or fails to import."""


class GraphError(FlowError):
    """The task graph is malformed: a cycle, two tasks declaring one output, a bad requires()."""


class TargetError(FlowError):
    """A user's target failed to answer ``exists()``, ``fingerprint()`` or ``info()``."""


class ManifestError(FlowError):
    """The `.flow/` store cannot be used (written by a newer flow, not writable)."""


class Terminated(BaseException):
    """SIGTERM arrived: stop like Ctrl-C, with exit status 143."""


class TaskFailure(Exception):
    """Raised inside the executor for a task whose run() failed or left an output missing."""
