"""Stage 7 — graph: the call graph as networkx graphs, and name lookup.

In: a ``resolve.LinkedGraph`` (plain nodes and edges). Out: a ``CallGraph`` with
 * ``multigraph()`` — a networkx ``MultiDiGraph``: every edge keeps kind, call site and evidence;
 * ``weighted()`` — a networkx ``DiGraph`` with one edge per caller/callee pair, weighted by the best
   edge's confidence, for path search;
 * ``lookup(name)`` — a user's name (``sendto``, ``sys_sendto``, ``__x64_sys_sendto``,
   ``net/socket.c::sock_sendmsg_nosec``) to one node id, or a ``SymbolError`` listing candidates.
"""

from __future__ import annotations

import difflib
import math
from collections import defaultdict
from functools import cached_property

import networkx as nx

from .errors import SymbolError
from .resolve import CONFIDENCE, LinkedGraph

# Path cost of one hop: 1, plus a penalty that grows as the kind's confidence falls, plus one per bit
# of ambiguity at an indirect call site (log2 of how many functions that site may call): a hop through
# a pointer with 32 possible targets costs as much as five more direct calls, one named by a
# two-way INDIRECT_CALL_2 as one more. Fallback edges cost so much that a path using one ranks after
# any path that does not (up to 40 hops).
PENALTY = {"direct": 0.0, "syscall": 0.0, "indirect_candidate": 0.05, "ops": 0.1, "param": 0.15, "assign": 0.2,
           "fallback": 40.0}
AMBIGUITY_COST = 1.0


class Edge:
    __slots__ = ("src", "dst", "kind", "file", "line", "text", "evidence", "cond", "slot")

    def __init__(self, t: tuple) -> None:
        self.src, self.dst, self.kind, self.file, self.line, self.text, self.evidence, self.cond, self.slot = t

    @property
    def site(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def through_param(self) -> bool:
        """Callee-side edge of a call through a parameter (not used by path search)."""
        return bool(self.evidence) and self.evidence[0][0] == "through_param"

    @property
    def confidence(self) -> float:
        return CONFIDENCE[self.kind]

    def rank_key(self) -> tuple:
        return (PENALTY[self.kind], self.file, self.line)


class CallGraph:
    def __init__(self, lg: LinkedGraph, meta: dict | None = None) -> None:
        self.lg = lg
        self.meta = meta or {}
        self.nodes: dict[str, tuple] = {n[0]: n for n in lg.nodes}
        self._out: dict[str, dict[str, list[Edge]]] | None = None
        self._in: dict[str, dict[str, list[Edge]]] | None = None

    # -- adjacency -------------------------------------------------------------------------------
    def _build_adj(self) -> None:
        out: dict[str, dict[str, list[Edge]]] = defaultdict(lambda: defaultdict(list))
        inc: dict[str, dict[str, list[Edge]]] = defaultdict(lambda: defaultdict(list))
        for t in self.lg.edges:
            e = Edge(t)
            out[e.src][e.dst].append(e)
            inc[e.dst][e.src].append(e)
        for d in (out, inc):
            for m in d.values():
                for lst in m.values():
                    lst.sort(key=Edge.rank_key)
        self._out, self._in = out, inc

    @property
    def out(self) -> dict[str, dict[str, list[Edge]]]:
        if self._out is None:
            self._build_adj()
        return self._out  # type: ignore[return-value]

    @property
    def inc(self) -> dict[str, dict[str, list[Edge]]]:
        if self._in is None:
            self._build_adj()
        return self._in  # type: ignore[return-value]

    def edges_between(self, a: str, b: str) -> list[Edge]:
        return self.out.get(a, {}).get(b, [])

    @cached_property
    def fanout(self) -> dict[tuple[str, str, int, str], int]:
        """(caller, file, line, kind class) -> how many functions that call site may reach."""
        count: dict[tuple[str, str, int, str], int] = defaultdict(int)
        for t in self.lg.edges:
            kind = t[2]
            if kind in ("direct", "syscall", "param"):
                continue
            count[(t[0], t[3], t[4], "cand" if kind == "indirect_candidate" else "ptr")] += 1
        return count

    def cost(self, e: Edge) -> float:
        """Cost of taking edge e as a hop (see PENALTY)."""
        c = 1.0 + PENALTY[e.kind]
        if e.kind not in ("direct", "syscall", "param"):
            n = self.fanout.get((e.src, e.file, e.line, "cand" if e.kind == "indirect_candidate" else "ptr"), 1)
            c += AMBIGUITY_COST * math.log2(max(n, 1))
        return c

    @cached_property
    def weighted(self) -> nx.DiGraph:
        """One edge per pair, weight = cost of the cheapest edge between them."""
        g = nx.DiGraph()
        g.add_nodes_from(sorted(self.nodes))
        for a in sorted(self.out):
            for b, lst in sorted(self.out[a].items()):
                usable = [e for e in lst if not e.through_param]
                if usable:
                    g.add_edge(a, b, weight=min(self.cost(e) for e in usable))
        return g

    def multigraph(self, nodes: set[str] | None = None) -> nx.MultiDiGraph:
        g = nx.MultiDiGraph()
        keep = sorted(nodes) if nodes is not None else sorted(self.nodes)
        keepset = set(keep)
        for nid in keep:
            n = self.nodes.get(nid)
            if n is not None:
                g.add_node(nid, name=n[1], file=n[2], line=n[3], external=n[4] == "x")
        for t in self.lg.edges:
            if t[0] in keepset and t[1] in keepset:
                g.add_edge(t[0], t[1], kind=t[2], site=f"{t[3]}:{t[4]}", text=t[5], evidence=t[6], cond=t[7], slot=t[8])
        return g

    # -- names -----------------------------------------------------------------------------------
    @cached_property
    def _by_name(self) -> dict[str, list[str]]:
        idx: dict[str, list[str]] = defaultdict(list)
        for nid, n in self.nodes.items():
            idx[n[1]].append(nid)
        for alias, ids in self.lg.aliases.items():
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
        defined = [c for c in cands if self.nodes[c][4] != "x"]
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
        return f"{nid} ({n[2]}:{n[3]})" if n[2] else f"{nid} (external)"

    def name(self, nid: str) -> str:
        return self.nodes[nid][1] if nid in self.nodes else nid

    def location(self, nid: str) -> tuple[str | None, int]:
        n = self.nodes.get(nid)
        return (n[2], n[3]) if n else (None, 0)
