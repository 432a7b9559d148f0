"""Where ksrcgraph keeps its cache: ``$KSRCGRAPH_CACHE_DIR``, else ``$XDG_CACHE_HOME/ksrcgraph``,
else ``~/.cache/ksrcgraph``. Layout::

    trees/<key>/<scope dir>/...   scope directories extracted from tarballs
    trees/<key>/.done-<scope>     marker: that scope directory is complete
    facts.sqlite                  per-blob facts, manifests, linked graphs (see store)
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    env = os.environ.get("KSRCGRAPH_CACHE_DIR")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "ksrcgraph"


def trees_dir() -> Path:
    return cache_dir() / "trees"


def db_path() -> Path:
    return cache_dir() / "facts.sqlite"
