"""The action functions: one signature, ``action(ctx, data) -> result``.

Each checks authorization first (with :mod:`catalog.access.policy`), then validates, then
works, then records an audit event in the same transaction. The HTTP API, the web pages and
the CLI all call actions through :func:`call`; none reaches the database itself.

:func:`call` records the permission checks an action makes and refuses one that returns
without any (CKAN's ``check_access`` audit): an ``UncheckedAction`` error, a 500, unless
``MOSU_STRICT_PERMISSION_CHECKS`` is off, when it is logged and the result returned.
"""
from __future__ import annotations

import logging
from typing import Any, Callable, TypeVar

from catalog.access import policy
from catalog.access.context import Context
from catalog.core import validate
from catalog.core.errors import BadRequest

log = logging.getLogger(__name__)
T = TypeVar("T")

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
        raise BadRequest(f"Action name not known: {name}") from None


def action_names() -> list[str]:
    _load()
    return sorted(_REGISTRY)


def call(ctx: Context, name: str, data: dict[str, Any] | None = None) -> Any:
    """Run action ``name``: the one entry of the API, the web pages and the CLI."""
    action_func = get_action(name)
    data = dict(data or {})
    validate.unicode_text(data)
    return run_checked(ctx, name, action_func, data)


class UncheckedAction(RuntimeError):
    """An action returned without having checked a permission: a bug, answered as a 500."""


def run_checked(ctx: Context, name: str, func: Callable[[Context, dict[str, Any]], T], data: dict[str, Any]) -> T:
    """``func(ctx, data)``, refused if it returns without a permission check (see the module doc).
    The streamed exports, which are not actions, come through here too."""
    with policy.recording() as checks:
        result = func(ctx, data)
    if not checks:
        if ctx.settings.strict_permission_checks:
            raise UncheckedAction(f"{name} returned without checking a permission")
        log.error("%s returned without checking a permission (MOSU_STRICT_PERMISSION_CHECKS is off)", name)
    return result


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
