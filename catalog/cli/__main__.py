"""``python -m catalog.cli``: the ``mosu`` command."""
from catalog.cli.main import main

main()
