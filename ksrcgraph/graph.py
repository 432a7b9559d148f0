"""Stage 7 — graph: the call graph, in the form queries need, and name lookup.

In: a ``resolve.LinkedGraph`` (plain nodes and edges), packed once by ``pack`` into
 * a *core*: node list, aliases, counts, and the weighted adjacency of caller/callee pairs as flat
   arrays (forward and reverse, one weight per pair: the cost of its cheapest edge) — loaded in a
   few milliseconds by a warm query;
 * *rows*: each function's outgoing edges with kind, call site and evidence, fetched only for the
   functions a query looks at (from memory after a build, from the store afterwards);
 * *parts*: tables other layers built for this graph (the reference stack's), kept opaque and read
   by name (``part``) when a query needs them, and ``pointer_pairs``: the caller/callee pairs only
   pointers connect, with their slots.
Out: a ``CallGraph`` with ``nodes`` (id → ``rows.Node``), ``out``/``inc`` (caller → callee →
``rows.Edge`` list), ``distances`` (Dijkstra over the arrays), ``subgraph`` (a networkx ``DiGraph``
of a region, for networkx's k-shortest-paths) and ``lookup`` (a user's name to one node id, or a
``SymbolError`` listing candidates).
"""

from __future__ import annotations

import bisect
import difflib
import heapq
import math
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterator, Mapping
from functools import cached_property

from .errors import SymbolError
from .resolve import LinkedGraph
from .rows import EDGE_KINDS, EXACT_KINDS, Edge, Node, packed

# Path cost of one hop: 1, plus the kind's penalty (rows.EDGE_KINDS: it grows as the kind's
# confidence falls), plus one per bit of ambiguity at an indirect call site (log2 of how many
# functions that site may call): a hop through a pointer with 32 possible targets costs as much as five
# more direct calls, one named by a two-way INDIRECT_CALL_2 as one more.
AMBIGUITY_COST = 1.0
# A call in a branch the code marks as rare (an unlikely() condition, a special case taken only when a
# flag is set; see extract_calls.branch_coldness) costs more than one more call: the main line, one
# call longer, ranks first. A call through a pointer whose value was stored in such a branch costs a
# little more than one through a value stored on a main line: it orders the values of one pointer,
# never outweighs a call.
COLD_COST = 1.5
STORE_COLD_COST = 0.5
INF = float("inf")


def _site_key(e: Edge) -> tuple:
    return (e.src, e.file, e.line, "cand" if e.kind == "indirect_candidate" else "ptr")


def _fanout(edges: list[Edge]) -> dict[tuple, int]:
    count: dict[tuple, int] = defaultdict(int)
    for e in edges:
        if e.kind not in EXACT_KINDS:
            count[_site_key(e)] += 1
    return count


def edge_cost(e: Edge, fanout: dict[tuple, int]) -> float:
    """Cost of taking edge e as a hop (see the module's constants)."""
    return site_cost(e, fanout.get(_site_key(e), 1))


def site_cost(e: Edge, targets: int) -> float:
    """Cost of taking edge e as a hop when its call site may call that many functions."""
    c = 1.0 + EDGE_KINDS[e.kind].penalty + COLD_COST * e.cold + STORE_COLD_COST * e.store_cold
    if e.kind not in EXACT_KINDS:
        c += AMBIGUITY_COST * math.log2(max(targets, 1))
    return c


def _pair_costs(edges: list[Edge], index: dict[str, int]) -> dict[tuple[int, int], float]:
    """(caller, callee) index pair -> the cost of its cheapest usable edge."""
    fanout = _fanout(edges)
    pair_cost: dict[tuple[int, int], float] = {}
    for e in edges:
        if e.through_param:
            continue
        key = (index[e.src], index[e.dst])
        c = edge_cost(e, fanout)
        if c < pair_cost.get(key, INF):
            pair_cost[key] = c
    return pair_cost


def _csr(n: int, pair_cost: dict[tuple[int, int], float], reverse: bool) -> tuple[bytes, bytes, bytes]:
    """Compressed rows (ptr, idx, weight) of the pairs, by caller (by callee when reverse)."""
    pairs = sorted((b, a) for a, b in pair_cost) if reverse else sorted(pair_cost)
    ptr = array("i", [0] * (n + 1))
    idx = array("i")
    wt = array("d")
    for a, b in pairs:
        ptr[a + 1] += 1
        idx.append(b)
        wt.append(pair_cost[(b, a)] if reverse else pair_cost[(a, b)])
    for i in range(n):
        ptr[i + 1] += ptr[i]
    return ptr.tobytes(), idx.tobytes(), wt.tobytes()


def _pointer_pairs(edges: list[Edge], index: dict[str, int]) -> list[tuple]:
    """Pairs that only pointers connect, with the slots of those pointers: what a socket's state can
    rule out, known without reading any edge row."""
    usable_by_pair: dict[tuple[int, int], list[Edge]] = defaultdict(list)
    for e in edges:
        if not e.through_param:
            usable_by_pair[(index[e.src], index[e.dst])].append(e)
    return [(a, b, tuple(sorted({e.slot or "" for e in es})))
            for (a, b), es in sorted(usable_by_pair.items()) if not any(e.kind in EXACT_KINDS for e in es)]


def _socket_guarded(edges: list[Edge], index: dict[str, int]) -> list[tuple]:
    """Pairs whose every usable edge sits under a test of the socket's type or family, with those
    tests per edge: what a socket's configuration can rule out, known without reading edge rows."""
    by_pair: dict[tuple[int, int], list[Edge]] = defaultdict(list)
    for e in edges:
        if not e.through_param:
            by_pair[(index[e.src], index[e.dst])].append(e)
    return [(a, b, tuple(sorted({e.sock for e in es}))) for (a, b), es in sorted(by_pair.items())
            if all(e.sock for e in es)]


def pack(lg: LinkedGraph, parts: dict | None = None) -> tuple[dict, dict[int, list], dict]:
    """(core, rows, parts) of a linked graph — see the module docstring. parts: opaque tables other
    layers built for this graph (the reference stack's), stored beside it uninterpreted."""
    ids = [n.id for n in lg.nodes]
    index = {nid: i for i, nid in enumerate(ids)}
    rows: dict[int, list] = defaultdict(list)
    for e in lg.edges:
        rows[index[e.src]].append(tuple(e))
    pair_cost = _pair_costs(lg.edges, index)
    core = {"ids": ids, "nodes": packed(lg.nodes), "aliases": lg.aliases, "stats": lg.stats,
            "n_edges": len(lg.edges), "rows_of": sorted(rows),  # functions with outgoing edges: a row the store lacks is damage
            "fwd": _csr(len(ids), pair_cost, False), "rev": _csr(len(ids), pair_cost, True)}
    return core, dict(rows), {**(parts or {}), "pointer_pairs": _pointer_pairs(lg.edges, index),
                              "socket_guarded": _socket_guarded(lg.edges, index)}


class _Adjacency(Mapping):
    """cg.out / cg.inc: function id -> {other function id: [Edge, ...]} (best first), built on
    demand from the edge rows."""

    def __init__(self, cg: CallGraph, reverse: bool) -> None:
        self.cg = cg
        self.reverse = reverse
        self._cache: dict[str, dict[str, list[Edge]]] = {}

    def __getitem__(self, nid: str) -> dict[str, list[Edge]]:
        got = self._cache.get(nid)
        if got is None:
            if nid not in self.cg.index:
                raise KeyError(nid)
            got = self.cg._inc_of(nid) if self.reverse else self.cg._out_of(nid)
            self._cache[nid] = got
        return got

    def __iter__(self) -> Iterator[str]:
        return iter(self.cg.ids)

    def __len__(self) -> int:
        return len(self.cg.ids)


class CallGraph:
    def __init__(self, core: dict, rows: dict[int, list] | Callable[[list[int]], dict[int, list]],
                 parts: dict | Callable[[str], object], meta: dict | None = None) -> None:
        self.meta = meta or {}
        self.ids: list[str] = core["ids"]
        self.index = {nid: i for i, nid in enumerate(self.ids)}
        self.nodes: dict[str, Node] = {n.id: n for n in map(Node.of, core["nodes"])}
        self.aliases: dict = core["aliases"]
        self.stats: dict = core["stats"]
        self.n_edges: int = core["n_edges"]
        self._arrays = {}
        for name in ("fwd", "rev"):
            ptr, idx, wt = (array("i"), array("i"), array("d"))
            ptr.frombytes(core[name][0])
            idx.frombytes(core[name][1])
            wt.frombytes(core[name][2])
            self._arrays[name] = (ptr, idx, wt)
        self._rows = rows
        self._has_row = set(core.get("rows_of", ()))
        self._row_cache: dict[int, list] = {}
        self._parts = parts
        self._dist_cache: dict[tuple, dict[str, float]] = {}
        self.out = _Adjacency(self, reverse=False)
        self.inc = _Adjacency(self, reverse=True)

    # -- rows and parts --------------------------------------------------------------------------
    def rows(self, idxs: list[int]) -> dict[int, list]:
        need = [i for i in idxs if i not in self._row_cache]
        if need:
            got = self._rows(need) if callable(self._rows) else {i: self._rows.get(i, []) for i in need}
            lost = [i for i in need if i in self._has_row and i not in got]
            if lost and callable(self._rows):
                got = self._rows(need, lost)  # type: ignore[call-arg]
            for i in need:
                self._row_cache[i] = [Edge.of(t) for t in got.get(i, [])]
        return {i: self._row_cache[i] for i in idxs}

    def part(self, name: str):  # type: ignore[no-untyped-def]
        return self._parts(name) if callable(self._parts) else self._parts.get(name)

    @cached_property
    def pointer_pairs(self) -> dict[str, list[tuple[str, tuple[str, ...]]]]:
        """caller -> [(callee, slots)] for the pairs only pointers connect (see pack)."""
        out: dict[str, list[tuple[str, tuple[str, ...]]]] = defaultdict(list)
        for a, b, slots in self.part("pointer_pairs") or []:
            out[self.ids[a]].append((self.ids[b], tuple(slots)))
        return out

    @cached_property
    def socket_guarded(self) -> list[tuple[str, str, tuple]]:
        """(caller, callee, the socket tests of each call) for the pairs only such calls connect."""
        return [(self.ids[a], self.ids[b], tuple(socks)) for a, b, socks in self.part("socket_guarded") or []]

    def _out_of(self, nid: str) -> dict[str, list[Edge]]:
        out: dict[str, list[Edge]] = defaultdict(list)
        for e in self.rows([self.index[nid]])[self.index[nid]]:
            out[e.dst].append(e)
        for lst in out.values():
            lst.sort(key=Edge.rank_key)
        return dict(out)

    def _inc_of(self, nid: str) -> dict[str, list[Edge]]:
        """Callers of nid: every function with an edge to it (including call-through-parameter
        edges, which the weighted arrays leave out)."""
        i = self.index[nid]
        ptr, idx, _ = self._arrays["rev"]
        srcs = set(idx[ptr[i] : ptr[i + 1]])
        srcs.update(self._param_callers.get(i, ()))
        out: dict[str, list[Edge]] = {}
        for s in sorted(srcs):
            edges = self.out[self.ids[s]].get(nid)
            if edges:
                out[self.ids[s]] = edges
        return out

    @cached_property
    def _param_callers(self) -> dict[int, list[int]]:
        """Callee-side parameter edges are not in the weighted arrays; find them once."""
        got: dict[int, list[int]] = defaultdict(list)
        for e in self.all_edges():
            if e.through_param:
                got[self.index[e.dst]].append(self.index[e.src])
        return got

    def all_edges(self) -> Iterator[Edge]:
        """Every edge, in (caller, callee, kind, site) order."""
        allrows = self.rows(list(range(len(self.ids))))
        for i in range(len(self.ids)):
            yield from allrows[i]

    def edges_between(self, a: str, b: str) -> list[Edge]:
        if a not in self.index:
            return []
        return self.out[a].get(b, [])

    # -- weighted search ---------------------------------------------------------------------------
    def _dijkstra(self, s: int, reverse: bool, ban: set[int], cutoff: float = INF, stop: int = -1,
                  inside: set[int] | None = None, gone: set[tuple[int, int]] | None = None
                  ) -> tuple[dict[int, float], dict[int, int]]:
        """(cost, predecessor) of the functions reachable from index s over the weighted arrays,
        skipping banned functions, functions outside inside and gone pairs; stops at stop."""
        ptr, idx, wt = self._arrays["rev" if reverse else "fwd"]
        dist = {s: 0.0}
        prev: dict[int, int] = {}
        done: set[int] = set()
        heap = [(0.0, s)]
        while heap:
            d, u = heapq.heappop(heap)
            if u in done:
                continue
            if d > cutoff or u == stop:
                break
            done.add(u)
            for j in range(ptr[u], ptr[u + 1]):
                v = idx[j]
                if v in ban or (inside is not None and v not in inside) or (gone and (u, v) in gone):
                    continue
                nd = d + wt[j]
                if nd < dist.get(v, INF):
                    dist[v] = nd
                    prev[v] = u
                    heapq.heappush(heap, (nd, v))
        return dist, prev

    def distances(self, src: str, reverse: bool = False, banned: frozenset[str] = frozenset(),
                  cutoff: float = INF, within: frozenset[str] | None = None) -> dict[str, float]:
        """Cost of the cheapest path from src (to src, when reverse) to every function it reaches
        (only through the functions within, when given)."""
        key = (src, reverse, banned, cutoff, within)
        got = self._dist_cache.get(key)
        if got is not None:
            return got
        index = self.index
        dist, _ = self._dijkstra(index[src], reverse, {index[b] for b in banned if b in index}, cutoff,
                                 inside={index[v] for v in within} if within is not None else None)
        ids = self.ids
        got = {ids[i]: d for i, d in dist.items() if d <= cutoff}
        if len(self._dist_cache) > 64:
            self._dist_cache.clear()
        self._dist_cache[key] = got
        return got

    def shortest_path(self, src: str, dst: str, banned: frozenset[str] = frozenset(),
                      removed: frozenset[tuple[str, str]] = frozenset(), within: set[str] | None = None
                      ) -> tuple[float, list[str]] | None:
        """The cheapest path src -> dst avoiding banned functions and removed pairs, only through
        functions within (when given); None when there is none."""
        index = self.index
        if src not in index or dst not in index:
            return None
        s, t = index[src], index[dst]
        dist, prev = self._dijkstra(s, False, {index[b] for b in banned if b in index}, stop=t,
                                    inside={index[v] for v in within} if within is not None else None,
                                    gone={(index[a], index[b]) for a, b in removed if a in index and b in index})
        if t not in dist:
            return None
        path = [t]
        while path[-1] != s:
            path.append(prev[path[-1]])
        return dist[t], [self.ids[i] for i in reversed(path)]

    def reweighted(self, costs: dict[tuple[str, str], float]) -> CallGraph:
        """This graph with the given caller/callee pairs costing what costs says (what one socket's
        state knows: a pointer it binds to one function is no longer ambiguous). Shares the rows."""
        import copy

        other = copy.copy(self)
        other._dist_cache = {}
        other._arrays = {}
        index = self.index
        for name, reverse in (("fwd", False), ("rev", True)):
            ptr, idx, wt = self._arrays[name]
            wt = array("d", wt)
            for (a, b), c in costs.items():
                i, j = (index[b], index[a]) if reverse else (index[a], index[b])
                for k in range(ptr[i], ptr[i + 1]):
                    if idx[k] == j:
                        wt[k] = c
            other._arrays[name] = (ptr, idx, wt)
        return other

    def weight(self, a: str, b: str) -> float:
        ptr, idx, wt = self._arrays["fwd"]
        i, j = self.index[a], self.index[b]
        for k in range(ptr[i], ptr[i + 1]):
            if idx[k] == j:
                return wt[k]
        return INF

    def subgraph(self, keep: set[str], removed: frozenset[tuple[str, str]] = frozenset()):  # type: ignore[no-untyped-def]
        """The weighted caller/callee pairs among keep, as a networkx DiGraph."""
        import networkx as nx

        ptr, idx, wt = self._arrays["fwd"]
        ids = self.ids
        g = nx.DiGraph()
        g.add_nodes_from(sorted(keep))
        for u in sorted(keep):
            ui = self.index[u]
            for k in range(ptr[ui], ptr[ui + 1]):
                v = ids[idx[k]]
                if v in keep and (u, v) not in removed:
                    g.add_edge(u, v, weight=wt[k])
        return g

    # -- names -----------------------------------------------------------------------------------
    @cached_property
    def _by_name(self) -> dict[str, list[str]]:
        idx: dict[str, list[str]] = defaultdict(list)
        for nid, n in self.nodes.items():
            idx[n.name].append(nid)
        for alias, ids in self.aliases.items():
            for i in ids:
                if i not in idx[alias]:
                    idx[alias].append(i)
        return idx

    def lookup(self, name: str) -> str:
        """Node id for a user-given name; SymbolError if unknown or ambiguous. A unique global
        function wins over ``static`` namesakes in other files (name those as ``path::name``)."""
        if "::" in name and name in self.nodes:
            return name
        cands = sorted(set(self._by_name.get(name, [])))
        defined = [c for c in cands if not self.nodes[c].external]
        if len(defined) == 1:
            return defined[0]
        if defined:
            globals_ = [c for c in defined if "::" not in c]
            if len(globals_) == 1:
                return globals_[0]
            listing = ", ".join(self.describe(c) for c in defined[:12])
            raise SymbolError(f"{name!r} is ambiguous: {listing}", f"name one of them exactly, e.g. {defined[0]!r}")
        if cands:
            return cands[0]  # only known as an external: called, not defined in scope
        base = name.split("::")[-1]
        close = difflib.get_close_matches(base, list(self._by_name), n=5, cutoff=0.75)
        if len(close) < 5 and len(base) >= 4:
            close += sorted((n for n in self._by_name if base in n and n not in close), key=len)[: 5 - len(close)]
        hint = (f"did you mean {', '.join(close)}?" if close
                else "check the spelling, or widen --scope (e.g. --scope net,include,fs)")
        raise SymbolError(f"no function {name!r} in {self.meta.get('label', 'this kernel')} "
                          f"({','.join(self.meta.get('scope', []))})", hint)

    def describe(self, nid: str) -> str:
        n = self.nodes[nid]
        return f"{nid} ({n.file}:{n.line})" if n.file else f"{nid} (external)"

    def name(self, nid: str) -> str:
        return self.nodes[nid].name if nid in self.nodes else nid

    @cached_property
    def _starts(self) -> dict[str, list[tuple[int, str]]]:
        """file -> (first line, id) of the functions defined there, in order."""
        out: dict[str, list[tuple[int, str]]] = defaultdict(list)
        for nid, n in self.nodes.items():
            if n.file and not n.external:
                out[n.file].append((n.line, nid))
        return {f: sorted(v) for f, v in out.items()}

    def function_at(self, file: str, line: int) -> str | None:
        """The function whose definition holds file:line (the last one starting at or before it)."""
        starts = self._starts.get(file, [])
        i = bisect.bisect_right(starts, (line, "\uffff")) - 1
        return starts[i][1] if i >= 0 else None

    def location(self, nid: str) -> tuple[str | None, int]:
        n = self.nodes.get(nid)
        return (n.file, n.line) if n else (None, 0)

