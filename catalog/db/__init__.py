"""The catalog database: engine and schema, the SQLAlchemy models, lookups by id or name, and the
dicts (CKAN shapes) the actions answer with."""
