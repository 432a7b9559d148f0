"""Path queries as the commands ask them: the k best paths with their replays (``path``, ``report``),
and the best path in two versions with what became of the first on the second (``diff``).

In: ``CallGraph``s and a ``PathQuery`` (the user's names). Out: the query document and
``refstack.socket_paths.SocketPaths``; ``diff.PathDiff`` (``compare_paths``: ``diff.diff_paths`` given the best
path of each version — with ``--socket``, the best that socket takes — and A's path replayed on B).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .. import diff as D
    from ..graph import CallGraph
    from ..query import Path
    from ..refstack.socket_paths import SocketPaths


@dataclass(frozen=True)
class PathQuery:
    """FROM -> TO as the user named them, with --via, --avoid, --socket, -k, --max-depth."""

    src: str
    dst: str
    via: list[str] = field(default_factory=list)
    avoid: list[str] = field(default_factory=list)
    socket: str | None = None
    k: int = 5
    max_depth: int = 40
    unrealised: bool = False  # also the paths no socket configuration realises


def query_paths(cg: CallGraph, pq: PathQuery) -> tuple[dict, SocketPaths]:
    """(query document, the paths with their replays) of a path query on cg."""
    from ..refstack import socket_paths as rpaths

    s, t = cg.lookup(pq.src), cg.lookup(pq.dst)
    vias = [cg.lookup(v) for v in pq.via]
    avoids = [cg.lookup(a) for a in pq.avoid]
    q = {"from": pq.src, "to": pq.dst, "from_id": s, "to_id": t, "via": vias, "avoid": avoids, "k": pq.k,
         "max_depth": pq.max_depth, "socket": pq.socket}
    return q, rpaths.socket_paths(cg, s, t, k=pq.k, via=vias, avoid=avoids, max_depth=pq.max_depth, socket=pq.socket,
                                  unrealised=pq.unrealised)


def best_path(cg: CallGraph, pq: PathQuery) -> Path | None:
    """The best path of the query on cg (the best a --socket takes, with one); None when an endpoint
    or a --via function does not exist there. --avoid functions that do not exist are avoided."""
    from .. import query
    from ..refstack import socket_paths as rpaths

    try:
        s, t = cg.lookup(pq.src), cg.lookup(pq.dst)
        vias = [cg.lookup(v) for v in pq.via]
    except Exception:  # noqa: BLE001 - an endpoint missing in one version is a result: no path
        return None
    avoids = []
    for a in pq.avoid:
        try:
            avoids.append(cg.lookup(a))
        except Exception:  # noqa: BLE001 - a function to avoid that does not exist is avoided
            pass
    if pq.socket:
        paths = rpaths.socket_paths(cg, s, t, k=1, via=vias, avoid=avoids, max_depth=pq.max_depth,
                                    socket=pq.socket).paths
    else:
        paths = query.find_paths(cg, s, t, k=1, via=vias, avoid=avoids, max_depth=pq.max_depth)
    return paths[0] if paths else None


def survival(a: CallGraph, path_a: Path, b: CallGraph, socket: str | None) -> D.Survival:
    """A's path on B: the saved-path replay (``ksrcgraph replay``) of it."""
    from .. import diff as D
    from ..refstack import socket_paths as rpaths

    doc: dict = {"rank": 1, "hops": [{"function": a.name(n), "id": n} for n in path_a.nodes]}
    if socket:
        doc["replay"] = {"socket": socket}
    res = rpaths.replay_saved(b, [doc], socket)[0]
    exists = all(h["verdict"] != "missing" for h in res["replay"]["hops"])
    return D.Survival(exists=exists, resolves=res["replay"]["resolves"] if socket else None,
                      breaks_at=res["breaks_at"], socket=res["replay"]["socket"] if socket else None)


def compare_paths(a: CallGraph, b: CallGraph, pq: PathQuery) -> D.PathDiff:
    """How the best path of the query changed from A to B."""
    from .. import diff as D

    pa, pb = best_path(a, pq), best_path(b, pq)
    return D.diff_paths(a, b, pa, pb, survival(a, pa, b, pq.socket) if pa is not None else None)
