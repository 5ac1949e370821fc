"""Downloads and exports start with a POST form, never with a GET of the signed-in user.

The session cookie is ``SameSite=Lax``: a browser sends it with every top-level GET, whichever site
the link (or the redirect, or the script changing ``location``) came from. A download or export that
ran on such a GET would read data as the signed-in user, be recorded as their read in the audit log
and spend their quota, at another site's wish. So the pages' download and export buttons post a form
with the page's CSRF token (checked before any handler runs, :func:`webui._check_form`), and a GET of
the same address by a signed-in browser answers with this module's confirmation page: what would be
read, and one button posting the same parameters (an old bookmark still works, in one more click).

A GET that no session cookie signs in stays as it was: a program's GET of a resource's ``url`` with an
API token (CKAN clients download that way), or an anonymous one, which reads only what the public may,
as nobody in particular.
"""
from __future__ import annotations

import json
from typing import Iterable, Mapping

from flask import Response, make_response, render_template, request
from flask_babel import gettext as _

from catalog.access.context import Context
from catalog.api import content_security_policy, web_auth
from catalog.api.session import request_token


def needs_confirmation() -> bool:
    """Whether this request must be confirmed before it reads anything: a GET whose only credential is
    the session cookie (see the module's docstring). An API token, which no other site can make a browser
    send, wins over the cookie, as it does in :func:`catalog.api.session.request_context`."""
    return request.method == "GET" and request_token() is None and web_auth.current() is not None


def params(keys: Iterable[str]) -> dict[str, str]:
    """The request's non-empty parameters among ``keys``: the query string of a GET, the form of a POST."""
    source = request.form if request.method == "POST" else request.args
    return {k: source[k] for k in keys if source.get(k, "").strip()}


def format_title(fmt: str) -> str:
    """A download or export format as the page names it (an unknown one as given: the action refuses it)."""
    return {"original": _("Original file"), "csv": "CSV", "tsv": "TSV", "jsonl": _("JSON lines"),
            "parquet": "Parquet"}.get(fmt.lower(), fmt)


def view_details(args: Mapping[str, str]) -> list[tuple[str, str]]:
    """What an export's parameters select, as (label, value) lines of the confirmation page (pure but
    for the language): the search, the filters (``column = value``), the sort and the other options."""
    labels = {"q": _("Search"), "filters": _("Filters"), "sort": _("Sort"), "fields": _("Columns"),
              "distinct": _("Distinct rows only"), "version": _("Version"), "limit": _("At most (rows)"),
              "offset": _("Skipping (rows)")}
    out = []
    for key, label in labels.items():
        value = args.get(key)
        if not value:
            continue
        if key == "filters":
            try:
                parsed = json.loads(value)
            except ValueError:
                parsed = None
            if isinstance(parsed, dict):
                value = "; ".join(f"{k} = {v}" for k, v in parsed.items())
        out.append((label, value))
    return out


def page(*, heading: str, button: str, fields: Mapping[str, str], fmt: str, pkg: dict | None = None,
         res: dict | None = None, details: list[tuple[str, str]] | None = None, sql: str | None = None,
         redirects_to: str | None = None) -> Response:
    """The confirmation page: what the address would read as the signed-in user, and one button that
    posts ``fields`` (with the CSRF token) back to it. Nothing is read to answer it; ``pkg`` and ``res``
    are metadata (``package_show``), shown so the user knows what they are about to download.
    ``redirects_to``: an origin the POST's answer redirects to (a download's object store), which the
    page's ``form-action`` must allow."""
    response = make_response(render_template(
        "grid/confirm.html", heading=heading, button=button, fields=fields, format_name=format_title(fmt),
        pkg=pkg, res=res, details=details or [], sql=sql, action=request.path))
    if redirects_to:
        response.headers["Content-Security-Policy"] = content_security_policy(form_action=[redirects_to])
    return response


def storage_origin(ctx: Context) -> str | None:
    """The origin presigned download URLs name (the object store's endpoint), for ``form-action``."""
    from webui.provider import storage_origin as origin_of

    return origin_of(ctx.settings.s3_endpoint)


def download_csp(ctx: Context) -> str:
    """The Content-Security-Policy of a page with a download button: its form posts to the site, whose
    answer redirects to the object store."""
    origin = storage_origin(ctx)
    return content_security_policy(form_action=[origin] if origin else [])
