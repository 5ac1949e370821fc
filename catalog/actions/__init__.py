"""The action functions: one signature, ``action(ctx, data) -> result``.

Each checks authorization first, then validates, then works, then records an
audit event in the same transaction. The HTTP API, the web pages and the CLI
all call actions through :func:`get_action`; none reaches the database itself.
"""
from __future__ import annotations

from typing import Any, Callable

from catalog.access.context import Context
from catalog.core import validate
from catalog.core.errors import UnknownAction

Action = Callable[[Context, dict[str, Any]], Any]
_REGISTRY: dict[str, Action] = {}


def action(func: Action) -> Action:
    """Register ``func`` under its own name."""
    _REGISTRY[func.__name__] = func
    return func


def get_action(name: str) -> Action:
    _load()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise UnknownAction(name) from None


def action_names() -> list[str]:
    _load()
    return sorted(_REGISTRY)


def call(ctx: Context, name: str, data: dict[str, Any] | None = None) -> Any:
    """Run action ``name``: the one entry of the API, the web pages and the CLI."""
    action_func = get_action(name)
    data = dict(data or {})
    validate.unicode_text(data)
    return action_func(ctx, data)


def _load() -> None:
    # Importing the modules registers their actions.
    from catalog.actions import (  # noqa: F401
        datastore,
        groups,
        packages,
        quality,
        resources,
        search,
        sql,
        status,
        tags,
        uploads,
        users,
    )
