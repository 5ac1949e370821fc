"""Data quality: Great Expectations suites and validation over converted tables.

Only pyarrow, DuckDB and GX here: no Flask, no catalog database. GX takes
seconds to import, so it is imported inside the functions that run it, which
only ingest workers call.
"""
