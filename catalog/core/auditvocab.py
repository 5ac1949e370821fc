"""The words the audit reports and the compliance pages share: which events are reads, of which
kind, how an export's end is named, and the states of a grant.

One definition for both: :mod:`catalog.records.reports` builds its queries from them and the
compliance pages (which may not import the records) offer them as filters, so a kind the pages
offer is exactly the events the reports count.
"""
from __future__ import annotations

READ_KINDS: dict[str, tuple[str, ...]] = {"previews": ("datastore_search",), "queries": ("datastore_search_sql",),
                                          "exports": ("datastore_export", "datastore_sql_export"),
                                          "downloads": ("resource_download",)}
"""Accesses by kind: the columns of the dataset and user reports, the read filters of the pages."""
READS: tuple[str, ...] = tuple(name for names in READ_KINDS.values() for name in names)
"""The events that start a read of data: one each per preview page, query, export and download URL."""
EXPORT_ENDS: dict[str, str] = {"datastore_export": "datastore_export_end",
                               "datastore_sql_export": "datastore_sql_export_end"}
"""An export's start event -> the event of its end, recorded with the same request id."""
GRANT_STATES: tuple[str, ...] = ("active", "expiring", "expired", "revoked")
"""A grant's state in the grants report: as of now, ``expiring`` within the report's days."""
