"""Typed errors. Each carries what happened and what to do next; the CLI prints
``Error: <message>`` and ``Hint: <hint>`` on stderr and exits with ``status``."""

from __future__ import annotations


class KsrcError(Exception):
    status = 1

    def __init__(self, message: str, hint: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class UsageError(KsrcError):
    """Bad combination of options or arguments (exit status 2)."""

    status = 2


class SourceError(KsrcError):
    """Kernel sources missing, unreadable or malformed."""


class ArchiveError(SourceError):
    """A tarball that is damaged or hostile (path traversal, links out, devices, too large)."""


class SymbolError(KsrcError):
    """Unknown or ambiguous function name."""


class CacheError(KsrcError):
    """The cache cannot be used (not writable, damaged beyond repair)."""


class Terminated(KsrcError):
    """A signal (SIGTERM, SIGHUP) stopped the run after it cleaned up; exit status 128 + its number."""

    def __init__(self, signum: int) -> None:
        import signal

        super().__init__(f"terminated by {signal.Signals(signum).name}",
                         "nothing half-written was kept; run the command again")
        self.status = 128 + signum
