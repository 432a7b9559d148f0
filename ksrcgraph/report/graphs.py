"""Callers and callees of a function (trees), and the whole graph or a part of it, as text and JSON.

In: ``query.TreeItem`` lists (``query.walk``) or a set of node ids (None: every function), with the
``CallGraph``. Out: strings; nodes sorted by id, edges in the graph's (caller, callee, kind, site) order.
"""

from __future__ import annotations

from collections.abc import Iterator

from .. import attach
from ..graph import CallGraph
from ..query import TreeItem
from ..rows import Edge
from .docs import SCHEMA_VERSION, dumps, edge_doc, kernel_doc, step_doc


# -- trees (callers / callees) -------------------------------------------------------------------------
def tree_text(cg: CallGraph, items: list[TreeItem], direction: str) -> str:
    arrow = "called by" if direction == "in" else "calls"
    lines = []
    for it in items:
        file, line = cg.location(it.node)
        where = f"{file}:{line}" if file else "(not defined in scope)"
        if it.depth == 0:
            lines.append(f"{cg.name(it.node)}  {where}   ({arrow}:)")
            continue
        e = it.edges[0]
        tag = "" if e.kind == "direct" else f" [{e.kind}]"
        rep = "  (see above)" if it.repeated else ""
        lines.append(f"{'  ' * it.depth}{cg.name(it.node)}{tag}  {where}  · site {e.site}{rep}")
    return "\n".join(lines) + "\n"


def _item_doc(cg: CallGraph, it: TreeItem) -> dict:
    file, line = cg.location(it.node)
    return {"depth": it.depth, "function": cg.name(it.node), "id": it.node, "file": file, "line": line,
            "repeated": it.repeated, "edges": [edge_doc(e) for e in it.edges]}


def tree_json(cg: CallGraph, items: list[TreeItem], direction: str, query: dict) -> str:
    return dumps({"schema_version": SCHEMA_VERSION, "kernel": kernel_doc(cg), "query": query,
                  "direction": "callers" if direction == "in" else "callees",
                  "items": [_item_doc(cg, it) for it in items]})


# -- whole graph ---------------------------------------------------------------------------------------
def edges_among(cg: CallGraph, nodes: set[str] | None) -> Iterator[Edge]:
    """The edges between the given functions (every function when nodes is None), in the graph's order."""
    keep = nodes if nodes is not None else set(cg.nodes)
    for e in cg.all_edges():
        if e.src in keep and e.dst in keep:
            yield e


def _graph_edge_doc(e: Edge) -> dict:
    d: dict = {"from": e.src, "to": e.dst, "kind": e.kind, "site": e.site}
    if e.text:
        d["callee_expr"] = e.text
    if e.evidence:
        d["evidence"] = [step_doc(s) for s in e.evidence]
    if e.cond:
        d["if"] = e.cond
    return d


def graph_json(cg: CallGraph, nodes: set[str] | None) -> str:
    """The graph's nodes (each with its attachability as source predicts it: attach.of_node) and
    edges."""
    keep = nodes if nodes is not None else set(cg.nodes)
    ns = [{"id": nid, "name": n.name, "file": n.file, "line": n.line, "external": n.external,
           "attach": attach.of_node(cg, nid).doc()}
          for nid, n in ((nid, cg.nodes[nid]) for nid in sorted(keep))]
    es = [_graph_edge_doc(e) for e in edges_among(cg, keep)]
    return dumps({"schema_version": SCHEMA_VERSION, "kernel": kernel_doc(cg), "nodes": ns, "edges": es}, indent=1)


def graph_text(cg: CallGraph, nodes: set[str] | None) -> str:
    lines = [f"{e.src} -> {e.dst}  [{e.kind}] {e.file}:{e.line}" for e in edges_among(cg, nodes)]
    return "\n".join(lines) + ("\n" if lines else "")
