"""``python -m pathway.cli``: the same as the ``forlop`` command."""

from pathway.cli import main

main()
