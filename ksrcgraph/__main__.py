"""``python -m ksrcgraph`` is the ``ksrcgraph`` command."""

from .cli import main

main()
