"""Luigi's ``namespace()`` and ``auto_namespace()``: a task namespace for the classes defined
after the call, in the modules a scope names."""

from __future__ import annotations

from typing import Any

SAME_AS_MODULE = object()  # auto_namespace(): each class's namespace is its module's name

# scope (a module-name prefix; "" for every module) -> namespace, or SAME_AS_MODULE
_by_scope: dict[str, Any] = {}


def namespace(namespace: str | None = None, scope: str = "") -> None:
    """Give the task classes defined after this call the namespace ``namespace`` (None: none),
    in the modules whose name starts with ``scope`` (every module by default)."""
    _by_scope[scope] = namespace


def auto_namespace(scope: str = "") -> None:
    """Name the task classes defined after this call by their module: ``module.Class``."""
    _by_scope[scope] = SAME_AS_MODULE


def for_module(module: str) -> str | None:
    """The namespace a class defined now in ``module`` gets (the longest matching scope wins)."""
    scopes = [s for s in _by_scope if module == s or module.startswith(s) or not s]
    if not scopes:
        return None
    value = _by_scope[max(scopes, key=len)]
    return module if value is SAME_AS_MODULE else value
