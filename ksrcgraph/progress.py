"""Progress reports: what the long stages (extraction, parsing, linking) say while they work.

A ``Progress`` is any callable ``(what, done, total)``; the CLI passes rich progress bars on stderr,
tests and library callers pass nothing.
"""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str, int, int], None]  # (what, done, total)
