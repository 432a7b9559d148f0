"""Drawings: DOT for Graphviz, and SVG or an HTML page through Graphviz's ``dot``.

In: a ``CallGraph`` with the functions and edges to draw (paths, a caller/callee tree, a part of the
graph). Out: DOT text — one box per function (name, file:line), edges styled by kind
(``rows.EDGE_KINDS``) — and, from it, SVG or an HTML page holding the drawing and the text report.
"""

from __future__ import annotations

import html
import shutil
import subprocess
from collections.abc import Iterable

from ..errors import KsrcError
from ..graph import CallGraph
from ..query import Path, TreeItem
from ..refstack.socket_paths import SocketPaths
from ..rows import EDGE_KINDS, Edge, primary_edge
from .graphs import edges_among
from .paths import socket_paths_json, socket_paths_text

_START_END = "style=filled, fillcolor=lightyellow"


def _dot_id(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dot_label(*lines: str) -> str:
    """A quoted DOT label of several lines (each escaped; joined by DOT's \\n)."""
    return '"' + "\\n".join(x.replace("\\", "\\\\").replace('"', '\\"') for x in lines) + '"'


def _edge_line(e: Edge, label: str | None) -> str:
    lab = [e.kind] if e.kind != "direct" else []
    if label is not None:
        lab.append(label[:48])
    elif e.kind in ("ops", "assign") and e.evidence:
        lab.append(str(e.evidence[0][1])[:40])
    kind = EDGE_KINDS[e.kind]
    return (f"  {_dot_id(e.src)} -> {_dot_id(e.dst)} [style={kind.dot_style}, color={kind.dot_color}"
            + (f", label={_dot_label(*lab)}" if lab else "") + "];")


def dot_graph(cg: CallGraph, nodes: Iterable[str], edges: Iterable[Edge], title: str,
              highlight: dict[str, str] | None = None, labels: dict[tuple[str, str], str] | None = None) -> str:
    lines = [f"digraph {_dot_id(title)} {{", "  rankdir=TB;", '  node [shape=box, fontname="monospace"];',
             f"  label={_dot_id(title)}; labelloc=t;"]
    for nid in sorted(set(nodes)):
        file, line = cg.location(nid)
        label = _dot_label(cg.name(nid), f"{file}:{line}" if file else "(external)")
        extra = f", {highlight[nid]}" if highlight and nid in highlight else ""
        lines.append(f"  {_dot_id(nid)} [label={label}{extra}];")
    for e in sorted(set(edges), key=lambda e: (e.src, e.dst, e.kind, e.file, e.line)):
        lines.append(_edge_line(e, (labels or {}).get((e.src, e.dst))))
    lines.append("}")
    return "\n".join(lines) + "\n"


def _replay_labels(p: Path, extra: dict | None, labels: dict[tuple[str, str], str]) -> None:
    """Label each hop the replay confirmed with the binding that confirms it."""
    rep = extra.get("replay") if extra else None
    for j, h in enumerate(rep["hops"] if rep else []):
        if h["verdict"] == "confirmed" and h.get("state"):
            # "sock->ops = inet_dgram_ops (net/...): .sendmsg = ..." -> "sock->ops = inet_dgram_ops"
            labels.setdefault((p.nodes[j], p.nodes[j + 1]), h["state"].split(" (")[0].split(":")[0])


def paths_dot(cg: CallGraph, query: dict, paths: list[Path], extras: list[dict] | None = None) -> str:
    nodes: set[str] = set()
    edges: list[Edge] = []
    labels: dict[tuple[str, str], str] = {}
    for i, p in enumerate(paths):
        nodes.update(p.nodes)
        edges.extend(primary_edge(h) for h in p.hops)
        _replay_labels(p, extras[i] if extras else None, labels)
    hl = {paths[0].nodes[0]: _START_END, paths[0].nodes[-1]: _START_END} if paths else {}
    return dot_graph(cg, nodes, edges, f"{query['from']} -> {query['to']} ({cg.meta.get('label')})", hl, labels)


def tree_dot(cg: CallGraph, items: list[TreeItem], title: str) -> str:
    nodes = [it.node for it in items]
    edges = [e for it in items for e in it.edges[:1]]
    return dot_graph(cg, nodes, edges, title, {items[0].node: _START_END} if items else None)


def graph_dot(cg: CallGraph, nodes: set[str] | None, title: str) -> str:
    keep = nodes if nodes is not None else set(cg.nodes)
    return dot_graph(cg, keep, list(edges_among(cg, keep)), title)


# -- through Graphviz ------------------------------------------------------------------------------------
def svg(dot: str, fmt: str) -> str:
    """The DOT text drawn by Graphviz's dot (fmt: the format asked for, named in the error when dot is
    missing)."""
    exe = shutil.which("dot")
    if exe is None:
        raise KsrcError(f"--format {fmt} needs Graphviz's dot, which is not installed",
                        "install graphviz (apt-get install graphviz), or use --format dot or text")
    r = subprocess.run([exe, "-Tsvg"], input=dot, capture_output=True, text=True)
    if r.returncode != 0:
        raise KsrcError(f"dot failed: {r.stderr.strip()[:200]}", "write --format dot and render it yourself")
    return r.stdout


def html_page(title: str, drawing: str, text: str) -> str:
    """A page with the title, the SVG drawing and the text report."""
    t = html.escape(title)
    return (f"<!doctype html>\n<html><head><meta charset=\"utf-8\"><title>{t}</title></head><body>\n"
            f"<h1>{t}</h1>\n{drawing[drawing.find('<svg'):]}\n<pre>{html.escape(text)}</pre>\n</body></html>\n")


def paths_file(cg: CallGraph, query: dict, res: SocketPaths, fmt: str) -> str:
    """``ksrcgraph report``: the paths as text, json, dot, svg or html (a page with both)."""
    if fmt == "text":
        return socket_paths_text(cg, query, res)
    if fmt == "json":
        return socket_paths_json(cg, query, res)
    dot = paths_dot(cg, query, res.paths, res.extras())
    if fmt == "dot":
        return dot
    drawing = svg(dot, fmt)
    if fmt == "svg":
        return drawing
    title = f"{query['from']} → {query['to']} ({cg.meta.get('label')})"
    return html_page(title, drawing, socket_paths_text(cg, query, res))
