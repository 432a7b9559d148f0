"""Path queries as the commands ask them: the k best paths with their replays (``path``, ``report``),
and the best path in two versions, per socket configuration, with what the reference stack says
about them (``diff``).

In: ``CallGraph``s and a ``PathQuery`` (the user's names). Out: the query document and
``refstack.socket_paths.SocketPaths``; ``diff.PathDiff``s (``compare_sockets``: per configuration —
``--socket``, or those realising the first path ``path`` shows in either version — ``diff.diff_paths``
given the best path that socket takes in each version, the replay state of every hop, and each path
replayed on the other version).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from ..errors import SymbolError

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


def endpoints(cg: CallGraph, pq: PathQuery) -> tuple[str, str, list[str], list[str]] | SymbolError:
    """(from, to, via, avoid) ids of the query on cg, or the error saying why there are none (an
    endpoint or a --via function that does not exist there: in one version of several, a result).
    --avoid functions that do not exist are avoided."""
    try:
        s, t = cg.lookup(pq.src), cg.lookup(pq.dst)
        vias = [cg.lookup(v) for v in pq.via]
    except SymbolError as e:
        return e
    avoids = []
    for a in pq.avoid:
        try:
            avoids.append(cg.lookup(a))
        except SymbolError:
            pass
    return s, t, vias, avoids


@dataclass
class Best:
    """One version's best path for a query (the best a socket takes, with one), the replay state of
    each of its hops for that socket, and why there is no path (when there is none)."""

    path: Path | None
    states: list[str] | None = None
    why: str = ""
    bad_socket: Exception | None = None  # the configuration does not exist in this version


def best(cg: CallGraph, pq: PathQuery) -> Best:
    from .. import query
    from ..errors import UsageError
    from ..refstack import socket_paths as rpaths

    ends = endpoints(cg, pq)
    if isinstance(ends, SymbolError):
        return Best(None, why=ends.message)
    s, t, vias, avoids = ends
    if not pq.socket:
        paths = query.find_paths(cg, s, t, k=1, via=vias, avoid=avoids, max_depth=pq.max_depth)
        return Best(paths[0] if paths else None)
    try:
        res = rpaths.socket_paths(cg, s, t, k=1, via=vias, avoid=avoids, max_depth=pq.max_depth, socket=pq.socket)
    except UsageError as e:  # the configuration does not exist in this version
        return Best(None, why=e.message, bad_socket=e)
    if not res.paths:
        return Best(None, why=f"no path a {pq.socket} socket takes")
    return Best(res.paths[0], [f"{h.verdict}: {h.state}" if h.state else h.verdict for h in res.replays[0].hops])


def best_path(cg: CallGraph, pq: PathQuery) -> Path | None:
    """The best path of the query on cg (the best a --socket takes, with one); None when there is none."""
    return best(cg, pq).path


def hop_states(cg: CallGraph, p: Path | None, socket: str | None) -> list[str] | None:
    """The replay state of each hop of p for the socket ("verdict: state"); None without a socket,
    or when the configuration does not exist in cg."""
    from ..errors import UsageError
    from ..refstack import replay as R
    from ..refstack.model import Model

    if p is None or not socket:
        return None
    model = Model(cg)
    try:
        config = model.parse(socket)
    except UsageError:
        return None
    return [f"{h.verdict}: {h.state}" if h.state else h.verdict for h in R.replay(cg, model, p.nodes, config, p.hops).hops]


def survival(a: CallGraph, path_a: Path, b: CallGraph, socket: str | None) -> D.Survival:
    """A's path on B: the saved-path replay (``ksrcgraph replay``) of it."""
    from .. import diff as D
    from ..refstack import socket_paths as rpaths

    doc: dict = {"rank": 1, "hops": [{"function": a.name(n), "id": n} for n in path_a.nodes]}
    if socket:
        doc["replay"] = {"socket": socket}
    res = rpaths.replay_saved(b, [doc], socket)[0]
    hops = res["replay"]["hops"]
    return D.Survival(exists=all(h["verdict"] != "missing" for h in hops),
                      resolves=res["replay"]["resolves"] if socket else None, breaks_at=res["breaks_at"],
                      socket=res["replay"]["socket"] if socket else None, hops=tuple(h["verdict"] for h in hops),
                      whys=tuple(h["state"] or "" for h in hops))


def compare_given(a: CallGraph, b: CallGraph, best_a: Best, best_b: Best, socket: str | None) -> D.PathDiff:
    """The diff of two given paths (A's and B's) for the socket: with each path replayed on the other
    version, and the replay state of each hop (replayed here when best_x.states is None)."""
    from .. import diff as D

    pa, pb = best_a.path, best_b.path
    seen = D.Replays(socket, best_a.states if best_a.states is not None else hop_states(a, pa, socket),
                     best_b.states if best_b.states is not None else hop_states(b, pb, socket),
                     survival(a, pa, b, socket) if pa is not None else None,
                     survival(b, pb, a, socket) if pb is not None else None, (best_a.why, best_b.why))
    return D.diff_paths(a, b, pa, pb, seen)


def compare_paths(a: CallGraph, b: CallGraph, pq: PathQuery) -> D.PathDiff:
    """How the best path of the query (for pq.socket, when given) changed from A to B; a socket
    configuration neither version has is an error."""
    ba = best(a, pq)
    bb = ba if b is a else best(b, pq)
    if ba.bad_socket is not None and bb.bad_socket is not None:
        raise ba.bad_socket
    return compare_given(a, b, ba, bb, pq.socket)


def diff_sockets(a: CallGraph, b: CallGraph, pq: PathQuery) -> list[str | None]:
    """The socket configurations diff compares: --socket; else those that realise the first path
    ``path`` shows, in A and in B (in that order); None alone when no configuration realises one."""
    from ..refstack import socket_paths as rpaths

    if pq.socket:
        return [pq.socket]
    out: list[str | None] = []
    for cg in (a,) if a is b else (a, b):
        ends = endpoints(cg, pq)
        if isinstance(ends, SymbolError):
            continue
        s, t, vias, avoids = ends
        res = rpaths.socket_paths(cg, s, t, k=pq.k, via=vias, avoid=avoids, max_depth=pq.max_depth)
        out.extend(str(c) for c in (res.realised[0] if res.realised else []) if str(c) not in out)
    return out or [None]


def compare_sockets(a: CallGraph, b: CallGraph, pq: PathQuery) -> list[D.PathDiff]:
    """diff FROM TO: a comparison per socket configuration (``diff_sockets``). A name that exists in
    neither version is an error, as in ``path`` (one missing in one version is a result)."""
    _known_somewhere(a, b, pq)
    return [compare_paths(a, b, replace(pq, socket=c)) for c in diff_sockets(a, b, pq)]


def _known_somewhere(a: CallGraph, b: CallGraph, pq: PathQuery) -> None:
    for name in (pq.src, pq.dst, *pq.via):
        try:
            a.lookup(name)
        except SymbolError as e:
            try:
                b.lookup(name)
            except SymbolError:
                raise e from None
