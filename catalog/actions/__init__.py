"""The action functions: one signature, ``action(ctx, data) -> result``.

Each checks authorization first, then validates, then works, then records an
audit event in the same transaction. The HTTP API, the web pages and the CLI
all call actions through :func:`get_action`; none reaches the database itself.
"""
from __future__ import annotations

import importlib
import pkgutil
from typing import Any, Callable

from catalog.access.context import Context
from catalog.core import validate
from catalog.core.errors import UnknownAction

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
    return action_func(ctx, data)


def _load() -> None:
    """Import every module of this package once: importing one registers its actions, so a new
    module needs no list to be added to."""
    global _LOADED
    if _LOADED:
        return
    for module in pkgutil.iter_modules(__path__):
        importlib.import_module(f"{__name__}.{module.name}")
    _LOADED = True
