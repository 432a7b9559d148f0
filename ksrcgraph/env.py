"""The environment variables ksrcgraph reads, each validated where it is read: a malformed value is a
usage error (exit status 2) naming the variable, with a hint — never a silent default, never an
internal error. ``check_all`` validates every one that is set (the command line calls it first).

=============================  ===============================================================
KSRCGRAPH_CACHE_DIR            the cache directory (a directory, or a path that does not exist yet)
KSRCGRAPH_SRC_DIRS             ``:``-separated directories holding linux-source-V.tar.* [/usr/src]
KSRCGRAPH_MIRROR               kernel.org mirror, an http(s) URL [https://cdn.kernel.org]
KSRCGRAPH_OFFLINE              1/0 (true/false, yes/no, on/off): forbid downloads [0]
KSRCGRAPH_DOWNLOAD_DEADLINE    seconds a whole download may take [3600]
KSRCGRAPH_JOBS                 parser processes, 1 to max_jobs() [CPUs]
KSRCGRAPH_MAX_EXTRACT_BYTES    bytes one tarball may extract [4 GiB]
KSRCGRAPH_NO_PROGRESS          1/0: no progress bars [0]
KSRCGRAPH_DEBUG                1/0: tracebacks instead of one-line errors [0]
=============================  ===============================================================
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlsplit

from .errors import UsageError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"", "0", "false", "no", "off"}
MAX_JOBS = 64


def _bad(name: str, value: str, want: str) -> UsageError:
    shown = value if len(value) <= 80 else value[:77] + "..."
    return UsageError(f"environment variable {name}={shown!r} is not {want}",
                      f"set {name} to {want}, or unset it (unset {name})")


def flag(name: str) -> bool:
    value = os.environ.get(name, "")
    if value.strip().lower() in _TRUE:
        return True
    if value.strip().lower() in _FALSE:
        return False
    raise _bad(name, value, "1 or 0 (true/false, yes/no, on/off)")


def integer(name: str, default: int, lo: int = 1, hi: int = 1 << 62) -> int:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        n = int(value.strip())
    except ValueError:
        raise _bad(name, value, f"a whole number from {lo} to {hi}") from None
    if not lo <= n <= hi:
        raise _bad(name, value, f"a whole number from {lo} to {hi}")
    return n


def seconds(name: str, default: float, hi: float = 7 * 86400) -> float:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    try:
        s = float(value.strip())
    except ValueError:
        raise _bad(name, value, f"a number of seconds above 0 (at most {hi:.0f})") from None
    if not 0 < s <= hi:  # also refuses nan and inf
        raise _bad(name, value, f"a number of seconds above 0 (at most {hi:.0f})")
    return s


def url(name: str, default: str) -> str:
    value = os.environ.get(name)
    if value is None or value == "":
        return default
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname or any(c.isspace() for c in value.strip()):
        raise _bad(name, value, "an http:// or https:// URL, e.g. https://mirrors.kernel.org")
    return value.strip()


def directory(name: str) -> Path | None:
    """A directory that may not exist yet (created when needed); None when unset."""
    value = os.environ.get(name)
    if not value:
        return None
    p = Path(value).expanduser()
    if p.exists() and not p.is_dir():
        raise _bad(name, value, "a directory (it names a file)")
    return p


def directories(name: str) -> tuple[Path, ...] | None:
    """A ':'-separated list of directories (missing ones are allowed: nothing is found there)."""
    value = os.environ.get(name)
    if value is None:
        return None
    out = tuple(Path(p).expanduser() for p in value.split(":") if p)
    for p in out:
        if p.exists() and not p.is_dir():
            raise _bad(name, value, f"a ':'-separated list of directories ({p} is a file)")
    return out


def cpus() -> int:
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def max_jobs() -> int:
    """The most parser processes -j / KSRCGRAPH_JOBS may ask for: 4 per CPU, and at most 64."""
    return min(MAX_JOBS, 4 * cpus())


def download_deadline() -> float:
    return seconds("KSRCGRAPH_DOWNLOAD_DEADLINE", 3600.0)


CHECKS = {
    "KSRCGRAPH_CACHE_DIR": lambda n: directory(n),
    "KSRCGRAPH_SRC_DIRS": lambda n: directories(n),
    "KSRCGRAPH_MIRROR": lambda n: url(n, ""),
    "KSRCGRAPH_OFFLINE": flag,
    "KSRCGRAPH_DOWNLOAD_DEADLINE": lambda n: download_deadline(),
    "KSRCGRAPH_JOBS": lambda n: integer(n, 1, 1, max_jobs()),
    "KSRCGRAPH_MAX_EXTRACT_BYTES": lambda n: integer(n, 1),
    "KSRCGRAPH_NO_PROGRESS": flag,
    "KSRCGRAPH_DEBUG": flag,
}


def check_all() -> None:
    """Validate every variable ksrcgraph reads that is set (UsageError on the first malformed one)."""
    for name, check in CHECKS.items():
        if name in os.environ:
            check(name)
