"""Luigi's public names and their place in flow: implemented, or left out with the flow way."""

from __future__ import annotations

# Names flow leaves out on purpose -> what to use instead. Reading one of them from `flow` (as
# `luigi.RemoteScheduler` after `import flow as luigi`) fails with this advice.
ABSENT = {
    "rpc": "flow has no RPC scheduler: run on a cluster with --dask ADDRESS, watch runs with --serve",
    "RemoteScheduler": "flow has no remote scheduler: run on a cluster with --dask ADDRESS, "
    "watch runs with --serve",
    "RPCError": "flow has no RPC scheduler, so no RPCError: run on a cluster with --dask ADDRESS",
    "configuration": "flow reads luigi.cfg/luigi.toml and [tool.flow] itself: use flow.Config "
    "classes for settings, and flow --show-config to see where each value came from",
    "interface": "use flow.build([...]) and flow.run() (luigi.interface's build and run)",
}


def absent_message(name: str) -> str:
    """The AttributeError text for ``flow.NAME``: the flow way for a name left out on purpose."""
    if name in ABSENT:
        return f"module 'flow' has no attribute {name!r}: {ABSENT[name]}"
    return f"module 'flow' has no attribute {name!r}"
