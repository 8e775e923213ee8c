"""Luigi's ``LuigiStatusCode``: one word for how a build went, from a BuildResult."""

from __future__ import annotations

import enum
from typing import Any


class LuigiStatusCode(enum.Enum):
    """How a build went, as Luigi's run result says it (a face and a phrase)."""

    SUCCESS = (":)", "there were no failed tasks or missing dependencies")
    SUCCESS_WITH_RETRY = (":)", "there were failed tasks but they all succeeded in a retry")
    FAILED = (":(", "there were failed tasks")
    FAILED_AND_SCHEDULING_FAILED = (
        ":(",
        "there were failed tasks and tasks whose scheduling failed",
    )
    SCHEDULING_FAILED = (":(", "there were tasks whose scheduling failed")
    NOT_RUN = (":|", "there were tasks that were not granted run permission by the scheduler")
    MISSING_EXT = (":|", "there were missing external dependencies")


def status_of(result: Any) -> LuigiStatusCode:
    """The status code of a ``flow.build`` result."""
    statuses = {r.status for r in result.results.values()}
    if "failed" in statuses:
        return LuigiStatusCode.FAILED
    if "missing-external" in statuses or (result.plan is not None and result.plan.missing):
        return LuigiStatusCode.MISSING_EXT
    if any(getattr(r, "attempts", 1) > 1 for r in result.results.values()):
        return LuigiStatusCode.SUCCESS_WITH_RETRY
    if "skipped" in statuses:
        return LuigiStatusCode.NOT_RUN
    return LuigiStatusCode.SUCCESS
