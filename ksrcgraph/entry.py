"""The ``ksrcgraph`` console entry point: reports a missing dependency as one line, not a traceback."""

from __future__ import annotations

import sys


def main() -> None:
    try:
        from .cli import main as cli_main
    except ImportError as e:  # a dependency of the CLI itself (typer, click, rich) is missing
        print(f"Error: missing dependency: {e.name or e}", file=sys.stderr)
        print("Hint: reinstall ksrcgraph (pip install ksrcgraph) so that its dependencies are installed",
              file=sys.stderr)
        sys.exit(1)
    cli_main()
