"""A resource's expectation suite, as its editors read and change it.

The page lists the suite's expectations (type, column, arguments, severity) with a box to remove
each one, an editable arguments field and severity, and a row that adds one more. A save sends the
whole suite to ``quality_suite_update``, which checks it against the table's columns and
re-validates the current version. The action names a bad expectation by its place in the suite it
was sent ("expectation 2 (type): ..."): the page maps that place back to the row it came from and
shows the message next to that row's arguments field, with nothing saved (status 409).
"""
from __future__ import annotations

import json
import re
from typing import Any

from flask import Blueprint, redirect, render_template, request, url_for
from flask_babel import gettext as _

from catalog.access.context import Context
from catalog.actions import call
from catalog.api.session import request_context
from catalog.core.errors import MosuError, NotFound, ValidationError
from quality.expectations import SEVERITIES, SPECS

bp = Blueprint("suite", __name__)

NEW = "new"
"""The form key of the row that adds an expectation."""
_PLACE = re.compile(r"^expectation (\d+)\b")


def _require_editor(ctx: Context, dataset_id: str, resource_id: str) -> tuple[dict, dict]:
    """The dataset and its resource, if the caller may change them; the action's refusal (403, or
    404 for a dataset they may not see) otherwise, which the error page shows."""
    pkg = call(ctx, "package_show", {"id": dataset_id})
    call(ctx, "resource_upload_check", {"package_id": pkg["id"]})
    res = next((r for r in pkg["resources"] if r["id"] == resource_id), None)
    if res is None:
        raise NotFound(_("Resource not found"))
    return pkg, res


def _stored_suite(ctx: Context, resource_id: str) -> dict[str, Any] | None:
    """The suite as ``quality_suite_show`` gives it, or None when none was made yet."""
    try:
        return call(ctx, "quality_suite_show", {"id": resource_id})
    except NotFound:
        return None


def _columns(ctx: Context, res: dict, expectations: list[dict]) -> list[str]:
    """The table's columns (``datastore_info``), else those the suite names (no published data yet)."""
    if res.get("datastore_active"):
        try:
            return [f["id"] for f in call(ctx, "datastore_info", {"id": res["id"]})["fields"] if f["id"] != "_id"]
        except MosuError:
            pass
    named = [str(e.get("kwargs", {}).get("column")) for e in expectations if e.get("kwargs", {}).get("column")]
    return list(dict.fromkeys(named))


def arguments_text(kwargs: dict[str, Any]) -> str:
    """An expectation's arguments other than its column, as the JSON the form edits (pure)."""
    rest = {k: v for k, v in kwargs.items() if k != "column"}
    return json.dumps(rest, ensure_ascii=False) if rest else ""


def _rows(expectations: list[dict]) -> list[dict[str, Any]]:
    """The table's rows from the suite's expectations: what the form shows and sends back."""
    return [{"key": str(i), "type": e.get("type") or e.get("expectation_type") or "",
             "column": (e.get("kwargs") or {}).get("column"), "arguments": arguments_text(e.get("kwargs") or {}),
             "severity": (e.get("meta") or {}).get("severity", "blocking"), "meta": e.get("meta") or {},
             "remove": False} for i, e in enumerate(expectations)]


def _refuse(name: str) -> None:
    raise ValueError(name)


def _parse_arguments(text: str) -> dict[str, Any]:
    """The arguments field as a JSON object; ValueError (its message for the page) otherwise."""
    if not text.strip():
        return {}
    try:  # NaN and Infinity are not JSON: a database's JSON column refuses them
        value = json.loads(text, parse_constant=_refuse)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise ValueError(_('The arguments must be a JSON object, such as {"min_value": 0, "max_value": 100}.'))
    return value


def _from_form(form, stored: list[dict]) -> tuple[list[dict[str, Any]], dict[str, Any] | None]:
    """The existing rows as posted (arguments, severity, removal) and the new row, or None if no
    type was chosen for it. Each row's type, column and other meta come from the stored suite,
    never from the form, so an editor changes only what the page offers."""
    rows = _rows(stored)
    for row in rows:
        key = row["key"]
        row["arguments"] = form.get(f"arguments-{key}", row["arguments"])
        row["severity"] = form.get(f"severity-{key}", row["severity"])
        row["remove"] = form.get(f"remove-{key}") == "on"
    new = None
    if form.get("type-new", "").strip():
        new = {"key": NEW, "type": form["type-new"].strip(), "column": form.get("column-new", "").strip() or None,
               "arguments": form.get("arguments-new", ""), "severity": form.get("severity-new", "warning"),
               "meta": {}, "remove": False}
    return rows, new


def _suite(rows: list[dict[str, Any]], errors: dict[str, str]) -> tuple[list[dict[str, Any]], list[str]]:
    """The expectations to send and, in the same order, the key of the row each came from; a row
    whose arguments are not a JSON object gets its error in ``errors`` instead."""
    expectations, keys = [], []
    for row in rows:
        if row["remove"]:
            continue
        try:
            kwargs = _parse_arguments(row["arguments"])
        except ValueError as exc:
            errors[row["key"]] = str(exc)
            continue
        if row["column"] is not None:
            kwargs = {"column": row["column"], **kwargs}
        meta = {**row["meta"], "severity": row["severity"]}
        expectations.append({"type": row["type"], "kwargs": kwargs, "meta": meta})
        keys.append(row["key"])
    return expectations, keys


def place_errors(exc: ValidationError, expectations: list[dict], keys: list[str]) -> dict[str, str]:
    """The action's messages by the form row they are about (pure): "expectation N (type): why"
    goes to the row that became expectation N, without that prefix (the row shows which one it
    is); any other message goes under ``_form``, shown above the table."""
    out: dict[str, str] = {}
    for messages in (exc.field_errors or {}).values():
        for message in messages if isinstance(messages, list) else [messages]:
            text = str(message)
            found = _PLACE.match(text)
            if found and int(found.group(1)) < len(keys):
                i = int(found.group(1))
                prefix = f"expectation {i} ({str(expectations[i]['type'])[:60]}): "
                key = keys[i]
                out[key] = (out.get(key, "") + " " + text.removeprefix(prefix)).strip()
            else:
                out["_form"] = (out.get("_form", "") + " " + text).strip()
    return out


@bp.route("/dataset/<dataset_id>/resource/<resource_id>/suite", methods=["GET", "POST"])
def suite(dataset_id: str, resource_id: str):
    """Show and edit a resource's expectation suite (its editors only)."""
    ctx = request_context()
    if ctx.actor is None:
        return redirect(url_for("account.sign_in", next=request.full_path.rstrip("?")), code=303)
    pkg, res = _require_editor(ctx, dataset_id, resource_id)
    shown = _stored_suite(ctx, resource_id)
    stored = list((shown or {}).get("suite", {}).get("expectations") or [])
    status, errors = 200, {}
    rows, new = _rows(stored), None
    if request.method == "POST":
        rows, new = _from_form(request.form, stored)
        expectations, keys = _suite(rows + ([new] if new else []), errors)
        if not errors:
            body = {**((shown or {}).get("suite") or {}), "expectations": expectations}
            try:
                call(ctx, "quality_suite_update", {"id": resource_id, "suite": body})
            except ValidationError as exc:
                errors = place_errors(exc, expectations, keys)
            else:
                return redirect(url_for("suite.suite", dataset_id=pkg["name"], resource_id=resource_id, saved=1),
                                code=303)
        status = 409
    return render_template("suite/suite.html", pkg=pkg, res=res, shown=shown, rows=rows, new=new or {},
                           errors=errors, types=sorted(SPECS), severities=SEVERITIES,
                           columns=_columns(ctx, res, stored), saved=request.args.get("saved") == "1"), status
