"""Dataset search: a query parser (Solr/CKAN syntax), the change log, and the index."""
