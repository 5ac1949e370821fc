"""The action functions: one signature, ``action(ctx, data) -> result``.

Each checks authorization first (with :mod:`catalog.access.policy`), then validates, then
works, then records an audit event in the same transaction. The HTTP API, the web pages and
the CLI all call actions through :func:`call`; none reaches the database itself.

:func:`call` records the permission checks an action makes and refuses one that returns
without any (CKAN's ``check_access`` audit): an ``UncheckedAction`` error, a 500, unless
``MOSU_STRICT_PERMISSION_CHECKS`` is off, when it is logged and the result returned.
"""
from __future__ import annotations

import importlib
import logging
import pkgutil
from typing import Any, Callable, TypeVar

from catalog.access import policy
from catalog.access.context import Context
from catalog.core import validate
from catalog.core.errors import MosuError, UnknownAction

log = logging.getLogger(__name__)
T = TypeVar("T")

Action = Callable[[Context, dict[str, Any]], Any]
_REGISTRY: dict[str, Action] = {}
_LOADED = False


def action(func: Action) -> Action:
    """Register ``func`` under its own name; a second action of that name is a programming error
    (the later one would silently answer for both), refused when its module is imported."""
    found = _REGISTRY.get(func.__name__)
    if found is not None and (found.__module__, found.__qualname__) != (func.__module__, func.__qualname__):
        raise ValueError(f"two actions are named {func.__name__!r}: {found.__module__} and {func.__module__}")
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
    return run_checked(ctx, name, action_func, data)


class UncheckedAction(RuntimeError):
    """An action returned without having checked a permission: a bug, answered as a 500."""


def run_checked(ctx: Context, name: str, func: Callable[[Context, dict[str, Any]], T], data: dict[str, Any]) -> T:
    """``func(ctx, data)``, refused if it returns without a permission check (see the module doc).
    The streamed exports, which are not actions, come through here too."""
    with policy.recording() as checks:
        try:
            result = func(ctx, data)
        except MosuError as exc:  # what the audit event of a refused call names (outermost action wins)
            exc.action = name
            refused = next((c for c in reversed(checks) if not c.allowed), None)
            exc.denied = (refused.permission, refused.object) if refused is not None else exc.denied
            raise
    if not checks:
        if ctx.settings.strict_permission_checks:
            raise UncheckedAction(f"{name} returned without checking a permission")
        log.error("%s returned without checking a permission (MOSU_STRICT_PERMISSION_CHECKS is off)", name)
    return result


def _load() -> None:
    """Import every module of this package once: importing one registers its actions, so a new
    module needs no list to be added to."""
    global _LOADED
    if _LOADED:
        return
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    _LOADED = True
