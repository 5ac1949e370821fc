"""The actions' refusals in the page's language.

The catalog knows no language (it may not import Flask-Babel: the layers in setup.cfg), and the API
answers in English. The pages translate what a user meets on them in two ways:

- a message with values in it (a dataset's name, a date) by its error's ``code`` and ``params``
  (:meth:`catalog.core.errors.MosuError.coded`), each code a ``_()`` text here with the same values;
- a fixed message (``Dataset not found``, a form field's ``Missing value``) by its English text,
  which is looked up here; tests/test_web_errors.py checks each such text is still one the catalog says.

Anything else is shown as the action wrote it, in English: better an English reason than none. An
English page shows every message exactly as the action wrote it (the API's words).
"""
from __future__ import annotations

from flask import Blueprint
from flask_babel import get_locale
from flask_babel import gettext as _

from catalog.core.errors import MosuError, TooManyRequests

bp = Blueprint("errors", __name__)


def coded_texts() -> dict[str, str]:
    """Code -> the message's text in the page's language, with the error's ``params`` as placeholders."""
    return {
        "data.restricted": _("Access denied: dataset %(dataset)s is restricted; ask its publisher for access."),
        "data.registered": _("Access denied: sign in and accept the terms of dataset %(dataset)s to read its rows."),
        "data.embargo": _("Access denied: dataset %(dataset)s is under embargo until %(until)s."),
        "data.scoped_files": _("Access denied: whole files of dataset %(dataset)s hold every column, and your "
                               "grant covers some of them; use the data grid or an export."),
        "data.denied": _("Access denied: you may not read the data of dataset %(dataset)s."),
        "login_required": _("Access denied: sign in first."),
    }


def fixed_texts() -> dict[str, str]:
    """A fixed English message of the actions -> its text in the page's language."""
    return {
        "Dataset not found": _("Dataset not found"),
        "Resource not found": _("Resource not found"),
        "Missing value": _("Missing value"),
        "User not found": _("User not found"),
        "Organization not found": _("Organization not found"),
        "Access request not found": _("Access request not found"),
        "Missing value: sql must be a SELECT statement": _("Missing value: the query must be a SELECT statement"),
    }


def translated(error: MosuError | str) -> str:
    """An error (or one of a form's field messages) as the page shows it, in its language when known.
    An English page shows the action's own words, as the API answers them."""
    if str(get_locale() or "en") == "en":
        return error if isinstance(error, str) else error.message
    if isinstance(error, str):
        return fixed_texts().get(error, error)
    if error.code:
        text = coded_texts().get(error.code)
        if text is not None:
            try:
                return text % error.params
            except (KeyError, TypeError, ValueError):
                return error.message
    if isinstance(error, TooManyRequests) and error.retry_after:
        return _("Too many requests: try again in %(seconds)s seconds.", seconds=error.retry_after)
    return fixed_texts().get(error.message, error.message)


@bp.app_template_filter("error_text")
def error_text(value: object) -> str:
    """``translated`` for templates: a field's messages (a list or one string) in the page's language."""
    if isinstance(value, (list, tuple)):
        return " ".join(translated(str(v)) for v in value)
    return translated(value if isinstance(value, MosuError) else str(value))
