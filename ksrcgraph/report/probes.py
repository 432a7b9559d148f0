"""``probes``: where to attach along a path, per kernel version — as text, JSON and a bpftrace script.

In: per version its ``CallGraph``, the first path (``query.Path`` or None, with why there is none) and,
when given, the built kernel's ``symbols.SymbolTable``. Out: ``version_doc`` — the path's hops, each
with ``attach.Attach.doc()`` (prediction yes/no/maybe, reason, symbols, traceable, source: binary or
predicted) and, for a hop that is not attachable, the nearest hop of the same path that is
(``instead``) — and ``probes_doc``, the versions side by side: the hops in one order (``attach.merge_hops``),
a cell per hop and version, the hops attachable in every version, and what to attach to instead of each
of the others (the nearest hop attachable in every version). Plain documents: no graph stays in memory.
"""

from __future__ import annotations

from .. import attach
from ..graph import CallGraph
from ..query import Path
from ..symbols import SymbolTable
from .docs import SCHEMA_VERSION, dumps, kernel_doc, kernel_label


# -- documents -------------------------------------------------------------------------------------------
def version_doc(spec: str, cg: CallGraph, path: Path | None, why: str, table: SymbolTable | None) -> dict:
    hops = []
    for nid in path.nodes if path is not None else []:
        file, line = cg.location(nid)
        hops.append({"function": cg.name(nid), "id": nid, "file": file, "line": line,
                     **attach.of_node(cg, nid, table).doc()})
    ok = [h["prediction"] == "yes" for h in hops]
    for i, h in enumerate(hops):
        j = None if ok[i] else attach.nearest(ok, i)
        h["instead"] = hops[j]["function"] if j is not None else None
    return {"spec": spec, "kernel": kernel_doc(cg), "title": kernel_label(cg), "path": hops if path else None,
            "why": why, "symbols": _symbols_doc(table)}


def _symbols_doc(table: SymbolTable | None) -> dict | None:
    if table is None:
        return None
    return {"read": table.label, "kinds": list(table.kinds), "symbols": len(table),
            "traceability": table.traceable is not None}


def probes_doc(query: dict, versions: list[dict]) -> dict:
    """The versions side by side (see the module docstring)."""
    with_path = [v for v in versions if v["path"]]
    names = attach.merge_hops([[h["function"] for h in v["path"]] for v in with_path])
    cells = {v["spec"]: {h["function"]: h for h in v["path"] or []} for v in versions}
    everywhere = [n for n in names if with_path and all(n in cells[v["spec"]] and cells[v["spec"]][n]["prediction"] == "yes"
                                                        for v in with_path)]
    ok = [n in everywhere for n in names]
    instead = []
    for i, n in enumerate(names):
        if not ok[i]:
            j = attach.nearest(ok, i)
            instead.append({"hop": n, "use": names[j] if j is not None else None,
                            "side": None if j is None else "caller" if j < i else "callee",
                            "why": {v["spec"]: _cell_why(cells[v["spec"]].get(n)) for v in with_path}})
    hops = [{"function": n, "versions": {v["spec"]: cells[v["spec"]].get(n) for v in versions},
             "everywhere": n in everywhere} for n in names]
    return {"schema_version": SCHEMA_VERSION, "query": query, "versions": versions, "hops": hops,
            "attachable_everywhere": everywhere, "instead": instead}


def _cell_why(cell: dict | None) -> str:
    if cell is None:
        return "not on this version's path"
    return f"{cell['prediction']}: {cell['reason']}"


# -- text ------------------------------------------------------------------------------------------------
def _cell_text(cell: dict | None) -> str:
    if cell is None:
        return "-"
    mark = "" if cell["source"] == "binary" else "?"
    syms = ",".join(cell["symbols"][:2]) + (",…" if len(cell["symbols"]) > 2 else "")
    return f"{cell['prediction']}{mark}" + (f" {syms}" if syms and cell["prediction"] != "no" else "")


def _grid(rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]


def probes_text(doc: dict) -> str:
    q = doc["query"]
    head = f"{q['from']} → {q['to']}" + (f", socket {q['socket']}" if q.get("socket") else "")
    out = [f"{head}: where to attach, per kernel"]
    for v in doc["versions"]:
        src = (f"symbols from {v['symbols']['read']} ({v['symbols']['symbols']} text symbols)" if v["symbols"]
               else "predicted from source (no --symbols)")
        out.append(f"  {v['spec']:8} {v['title']}: " + (src if v["path"] else f"no path: {v['why']}"))
    if not doc["hops"]:
        out.append("no version has a path")
        return "\n".join(out) + "\n"
    specs = [v["spec"] for v in doc["versions"]]
    rows = [["hop", *specs]] + [[h["function"], *(_cell_text(h["versions"][s]) for s in specs)] for h in doc["hops"]]
    out += ["", *_grid(rows)]
    if any(v["symbols"] is None and v["path"] for v in doc["versions"]):
        out.append("(? predicted from source; give --symbols VERSION=System.map for the binary's word)")
    out += ["", "Attachable in every version: " + (", ".join(doc["attachable_everywhere"]) or "none")]
    if doc["instead"]:
        out.append("Instead of the others:")
        for x in doc["instead"]:
            use = f"attach to {x['use']} (the nearest on the {x['side']} side)" if x["use"] else "no hop of the path is attachable everywhere"
            out.append(f"  {x['hop']}: {use}")
    out += ["", "Why:"]
    for h in doc["hops"]:
        for s in specs:
            cell = h["versions"][s]
            if cell is not None:
                extra = f"; attach to {cell['instead']} instead" if cell.get("instead") else ""
                out.append(f"  {h['function']} [{s}] {cell['prediction']}: {cell['reason']}{extra}")
    return "\n".join(out) + "\n"


def probes_json(doc: dict) -> str:
    return dumps(doc)


# -- bpftrace ---------------------------------------------------------------------------------------------
def _probe_name(symbols: list[str]) -> str:
    """One attach point for the symbol names a hop has across versions: the name itself when they
    agree, else a wildcard on their common stem (``udp_send_skb*`` for udp_send_skb and
    udp_send_skb.isra.0)."""
    names = sorted(set(symbols))
    if len(names) == 1:
        n = names[0]
        return f'kprobe:"{n}"' if "." in n else f"kprobe:{n}"
    stem = names[0].split(".")[0]
    for n in names:
        while not n.startswith(stem):
            stem = stem[:-1]
    return f"kprobe:{stem}*"


def probes_bpftrace(doc: dict) -> str:
    """A bpftrace script: a kprobe on each hop attachable in every version, printing the hop (indented
    by its place on the path) with the thread and command, as the path runs."""
    q = doc["query"]
    specs = [v["spec"] for v in doc["versions"] if v["path"]]
    out = ["#!/usr/bin/env bpftrace",
           f"// ksrcgraph probes {q['from']} {q['to']}" + (f" --socket {q['socket']}" if q.get("socket") else ""),
           f"// kernels: {', '.join(specs) or 'none'}; hops attachable in every one of them"
           " (symbols from --symbols, else predicted from source: check with bpftrace -l)", ""]
    order = [h["function"] for h in doc["hops"]]
    chosen = [h for h in doc["hops"] if h["everywhere"]]
    if not chosen:
        out.append("// no hop of the path is attachable in every version")
        return "\n".join(out) + "\n"
    for h in chosen:
        syms = [s for c in h["versions"].values() if c for s in c["symbols"][:1]] or [h["function"]]
        depth = order.index(h["function"])
        label = ("  " * depth + h["function"]).replace("\\", "\\\\").replace('"', '\\"')
        out += [_probe_name(syms), "{", f'  printf("%-7d %-16s {label}\\n", tid, comm);', "}", ""]
    return "\n".join(out)
