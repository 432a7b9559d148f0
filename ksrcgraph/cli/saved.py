"""Reading a file of saved paths for ``replay``: the output of ``path --format json``, checked before use.

In: the path of the file. Out: (paths, kernel label, scope) — or a ``KsrcError`` naming what is wrong
(exit status 1): a file above ``MAX_BYTES`` (16 MiB; ``path -k 100`` writes well under 1 MiB) is refused
before it is parsed, and a document of another shape (not an object with a ``paths`` list of objects
whose ``hops`` are objects with a ``function`` name) is refused before any path is replayed.
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import KsrcError

MAX_BYTES = 16 << 20
MAX_PATHS = 1000
MAX_HOPS = 1000
MAX_NAME = 4096
_HINT = "give a file written by `ksrcgraph path --format json`"


def read_saved(file: Path) -> tuple[list[dict], str | None, str | None]:
    """(paths, kernel label, scope) of a file written by ``path --format json``."""
    doc = _load(file)
    where = f"{str(file)[:200]}"
    if not isinstance(doc, dict) or not isinstance(doc.get("paths"), list):
        raise KsrcError(f"{where} holds no saved paths (no \"paths\" list in a JSON object)", _HINT)
    kernel = doc.get("kernel") or {}
    if not isinstance(kernel, dict):
        raise KsrcError(f"{where}: \"kernel\" is not an object", _HINT)
    label, scope = kernel.get("label"), kernel.get("scope") or []
    if label is not None and not _text(label) or not isinstance(scope, list) or not all(_text(s) for s in scope):
        raise KsrcError(f"{where}: \"kernel\" has a malformed label or scope", _HINT)
    paths = doc["paths"]
    if len(paths) > MAX_PATHS:
        raise KsrcError(f"{where} holds {len(paths)} paths (at most {MAX_PATHS})", _HINT)
    for i, p in enumerate(paths, 1):
        why = _bad_path(p)
        if why:
            raise KsrcError(f"{where}: path {i} {why}", _HINT)
    return paths, label, ",".join(scope) or None


def _load(file: Path) -> object:
    try:
        with open(file, "rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as e:
        raise KsrcError(f"cannot read paths from {str(file)[:200]}: {e.strerror}", _HINT) from e
    if len(data) > MAX_BYTES:
        raise KsrcError(f"{str(file)[:200]} is larger than {MAX_BYTES >> 20} MiB, the most replay reads",
                        "replay fewer paths at a time (path -k N writes N paths)")
    try:
        return json.loads(data)
    except (ValueError, RecursionError) as e:
        raise KsrcError(f"cannot read paths from {str(file)[:200]}: not JSON ({str(e)[:200]})", _HINT) from e


def _text(v: object, limit: int = MAX_NAME) -> bool:
    return isinstance(v, str) and len(v) <= limit


def _bad_path(p: object) -> str:
    """Why a saved path cannot be replayed ("" when it can)."""
    if not isinstance(p, dict) or not isinstance(p.get("hops"), list):
        return "is not an object with a \"hops\" list"
    if len(p["hops"]) > MAX_HOPS:
        return f"has {len(p['hops'])} hops (at most {MAX_HOPS})"
    for j, h in enumerate(p["hops"], 1):
        if not isinstance(h, dict) or not _text(h.get("function")):
            return f"hop {j} has no function name (or one over {MAX_NAME} characters)"
        if h.get("id") is not None and not _text(h["id"]):
            return f"hop {j} has a malformed id"
    replay = p.get("replay")
    if replay is not None and (not isinstance(replay, dict) or
                               replay.get("socket") is not None and not _text(replay["socket"], 512)):
        return "has a malformed \"replay\" (its socket must be a name like inet:dgram:udp)"
    if p.get("rank") is not None and (not isinstance(p["rank"], int) or isinstance(p["rank"], bool)):
        return "has a rank that is not a number"
    return ""
