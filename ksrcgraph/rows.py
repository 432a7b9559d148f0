"""The rows of the call graph, by name: ``Node``, ``Edge`` and the table of edge kinds.

In: nothing (vocabulary). Out: the row types every stage after ``resolve`` reads, and ``EDGE_KINDS``
— for each kind of edge its confidence, its path-search penalty, whether it goes through a pointer,
how it is labelled and drawn. This is the one place that says what an edge kind means.

Rows are NamedTuples: fields by name everywhere, and still plain tuples where they are packed
(``marshal`` stores exact tuples: ``packed`` / ``Node.of`` / ``Edge.of`` convert at that boundary).
"""

from __future__ import annotations

from typing import NamedTuple

Step = tuple  # evidence step: (what, label, file, line, cond)


class EdgeKind(NamedTuple):
    name: str
    confidence: float  # how sure the linker is that this call can happen
    penalty: float  # path cost added to the hop (see graph.edge_cost)
    pointer: bool  # the callee is a value read from a pointer: ambiguous, decided by the state
    show_order: int  # order of the kinds among the edges of one hop
    dot_style: str
    dot_color: str
    label: str


# A fallback hop costs so much that a path using one ranks after any path that does not (up to 40 hops).
EDGE_KINDS: dict[str, EdgeKind] = {k.name: k for k in (
    EdgeKind("direct", 1.0, 0.0, False, 0, "solid", "black", "direct call"),
    EdgeKind("syscall", 1.0, 0.0, False, 1, "bold", "black", "system call entry"),
    EdgeKind("ops", 0.9, 0.1, True, 2, "bold", "blue", "through an ops table"),
    EdgeKind("assign", 0.8, 0.2, True, 3, "bold", "darkgreen", "through an assigned pointer"),
    EdgeKind("param", 0.85, 0.15, False, 4, "dotted", "purple", "function passed as an argument"),
    EdgeKind("indirect_candidate", 0.95, 0.05, True, 5, "dashed", "gray40", "named by INDIRECT_CALL_*"),
    EdgeKind("fallback", 0.3, 40.0, True, 6, "dashed", "red", "by field name alone"),
)}
KINDS = ("direct", "syscall", "indirect_candidate", "ops", "param", "assign", "fallback")  # stats order
EXACT_KINDS = frozenset(k for k, v in EDGE_KINDS.items() if not v.pointer)  # one callee, no ambiguity
DIRECT_KINDS = frozenset(("direct", "syscall"))  # a named function: replay has nothing to decide


class Node(NamedTuple):
    """A function. flags: "" defined in scope, "x" external (called, not defined); may hold "i"
    (inline in a header)."""

    id: str
    name: str
    file: str | None
    line: int
    flags: str
    signature: str
    cond: str

    @classmethod
    def of(cls, t: tuple) -> Node:
        return t if isinstance(t, Node) else cls._make(t)

    @property
    def external(self) -> bool:
        return self.flags == "x"


class Edge(NamedTuple):
    """A call from src to dst at file:line. text: the callee expression as written; evidence: the
    steps that make the call (Step tuples); cond: the ``#if`` around the site; slot: the pointer
    slot read, for pointer kinds."""

    src: str
    dst: str
    kind: str
    file: str
    line: int
    text: str
    evidence: tuple
    cond: str
    slot: str | None
    cold: int = 0  # how many enclosing branches of the call site are rare
    store_cold: int = 0  # how many enclosing branches of the store that put dst into the pointer are rare
    needs: tuple = ()  # (parameter index, name, truthy) of src the call site runs only under
    lits: tuple = ()  # per argument of the call: "0" / "1" a false / true constant, "p<i>" src's parameter i
    sock: tuple = ()  # (property, constant, equal) the call site runs only under (facts.Call.sock)
    case_of: int = 0  # the line of the switch whose case the call sits in directly (facts.Call.case_of)

    @classmethod
    def of(cls, t: tuple) -> Edge:
        return t if isinstance(t, Edge) else cls._make(t)

    @property
    def site(self) -> str:
        return f"{self.file}:{self.line}"

    @property
    def through_param(self) -> bool:
        """Callee-side edge of a call through a parameter (not used by path search)."""
        return bool(self.evidence) and self.evidence[0][0] == "through_param"

    @property
    def info(self) -> EdgeKind:
        return EDGE_KINDS[self.kind]

    @property
    def confidence(self) -> float:
        return EDGE_KINDS[self.kind].confidence

    def rank_key(self) -> tuple:
        return (EDGE_KINDS[self.kind].penalty, self.file, self.line)


def packed(rows: list) -> list[tuple]:
    """Rows as exact tuples, for marshal."""
    return [tuple(r) for r in rows]


def primary_edge(edges: list[Edge]) -> Edge:
    """The edge to show for a hop: a plain call first; else one that says how the pointer resolved
    (ops/assign/param), which beats a bare INDIRECT_CALL candidate; fallback last."""
    return min(edges, key=lambda e: (EDGE_KINDS[e.kind].show_order, e.file, e.line))
