"""``package_search``: CKAN's dataset search, answered by the in-process search index."""
from __future__ import annotations

from typing import Any

from catalog.access import policy
from catalog.access.context import Context
from catalog.access.policy import Permission
from catalog.actions import action
from catalog.core import jsoninput, validate
from catalog.core.errors import BadRequest, SearchQueryError
from catalog.search.index import SearchRequest, Visibility

ROWS_MAX = 1000


def _list_param(value: Any, field: str) -> list[str]:
    """CKAN takes lists as JSON strings in GET parameters (``facet.field=["tags"]``)."""
    if value in (None, ""):
        return []
    if isinstance(value, str):
        text = value.strip()
        if text.startswith(("[", "{")):
            try:
                value = jsoninput.loads(text)
            except BadRequest:
                raise SearchQueryError(f"{field} must be a JSON list") from None
            if not isinstance(value, list):
                raise SearchQueryError(f"{field} must be a JSON list")
        else:
            return [text]
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise SearchQueryError(f"{field} must be a list of strings")
    return value


def _visibility(ctx: Context, include_private: bool, include_drafts: bool) -> Visibility:
    """The index's mask of what the caller may view, from the policy's :func:`~catalog.access.policy.dataset_scope`
    (the same rules as ``package_show``); ``include_private``/``include_drafts`` only narrow it."""
    with ctx.platform.read() as s:  # the actor's roles are looked up only when they can widen the answer
        scope = policy.dataset_scope(s, ctx.actor, Permission.VIEW_DATASET, roles=include_private or include_drafts)
    return Visibility(everything=scope.everything, public=scope.public, org_ids=scope.org_ids,
                      package_ids=scope.package_ids, draft_org_ids=scope.any_state_org_ids,
                      draft_package_ids=scope.any_state_package_ids, include_private=include_private,
                      include_drafts=include_drafts)


@action
def package_search(ctx: Context, data: dict[str, Any]) -> dict[str, Any]:
    """Search datasets, as CKAN does: ``q`` (words, "phrases", field:value, AND/OR/NOT, ``*:*``),
    ``fq`` / ``fq_list`` filters (``organization:x``, ``-tags:y``, ``res_format:CSV``,
    ``metadata_modified:[2024-01-01T00:00:00Z TO *]``), ``sort`` (default ``score desc,
    metadata_modified desc``; also ``name``, ``title_string``, ``metadata_created``, ``id``),
    ``rows`` (default 10, max 1000), ``start``, ``facet.field`` (JSON list), ``facet.limit``
    (default 50), ``facet.mincount``, ``include_private``, ``include_drafts``. Returns
    ``count``, ``results``, ``facets``, ``search_facets`` and ``sort``."""
    errors = validate.Errors()
    include_private = validate.boolean(data.get("include_private"), errors, "include_private")
    include_drafts = validate.boolean(data.get("include_drafts"), errors, "include_drafts")
    errors.raise_if_any()
    rows = validate.integer(data.get("rows"), "rows", 10, 0, ROWS_MAX)
    start = validate.integer(data.get("start"), "start", 0)
    q = data.get("q") or "*:*"
    if not isinstance(q, str):
        raise SearchQueryError("q must be a string")
    fq = _list_param(data.get("fq"), "fq") + _list_param(data.get("fq_list"), "fq_list")
    sort = data.get("sort") or "score desc, metadata_modified desc"
    request = SearchRequest(
        q=q, fq=fq, sort=str(sort), rows=rows, start=start,
        facet_fields=_list_param(data.get("facet.field"), "facet.field"),
        facet_limit=validate.integer(data.get("facet.limit"), "facet.limit", 50, -1),
        facet_mincount=validate.integer(data.get("facet.mincount"), "facet.mincount", 1, 0),
    )
    result = ctx.platform.search.search(request, _visibility(ctx, include_private, include_drafts))
    site = ctx.site_url
    for pkg in result.dicts:  # stored upload URLs are relative: make them absolute for this caller
        for res in pkg.get("resources", []):
            if res.get("url_type") == "upload" and str(res.get("url", "")).startswith("/"):
                res["url"] = site + res["url"]
    return {"count": result.count, "results": result.dicts, "facets": result.facets,
            "search_facets": result.search_facets, "sort": request.sort}
