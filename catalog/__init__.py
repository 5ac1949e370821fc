"""Mosu's catalog: the system of record (settings, models, storage, authorization,
audit, queue, queries, actions), its HTTP API (``catalog.api``) and the ``mosu`` CLI."""
