"""Stage 10 — cli: the ``ksrcgraph`` command (typer).

stdout carries results only; progress, warnings and errors go to stderr, so ``| jq`` always works.
Errors are one ``Error: ...`` line and a ``Hint: ...`` line, exit status 1 (2 for usage errors);
never a traceback (set KSRCGRAPH_DEBUG=1 to see one).

 * ``options``  — the tree options (``--kernel``, ``--source``, ``--scope``, ``--quiet``, ``--jobs``,
   ``--all-headers``) declared once: ``TreeOptions`` and ``@tree_options``; opening the tree;
 * ``queries``  — path queries as the commands ask them (``path``, ``report``, ``diff``);
 * ``commands`` — the typer app and its commands;
 * ``run``      — ``main``: the app run with every error turned into ``Error:`` and ``Hint:`` lines.
"""

from ksrcgraph.cli import matrix, probes, versions  # noqa: F401 — they register `matrix`, `probes`, `index`
from ksrcgraph.cli.commands import app
from ksrcgraph.cli.run import main

__all__ = ["app", "main"]
