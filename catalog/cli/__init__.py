"""The ``mosu`` command and what runs beside it: the push client with resumable uploads, the worker
supervisor and the demo datasets. The composition root: the only package that starts processes."""
