"""``main``: runs the typer app and turns every error into one ``Error: ...`` line and one ``Hint: ...``
line on stderr — exit status 1, 2 for usage errors (click's own included), 128 + N for signal N — never
a traceback (KSRCGRAPH_DEBUG=1 shows one). The environment is validated first (``env.check_all``).
"""

from __future__ import annotations

import os
import sys

import click

from .. import env
from ..errors import KsrcError, UsageError
from .commands import app


def _click_error(e: click.exceptions.ClickException) -> None:
    """click's own usage errors (unknown option, bad value, missing argument), in our two lines."""
    print(f"Error: {_shown(e.format_message())}", file=sys.stderr)
    ctx = getattr(e, "ctx", None)
    if ctx is not None:
        usage = ctx.get_usage().strip().removeprefix("Usage: ")
        print(f"Hint: usage: {usage} (see {ctx.command_path} --help)", file=sys.stderr)
    else:
        print("Hint: see ksrcgraph --help", file=sys.stderr)
    sys.exit(e.exit_code)


def _debug() -> bool:
    try:
        return env.flag("KSRCGRAPH_DEBUG")
    except UsageError:
        return False  # reported by env.check_all


MAX_ARGUMENT = 4096  # PATH_MAX: no name or path ksrcgraph takes is longer


def _check_lengths(args: list[str]) -> None:
    for a in args:
        if len(a) > MAX_ARGUMENT:
            raise UsageError(f"an argument of {len(a)} characters ({a[:24]!r}...) is longer than any name or path "
                             f"ksrcgraph takes (at most {MAX_ARGUMENT})",
                             "check the command line (a shell variable or $(...) expanding to a whole file?)")


def _shown(text: str) -> str:
    """text as it can be printed: a name the user typed that is not valid UTF-8 (a lone surrogate
    from the file system's encoding) is shown escaped instead of failing the print."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")


def main(argv: list[str] | None = None) -> None:
    debug = _debug()
    try:
        env.check_all()
        _check_lengths(sys.argv[1:] if argv is None else argv)
        rv = app(args=argv, prog_name="ksrcgraph", standalone_mode=False)
    except click.exceptions.Exit as e:
        sys.exit(e.exit_code)
    except click.exceptions.ClickException as e:
        _click_error(e)
    except (click.exceptions.Abort, KeyboardInterrupt):
        print("Error: interrupted", file=sys.stderr)
        print("Hint: run it again: nothing half-written is kept", file=sys.stderr)
        sys.exit(130)
    except KsrcError as e:
        if debug:
            raise
        print(f"Error: {_shown(e.message)}", file=sys.stderr)
        if e.hint:
            print(f"Hint: {_shown(e.hint)}", file=sys.stderr)
        sys.exit(e.status)
    except BrokenPipeError:
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115
        finally:
            sys.exit(0)
    except ImportError as e:  # tree-sitter, tree-sitter-c or networkx missing or broken
        if debug:
            raise
        print(f"Error: missing dependency: {e.name or e}", file=sys.stderr)
        print("Hint: reinstall ksrcgraph (pip install ksrcgraph) so that its dependencies are installed",
              file=sys.stderr)
        sys.exit(1)
    except MemoryError:
        print("Error: out of memory", file=sys.stderr)
        print("Hint: narrow --scope or use a machine with more memory", file=sys.stderr)
        sys.exit(1)
    except Exception as e:  # noqa: BLE001 — the last line of defence: no traceback for users
        if debug:
            raise
        print(f"Error: internal error (a bug in ksrcgraph, not in your input): {type(e).__name__}: {e}",
              file=sys.stderr)
        print("Hint: re-run with KSRCGRAPH_DEBUG=1 for a traceback and report it, with the command line, "
              "to ksrcgraph's issue tracker", file=sys.stderr)
        sys.exit(1)
    sys.exit(rv if isinstance(rv, int) else 0)


if __name__ == "__main__":
    main()
