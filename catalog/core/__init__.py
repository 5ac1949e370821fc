"""Pure vocabulary of the platform: typed errors, the one Settings object, input validation, object
keys, licences, data dictionaries and guarded JSON parsing. Imports nothing else of Mosu, so the
ingest workers, quality and the CLI share it without a web app or a database."""
