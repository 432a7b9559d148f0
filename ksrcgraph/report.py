"""Stage 9 — report: query results as text for people, JSON for machines, DOT for Graphviz.

In: ``query.Path`` lists, caller/callee trees, node sets, with the ``CallGraph`` they came from.
Out: strings, deterministic (sorted, stable ids), so golden files and version diffs mean something.

JSON documents carry ``schema_version``; its fields are documented in README.md ("JSON output").
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from .graph import CallGraph, Edge
from .query import Path, TreeItem

SCHEMA_VERSION = 1
INDIRECT_KINDS = ("indirect_candidate", "ops", "assign", "param", "fallback")


# -- shared pieces ---------------------------------------------------------------------------------
def kernel_doc(cg: CallGraph) -> dict:
    m = cg.meta
    return {"label": m.get("label"), "version": m.get("version"), "scope": list(m.get("scope", [])),
            "source": m.get("origin")}


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


def _tables(e: Edge, callee_file: str | None = None) -> list[str]:
    """Short 'how it resolved' phrases: the tables or assignments that put the callee there
    (those in the callee's own file first)."""
    out = []
    steps = sorted(e.evidence, key=lambda s: (s[2] != callee_file, s[2] or "", s[3] or 0)) if callee_file else e.evidence
    for s in steps:
        what, label, file, line = s[0], s[1], s[2], s[3]
        at = f" ({file}:{line})" if file else ""
        if what == "ops":
            out.append(f"{label}{at}")
        elif what == "assign":
            out.append(f"{label}{at}")
        elif what == "store":
            out.append(f"stored by {label}{at}")
        elif what in ("arg", "param", "macro", "syscall", "candidate", "fallback"):
            out.append(f"{label}{at}")
    return out


def explain(e: Edge, callee: str, callee_file: str | None = None) -> str:
    """One line saying how an indirect hop resolves (text output)."""
    if e.kind == "indirect_candidate":
        return f"{e.text} → {callee}: named as INDIRECT_CALL candidate at {e.site}"
    phrases = _tables(e, callee_file if e.kind == "ops" else None)
    shown = "; ".join(phrases[:4]) + (f"; +{len(phrases) - 4} more" if len(phrases) > 4 else "")
    if e.kind == "ops":
        return f"{e.text} → {callee} via {shown}  [call at {e.site}]"
    if e.kind == "assign":
        return f"{e.text} → {callee}: {shown}  [call at {e.site}]"
    if e.kind == "param":
        return f"{callee} {shown}  [call at {e.site}]"
    if e.kind == "fallback":
        return f"{e.text} → {callee}: {shown}  [call at {e.site}]"
    if e.kind == "syscall":
        return f"{callee} is a system call entry ({shown})  [call at {e.site}]"
    return f"call at {e.site}"


# -- paths -----------------------------------------------------------------------------------------
def path_doc(cg: CallGraph, i: int, p: Path, extra: dict | None = None) -> dict:
    hops = []
    for j, nid in enumerate(p.nodes):
        file, line = cg.location(nid)
        hop: dict = {"function": cg.name(nid), "id": nid, "file": file, "line": line, "edge": None}
        if j > 0:
            edges = p.hops[j - 1]
            primary = primary_edge(edges)
            hop["edge"] = edge_doc(primary)
            others = [edge_doc(e) for e in edges if e is not primary]
            if others:
                hop["edge"]["also"] = others
        hops.append(hop)
    d = {"rank": i, "length": p.length, "cost": p.cost, "kinds": dict(sorted(p.kinds().items())), "hops": hops}
    if extra:
        d.update(extra)
    return d


_SHOW_ORDER = {"direct": 0, "syscall": 1, "ops": 2, "assign": 3, "param": 4, "indirect_candidate": 5, "fallback": 6}


def primary_edge(edges: list[Edge]) -> Edge:
    """The edge to show for a hop: a plain call first; else one that says how the pointer resolved
    (ops/assign/param), which beats a bare INDIRECT_CALL candidate; fallback last."""
    return min(edges, key=lambda e: (_SHOW_ORDER[e.kind], e.file, e.line))


def paths_json(cg: CallGraph, query: dict, paths: list[Path], extras: list[dict] | None = None,
               more: dict | None = None) -> str:
    doc: dict = {"schema_version": SCHEMA_VERSION, "kernel": kernel_doc(cg), "query": query,
                 "paths": [path_doc(cg, i + 1, p, extras[i] if extras else None) for i, p in enumerate(paths)]}
    if more:
        doc.update(more)
    return json.dumps(doc, indent=2, sort_keys=False) + "\n"


_MARK = {"confirmed": "✓", "contradicted": "✗", "unmodelled": "?", "missing": "✗"}


def paths_text(cg: CallGraph, query: dict, paths: list[Path], extras: list[dict] | None = None,
               groups: list[tuple[str, list[int]]] | None = None) -> str:
    k = cg.meta
    head = (f"{query['from']} → {query['to']}  (kernel {k.get('label')}"
            f"{' ' + k['version'] if k.get('version') and k.get('version') != k.get('label') else ''}, "
            f"scope {','.join(k.get('scope', []))})")
    lines = [head]
    if query.get("via"):
        lines.append(f"via {', '.join(query['via'])}")
    if query.get("avoid"):
        lines.append(f"avoiding {', '.join(query['avoid'])}")
    if query.get("socket"):
        lines.append(f"socket {query['socket']}: only paths it takes, replayed on the reference stack")
    if not paths:
        lines.append("no path found" + (f" within {query.get('max_depth')} calls" if query.get("max_depth") else "")
                     + (f" that a {query['socket']} socket takes" if query.get("socket") else ""))
        return "\n".join(lines) + "\n"
    order = groups or [("", list(range(len(paths))))]
    for label, idxs in order:
        if groups is not None:
            lines.append("")
            lines.append(f"== realised by {label}" if label else "== realised by no socket configuration the model knows")
        for i in idxs:
            lines.extend(_path_lines(cg, i, paths[i], extras[i] if extras else None))
    return "\n".join(lines) + "\n"


def _path_lines(cg: CallGraph, i: int, p: Path, extra: dict | None) -> list[str]:
    lines = [""]
    kinds = ", ".join(f"{n} {kd}" for kd, n in sorted(p.kinds().items(), key=lambda x: -x[1]))
    rep = extra.get("replay") if extra else None
    status = ""
    if rep is not None:
        status = (f"; replay {rep['socket']}: resolves" if rep["resolves"]
                  else f"; replay {rep['socket']}: does not resolve")
    lines.append(f"[{i + 1}] {p.length} calls ({kinds}{status})")
    width = max(len(cg.name(n)) + j for j, n in enumerate(p.nodes)) + 26
    for j, nid in enumerate(p.nodes):
        file, line = cg.location(nid)
        where = f"{file}:{line}" if file else "(not defined in scope)"
        label = (" " * (j - 1) + "└ " if j else "") + cg.name(nid)
        if j > 0:
            e = primary_edge(p.hops[j - 1])
            label += "" if e.kind == "direct" else f" [{e.kind}]"
        lines.append(f"  {label.ljust(width)} {where}")
        if j == 0:
            continue
        edges = p.hops[j - 1]
        e = primary_edge(edges)
        pad = "  " + " " * (j + 3)
        if e.kind != "direct":
            lines.append(pad + explain(e, cg.name(nid), file))
            for other in edges:
                if other is not e and other.kind != "direct" and other.site == e.site:
                    lines.append(pad + "also: " + explain(other, cg.name(nid), file))
        if rep is not None:
            h = rep["hops"][j - 1]
            if h["verdict"] != "direct" and (e.kind != "direct" or h["verdict"] != "confirmed"):
                lines.append(pad + f"{_MARK.get(h['verdict'], '')} {h['verdict']}" + (f": {h['state']}" if h.get("state") else ""))
    return lines


def replay_text(cg: CallGraph, source: str, results: list[dict]) -> str:
    k = cg.meta
    lines = [f"replaying {source} on kernel {k.get('label')}"
             f"{' ' + k['version'] if k.get('version') and k.get('version') != k.get('label') else ''}"]
    for r in results:
        rep = r["replay"]
        lines.append("")
        verdict = "resolves" if rep["resolves"] else "does not resolve"
        lines.append(f"[{r['rank']}] {' → '.join(x for x in r['functions'] if x)}")
        lines.append(f"    socket {rep['socket']}: {verdict}")
        for j, h in enumerate(rep["hops"]):
            if h["verdict"] in ("direct",):
                continue
            lines.append(f"    {_MARK.get(h['verdict'], ' ')} {r['functions'][j]} → {r['functions'][j + 1]}: "
                         f"{h['verdict']}" + (f" ({h['state']})" if h.get("state") else ""))
        if r.get("breaks_at"):
            b = r["breaks_at"]
            lines.append(f"    breaks at hop {b['hop']}: {b['from']} → {b['to']}: {b['why']}")
    return "\n".join(lines) + "\n"


def _dot_id(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _dot_label(*lines: str) -> str:
    """A quoted DOT label of several lines (each escaped; joined by DOT's \\n)."""
    return '"' + "\\n".join(x.replace("\\", "\\\\").replace('"', '\\"') for x in lines) + '"'


EDGE_STYLE = {"direct": "solid", "syscall": "bold", "indirect_candidate": "dashed", "ops": "bold",
              "assign": "bold", "param": "dotted", "fallback": "dashed"}
EDGE_COLOR = {"direct": "black", "syscall": "black", "indirect_candidate": "gray40", "ops": "blue",
              "assign": "darkgreen", "param": "purple", "fallback": "red"}


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
        lab = [e.kind] if e.kind != "direct" else []
        if labels and (e.src, e.dst) in labels:
            lab.append(labels[(e.src, e.dst)][:48])
        elif e.kind in ("ops", "assign") and e.evidence:
            lab.append(str(e.evidence[0][1])[:40])
        lines.append(f"  {_dot_id(e.src)} -> {_dot_id(e.dst)} [style={EDGE_STYLE[e.kind]}, color={EDGE_COLOR[e.kind]}"
                     + (f", label={_dot_label(*lab)}" if lab else "") + "];")
    lines.append("}")
    return "\n".join(lines) + "\n"


def paths_dot(cg: CallGraph, query: dict, paths: list[Path], extras: list[dict] | None = None) -> str:
    nodes: set[str] = set()
    edges: list[Edge] = []
    labels: dict[tuple[str, str], str] = {}
    for i, p in enumerate(paths):
        nodes.update(p.nodes)
        edges.extend(primary_edge(h) for h in p.hops)
        rep = extras[i].get("replay") if extras else None
        for j, h in enumerate(rep["hops"] if rep else []):
            if h["verdict"] == "confirmed" and h.get("state"):
                # "sock->ops = inet_dgram_ops (net/...): .sendmsg = ..." -> "sock->ops = inet_dgram_ops"
                labels.setdefault((p.nodes[j], p.nodes[j + 1]), h["state"].split(" (")[0].split(":")[0])
    hl = {}
    if paths:
        hl[paths[0].nodes[0]] = "style=filled, fillcolor=lightyellow"
        hl[paths[0].nodes[-1]] = "style=filled, fillcolor=lightyellow"
    return dot_graph(cg, nodes, edges, f"{query['from']} -> {query['to']} ({cg.meta.get('label')})", hl, labels)


# -- trees (callers / callees) -------------------------------------------------------------------
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


def tree_json(cg: CallGraph, items: list[TreeItem], direction: str, query: dict) -> str:
    out = []
    for it in items:
        file, line = cg.location(it.node)
        out.append({"depth": it.depth, "function": cg.name(it.node), "id": it.node, "file": file, "line": line,
                    "repeated": it.repeated, "edges": [edge_doc(e) for e in it.edges]})
    doc = {"schema_version": SCHEMA_VERSION, "kernel": kernel_doc(cg), "query": query,
           "direction": "callers" if direction == "in" else "callees", "items": out}
    return json.dumps(doc, indent=2) + "\n"


def tree_dot(cg: CallGraph, items: list[TreeItem], title: str) -> str:
    nodes = [it.node for it in items]
    edges = [e for it in items for e in it.edges[:1]]
    return dot_graph(cg, nodes, edges, title, {items[0].node: "style=filled, fillcolor=lightyellow"} if items else None)


# -- whole graph ---------------------------------------------------------------------------------
def graph_json(cg: CallGraph, nodes: set[str] | None) -> str:
    keep = nodes if nodes is not None else set(cg.nodes)
    ns = []
    for nid in sorted(keep):
        n = cg.nodes[nid]
        ns.append({"id": nid, "name": n[1], "file": n[2], "line": n[3], "external": n[4] == "x"})
    es = []
    for t in cg.all_edges():
        if t[0] in keep and t[1] in keep:
            e = Edge(t)
            d = {"from": e.src, "to": e.dst, "kind": e.kind, "site": e.site}
            if e.text:
                d["callee_expr"] = e.text
            if e.evidence:
                d["evidence"] = [step_doc(s) for s in e.evidence]
            if e.cond:
                d["if"] = e.cond
            es.append(d)
    doc = {"schema_version": SCHEMA_VERSION, "kernel": kernel_doc(cg), "nodes": ns, "edges": es}
    return json.dumps(doc, indent=1) + "\n"


def graph_dot(cg: CallGraph, nodes: set[str] | None, title: str) -> str:
    keep = nodes if nodes is not None else set(cg.nodes)
    edges = [Edge(t) for t in cg.all_edges() if t[0] in keep and t[1] in keep]
    return dot_graph(cg, keep, edges, title)


def graph_text(cg: CallGraph, nodes: set[str] | None) -> str:
    keep = nodes if nodes is not None else set(cg.nodes)
    lines = []
    for t in cg.all_edges():
        if t[0] in keep and t[1] in keep:
            lines.append(f"{t[0]} -> {t[1]}  [{t[2]}] {t[3]}:{t[4]}")
    return "\n".join(lines) + ("\n" if lines else "")


# -- diff ----------------------------------------------------------------------------------------
def _kv(cg: CallGraph) -> str:
    k = cg.meta
    v = k.get("version")
    return f"{k.get('label')}" + (f" ({v})" if v and v != k.get("label") else "")


def diff_doc(d, query: dict) -> dict:  # type: ignore[no-untyped-def]
    return {"schema_version": SCHEMA_VERSION, "from": kernel_doc(d.a), "to": kernel_doc(d.b), "query": query,
            "changed": d.changed, "changes": [c.doc() for c in d.changes],
            "paths": {"from": path_doc(d.a, 1, d.path_a) if d.path_a else None,
                      "to": path_doc(d.b, 1, d.path_b) if d.path_b else None},
            "from_path_on_to": d.a_in_b}


def diff_json(d, query: dict) -> str:  # type: ignore[no-untyped-def]
    return json.dumps(diff_doc(d, query), indent=2) + "\n"


def _chain(cg: CallGraph, p) -> str:  # type: ignore[no-untyped-def]
    return " → ".join(cg.name(n) for n in p.nodes) if p else "(no path)"


def diff_text(d, query: dict) -> str:  # type: ignore[no-untyped-def]
    sock = f", socket {query['socket']}" if query.get("socket") else ""
    lines = [f"{query['from']} → {query['to']}: {_kv(d.a)} → {_kv(d.b)}{sock}"]
    lines.append(f"  {_kv(d.a)}: {_chain(d.a, d.path_a)}")
    lines.append(f"  {_kv(d.b)}: {_chain(d.b, d.path_b)}")
    if d.a_in_b is not None:
        r = d.a_in_b
        if r.get("breaks_at"):
            b = r["breaks_at"]
            lines.append(f"  the {_kv(d.a)} path breaks in {_kv(d.b)} at hop {b['hop']}: {b['from']} → {b['to']}: {b['why']}")
        elif r["resolves"]:
            lines.append(f"  the {_kv(d.a)} path still exists in {_kv(d.b)} and resolves ({r['socket']})")
        elif r["resolves"] is None and r["exists"]:
            lines.append(f"  the {_kv(d.a)} path still exists in {_kv(d.b)}")
        else:
            lines.append(f"  the {_kv(d.a)} path exists in {_kv(d.b)} but does not resolve for {r['socket']}")
    if not d.changes:
        lines.append("no change")
    else:
        lines.append(f"{len(d.changes)} change{'s' if len(d.changes) != 1 else ''}:")
        w = max(len(c.kind) for c in d.changes)
        for c in d.changes:
            lines.append(f"  {c.kind.ljust(w)}  {c.detail}")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def diff_markdown(d, query: dict) -> str:  # type: ignore[no-untyped-def]
    sock = f" (socket `{query['socket']}`)" if query.get("socket") else ""
    lines = [f"### `{query['from']}` → `{query['to']}`: {_kv(d.a)} → {_kv(d.b)}{sock}", ""]
    lines.append(f"- **{_kv(d.a)}**: `{_chain(d.a, d.path_a)}`")
    lines.append(f"- **{_kv(d.b)}**: `{_chain(d.b, d.path_b)}`")
    if d.a_in_b is not None and d.a_in_b.get("breaks_at"):
        b = d.a_in_b["breaks_at"]
        lines.append(f"- the {_kv(d.a)} path breaks in {_kv(d.b)} at hop {b['hop']}: `{b['from']}` → `{b['to']}` — {_md(b['why'])}")
    lines.append("")
    if not d.changes:
        lines.append("No change.")
    else:
        lines.append("| change | function | detail |")
        lines.append("|---|---|---|")
        for c in d.changes:
            lines.append(f"| {c.kind} | `{c.function}` | {_md(c.detail)} |")
    return "\n".join(lines) + "\n"


def graph_diff_text(a: CallGraph, b: CallGraph, g: dict, markdown: bool = False) -> str:
    f, o = g["functions"], g["ops_entries"]
    head = f"call graph: {_kv(a)} → {_kv(b)}"
    rows = [("functions added", f["added"]), ("functions removed", f["removed"]),
            ("functions moved", [f"{m['id']}: {m['from']} → {m['to']}" for m in f["moved"]]),
            ("signatures changed", [f"{m['id']}: {m['from']} → {m['to']}" for m in f["signature_changed"]]),
            ("ops-table entries added", o["added"]), ("ops-table entries removed", o["removed"]),
            ("ops-table entries changed", o["changed"])]
    if markdown:
        lines = [f"### {head}", "", "| what | count | first ones |", "|---|---|---|"]
        for label, items in rows:
            lines.append(f"| {label} | {len(items)} | {_md(', '.join(f'`{x}`' for x in items[:5]))} |")
        return "\n".join(lines) + "\n"
    lines = [head, f"  functions {g['counts']['functions_a']} → {g['counts']['functions_b']}, "
                   f"edges {g['counts']['edges_a']} → {g['counts']['edges_b']}"]
    for label, items in rows:
        lines.append(f"{label}: {len(items)}")
        for x in items[:20]:
            lines.append(f"  {x}")
        if len(items) > 20:
            lines.append(f"  ... and {len(items) - 20} more (--format json lists all)")
    return "\n".join(lines) + "\n"
