"""Where ksrcgraph keeps its cache: ``$KSRCGRAPH_CACHE_DIR``, else ``$XDG_CACHE_HOME/ksrcgraph``,
else ``~/.cache/ksrcgraph``. Layout::

    trees/<key>/<scope dir>/...   scope directories extracted from tarballs
    trees/<key>/.done-<scope>     marker: that scope directory is complete
    facts.sqlite                  per-blob facts, manifests, linked graphs (see store)
    downloads/                    tarballs downloaded from kernel.org (see download)

``write_error`` says why a write into the cache failed — a full disk, a read-only cache — as a
``CacheError``: never taken for damage, never an internal error.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from . import env
from .errors import CacheError

FULL = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
READ_ONLY = (errno.EROFS, errno.EACCES, errno.EPERM)


def cache_dir() -> Path:
    chosen = env.directory("KSRCGRAPH_CACHE_DIR")
    if chosen is not None:
        return chosen
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ksrcgraph"


def trees_dir() -> Path:
    return cache_dir() / "trees"


def db_path() -> Path:
    return cache_dir() / "facts.sqlite"


def full_error(where: Path) -> CacheError:
    return CacheError(f"cannot write to {where}: no space left on device",
                      "free some space, or set KSRCGRAPH_CACHE_DIR to a directory on a filesystem with room "
                      "(a kernel's net,include scope takes about 1 GB extracted and indexed)")


def read_only_error(where: Path, why: str) -> CacheError:
    return CacheError(f"cannot write to {where}: {why} (the cache is read-only)",
                      "set KSRCGRAPH_CACHE_DIR to a directory you can write, or fix the permissions of this one")


def write_error(e: OSError, where: Path) -> CacheError:
    """A failed write into the cache, as what it is."""
    if e.errno in FULL:
        return full_error(where)
    if e.errno in READ_ONLY:
        return read_only_error(where, e.strerror or str(e))
    return CacheError(f"cannot write to {where}: {e.strerror or e}",
                      "check the cache directory (KSRCGRAPH_CACHE_DIR) and the disk it is on")
