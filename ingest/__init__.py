"""Ingest workers: claim a job, read the raw upload, sniff, convert to Parquet, check, publish."""
