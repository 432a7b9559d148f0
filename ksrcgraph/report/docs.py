"""The pieces every JSON document shares.

In: a ``CallGraph`` and its rows (``rows.Edge``, evidence steps, ``query.Path``). Out: plain dicts
(``kernel_doc``, ``edge_doc``, ``path_doc``, ...) and ``dumps``, the one way documents are written.
"""

from __future__ import annotations

import json

from ..graph import CallGraph
from ..query import Path
from ..rows import Edge, primary_edge

SCHEMA_VERSION = 1


def dumps(doc: dict, indent: int = 2) -> str:
    return json.dumps(doc, indent=indent) + "\n"


def kernel_doc(cg: CallGraph) -> dict:
    m = cg.meta
    return {"label": m.get("label"), "version": m.get("version"), "scope": list(m.get("scope", [])),
            "source": m.get("origin")}


def kernel_label(cg: CallGraph) -> str:
    """'6.1 (6.1.192)': the label, and the version when it says more."""
    k = cg.meta
    v = k.get("version")
    return f"{k.get('label')}" + (f" ({v})" if v and v != k.get("label") else "")


def step_doc(s: tuple) -> dict:
    what, label, file, line, cond = (tuple(s) + ("",) * 5)[:5]
    d: dict = {"via": what, "what": label}
    if file:
        d["at"] = f"{file}:{line}"
    if cond:
        d["if"] = cond
    return d


def edge_doc(e: Edge) -> dict:
    d: dict = {"kind": e.kind, "site": e.site, "callee_expr": e.text or None,
               "evidence": [step_doc(s) for s in e.evidence]}
    if e.cond:
        d["if"] = e.cond
    return d


def _hop_doc(cg: CallGraph, nid: str, edges: list[Edge] | None) -> dict:
    """One function of a path, with the edges that lead into it (the primary one, the others as
    'also')."""
    file, line = cg.location(nid)
    hop: dict = {"function": cg.name(nid), "id": nid, "file": file, "line": line, "edge": None}
    if edges:
        primary = primary_edge(edges)
        hop["edge"] = edge_doc(primary)
        others = [edge_doc(e) for e in edges if e is not primary]
        if others:
            hop["edge"]["also"] = others
    return hop


def path_doc(cg: CallGraph, rank: int, p: Path, extra: dict | None = None) -> dict:
    hops = [_hop_doc(cg, nid, p.hops[j - 1] if j > 0 else None) for j, nid in enumerate(p.nodes)]
    d = {"rank": rank, "length": p.length, "cost": p.cost, "kinds": dict(sorted(p.kinds().items())), "hops": hops}
    if extra:
        d.update(extra)
    return d
