"""``python -m ksrcgraph`` is the ``ksrcgraph`` command."""

from .entry import main

main()
