"""Stage 8 — query: paths, callers, callees, neighbourhoods.

In: a ``graph.CallGraph`` and node ids. Out: plain results (``Path`` with its hops and the edges
that realise each hop; caller/callee trees) for ``report``.

Paths are ranked by cost — one per hop plus a penalty that grows as the best edge's confidence
falls (``graph.PENALTY``: a ``fallback`` hop costs as much as 40 exact ones) — then by length, then,
where two paths part, the later call site in that caller first (``site_order``), then by name, so
output is stable. The k best are found with networkx's ``shortest_simple_paths`` (Yen) on
the part of the graph that can hold them: functions whose distance from the source plus distance to
the target (Dijkstra over the graph's flat arrays) is within a margin of the best path, the margin
doubling until it provably holds k paths.
"""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from .graph import INF, CallGraph
from .rows import Edge

DEFAULT_K = 5
DEFAULT_MAX_DEPTH = 40
_MAX_SLACK = 64.0
_MAX_EXAMINED = 50  # paths examined per path wanted (those over --max-depth are skipped)
_MAX_NODES = 20000  # stop widening the search region beyond this many functions


@dataclass(frozen=True)
class Restriction:
    """A part of the graph a search may not use: caller/callee pairs removed, and (when given) the
    only functions it may go through. Layers above (the reference stack) derive it from what they
    know — e.g. the pointer bindings a socket cannot make."""

    removed: frozenset[tuple[str, str]] = frozenset()
    within: frozenset[str] | None = None


@dataclass
class Path:
    nodes: list[str]
    cost: float
    hops: list[list[Edge]] = field(default_factory=list)  # hops[i]: edges nodes[i] -> nodes[i+1], best first

    @property
    def length(self) -> int:
        return len(self.nodes) - 1

    def kinds(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for edges in self.hops:
            out[edges[0].kind] = out.get(edges[0].kind, 0) + 1
        return out


def site_order(cg: CallGraph, nodes: list[str]) -> tuple[tuple[int, str], ...]:
    """Tie-break between paths of one cost and length: per hop, its call line negated and the callee,
    so that where two paths part, the later call in that caller comes first — a function handles its
    special cases first (``if (ipv6_addr_is_multicast(daddr)) return __udp6_lib_mcast_deliver(...)``)
    and goes on to its main line after them."""
    return tuple((last_call(cg.edges_between(a, b)), b) for a, b in zip(nodes, nodes[1:]))


def last_call(edges: list[Edge]) -> int:
    """The line of the last of a hop's calls on its most common branches (the fewest rare ones),
    negated; a call in a switch case counts at its switch's line (the cases of one switch are
    alternatives, none of them the main line: between them the order stays by name)."""
    usable = [e for e in edges if not e.through_param]
    if not usable:
        return 0
    cold = min(e.cold for e in usable)
    return -max(e.case_of or e.line for e in usable if e.cold == cold)


def rank_key(cg: CallGraph, cost: float, nodes: list[str]) -> tuple:
    return (round(cost, 6), len(nodes), site_order(cg, nodes), nodes)


def _cost(cg: CallGraph, nodes: list[str]) -> float:
    return sum(cg.weight(a, b) for a, b in zip(nodes, nodes[1:]))


def _k_best(cg: CallGraph, s: str, t: str, k: int, max_depth: int, banned: frozenset[str],
            removed: frozenset[tuple[str, str]] = frozenset(), within: frozenset[str] | None = None
            ) -> list[tuple[float, list[str]]]:
    if s not in cg.index or t not in cg.index or s in banned or t in banned:
        return []
    if s == t:
        return [(0.0, [s])]
    import networkx as nx

    sp = cg.shortest_path(s, t, banned, within=within)
    if sp is None:
        return []
    best = sp[0]  # a lower bound when pairs are removed: the region below only grows with it
    slack = 2.0
    while True:
        # every function on some s -> t path costing at most best + slack (Dijkstra both ways,
        # stopped at that cost)
        limit = best + slack + 1e-9
        ds = cg.distances(s, False, banned, within=within)  # computed once, cached: cheaper than one per margin
        dt = cg.distances(t, True, banned, within=within)
        keep = {v for v, d in ds.items() if d + dt.get(v, INF) <= limit and (within is None or v in within)}
        if s not in keep or t not in keep:
            return []
        sub = cg.subgraph(keep, removed)
        found: list[tuple[float, list[str]]] = []
        examined = 0
        try:
            for p in nx.shortest_simple_paths(sub, s, t, weight="weight"):
                examined += 1
                c = _cost(cg, p)
                if c > best + slack and len(found) < k and slack < _MAX_SLACK:
                    break  # beyond what this region is guaranteed to hold: widen first
                if len(p) - 1 <= max_depth:
                    found.append((c, p))
                    if len(found) >= k:
                        break
                if examined >= _MAX_EXAMINED * k:
                    break  # many paths longer than --max-depth: stop looking
        except nx.NetworkXNoPath:
            pass
        exact = len(found) >= k and found[-1][0] <= best + slack
        if exact or slack >= _MAX_SLACK or len(keep) > _MAX_NODES:
            found.sort(key=lambda cp: rank_key(cg, cp[0], cp[1]))
            return found[:k]
        slack *= 2


def relevant(cg: CallGraph, src: str, dst: str, margin: float, avoid: list[str] | None = None) -> set[str]:
    """Functions that can lie on a path src -> dst costing at most the best one plus margin."""
    banned = frozenset(avoid or ())
    sp = cg.shortest_path(src, dst, banned)
    if sp is None:
        return set()
    limit = sp[0] + margin
    ds = cg.distances(src, False, banned)
    dt = cg.distances(dst, True, banned)
    return {v for v, d in ds.items() if d + dt.get(v, INF) <= limit}


def find_paths(cg: CallGraph, src: str, dst: str, k: int = DEFAULT_K, via: list[str] | None = None,
               avoid: list[str] | None = None, max_depth: int = DEFAULT_MAX_DEPTH,
               restrict: Restriction | None = None) -> list[Path]:
    """The k best distinct simple paths src -> (via...) -> dst, never through the avoided functions
    nor what the restriction takes out of the graph."""
    banned = frozenset(avoid or ())
    gone = restrict.removed if restrict else frozenset()
    within = restrict.within if restrict else None
    stops = [src, *(via or []), dst]
    if any(s in banned for s in stops):
        return []
    per = max(k * 3, 10) if len(stops) > 2 else k
    segments = [_k_best(cg, a, b, per, max_depth, banned, gone, within) for a, b in zip(stops, stops[1:])]
    if any(not seg for seg in segments):
        return []
    results: list[tuple[float, list[str]]] = []
    seen: set[tuple[str, ...]] = set()
    # best-first over combinations of per-segment choices
    start = (sum(seg[0][0] for seg in segments), (0,) * len(segments))
    heap = [start]
    visited = {start[1]}
    while heap and len(results) < k:
        cost, choice = heapq.heappop(heap)
        nodes: list[str] = []
        for seg, i in zip(segments, choice):
            part = seg[i][1]
            nodes.extend(part if not nodes else part[1:])
        if len(nodes) == len(set(nodes)) and len(nodes) - 1 <= max_depth and tuple(nodes) not in seen:
            seen.add(tuple(nodes))
            results.append((cost, nodes))
        for j in range(len(segments)):
            if choice[j] + 1 < len(segments[j]):
                nxt = choice[:j] + (choice[j] + 1,) + choice[j + 1 :]
                if nxt not in visited:
                    visited.add(nxt)
                    c = sum(segments[n][i][0] for n, i in enumerate(nxt))
                    heapq.heappush(heap, (c, nxt))
    results.sort(key=lambda cp: rank_key(cg, cp[0], cp[1]))
    return [Path(nodes, round(cost, 3), [cg.edges_between(a, b) for a, b in zip(nodes, nodes[1:])])
            for cost, nodes in results]


@dataclass
class TreeItem:
    depth: int
    node: str
    edges: list[Edge]  # edges linking it to its parent in the tree (best first)
    repeated: bool  # already shown higher in the tree


def walk(cg: CallGraph, root: str, depth: int, direction: str, limit: int = 5000) -> list[TreeItem]:
    """Callers (direction 'in') or callees ('out') of root, depth-first, as a tree."""
    adj = cg.inc if direction == "in" else cg.out
    out: list[TreeItem] = [TreeItem(0, root, [], False)]
    seen = {root}

    def rec(node: str, d: int) -> None:
        if d > depth or len(out) >= limit:
            return
        for other in sorted(adj.get(node, {})):
            if len(out) >= limit:
                return
            edges = adj[node][other]
            rep = other in seen
            out.append(TreeItem(d, other, edges, rep))
            if not rep:
                seen.add(other)
                rec(other, d + 1)

    rec(root, 1)
    return out


def around(cg: CallGraph, root: str, depth: int) -> set[str]:
    """Nodes within depth calls of root, in either direction."""
    keep = {root}
    for adj in (cg.out, cg.inc):
        frontier = {root}
        for _ in range(depth):
            nxt = set()
            for n in frontier:
                nxt.update(adj.get(n, {}))
            nxt -= keep
            keep |= nxt
            frontier = nxt
    return keep
