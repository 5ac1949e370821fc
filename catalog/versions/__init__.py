"""The life of an upload: streaming it in, the ingest job queue, publishing a version, holds for
personal information, and what others may see of versions that were not published."""
