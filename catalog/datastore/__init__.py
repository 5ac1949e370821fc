"""Serving data: the locked DuckDB sandbox, the mapped Arrow table cache, the researcher SQL checker,
datastore_search parameters, exports and the caps on concurrent queries."""
