"""Many kernel versions at once: what ``index`` did per version, and ``matrix``, one path over the
versions — as text, JSON (sorted keys), Markdown (a CI summary) and a self-contained HTML page.

In: ``index``'s run document (plain data); for ``matrix``, per version its ``CallGraph``, the best path
(``query.Path`` or None) with the replay state of each hop, and the ``diff.PathDiff`` from the version
before. Out: ``row_doc`` / ``matrix_doc`` — plain documents, so no graph needs to stay in memory — and
strings rendered from them.
"""

from __future__ import annotations

import html
import json

from .. import attach
from ..diff import PathDiff
from ..graph import CallGraph
from ..query import Path
from ..rows import DIRECT_KINDS, primary_edge
from .changes import change_doc, survival_doc
from .docs import SCHEMA_VERSION, kernel_doc


def _dumps(doc: dict) -> str:
    return json.dumps(doc, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


# -- index -------------------------------------------------------------------------------------------------
def index_json(doc: dict) -> str:
    return _dumps({"schema_version": SCHEMA_VERSION, **doc})


def _grid(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]
    return ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in [header, *rows]]


def index_text(doc: dict) -> str:
    rows = [[r["spec"], r.get("version") or "?", str(r["files"]), str(r["parsed"]), str(r["reused"]),
             f"{r['parse_seconds'] or 0:.1f}", ("linked " if r["linked"] else "cached ") + f"{r['link_seconds']:.1f}",
             str(r["functions"]), str(r["edges"])] for r in doc["versions"]]
    lines = _grid(["kernel", "version", "files", "parsed", "known", "parse s", "link s", "functions", "edges"], rows)
    t = doc["total"]
    lines.append(f"{t['versions']} version{'s' if t['versions'] != 1 else ''}, scope {','.join(doc['scope'])}: {t['files']} files, "
                 f"{t['distinct_contents']} distinct contents; {t['parsed']} parsed in this run; {t['seconds']:.1f} s")
    return "\n".join(lines) + "\n"


# -- matrix: documents ----------------------------------------------------------------------------------
def _verdict(state: str | None) -> str | None:
    return state.split(":", 1)[0] if state else None


def hop_docs(cg: CallGraph, p: Path, states: list[str] | None) -> list[dict]:
    """The functions of a path: name, file:line, the kind of the call into it, the replay's verdict
    (and state, for an indirect hop) on that call, and whether it can be attached to (as source
    predicts it: attach.of_node)."""
    out = []
    for j, nid in enumerate(p.nodes):
        file, line = cg.location(nid)
        a = attach.of_node(cg, nid)
        hop: dict = {"function": cg.name(nid), "file": file, "line": line, "kind": None, "verdict": None,
                     "attach": {"prediction": a.verdict, "symbols": list(a.symbols)}}
        if j > 0:
            hop["kind"] = primary_edge(p.hops[j - 1]).kind
            state = states[j - 1] if states is not None and j - 1 < len(states) else None
            hop["verdict"] = _verdict(state)
            if state and state != hop["verdict"]:
                hop["state"] = state
        out.append(hop)
    return out


def row_doc(spec: str, cg: CallGraph, p: Path | None, states: list[str] | None, exists: bool, resolves: bool,
            why: str, d: PathDiff | None) -> dict:
    """One version's row: does a path exist, does one resolve (p: the best one that does, for the
    socket; without a socket, the best path, which does not), its hops, and what changed from the
    previous version (d; None for the first)."""
    row: dict = {"spec": spec, "kernel": kernel_doc(cg), "exists": exists, "resolves": resolves,
                 "path": None, "no_path_because": None if resolves else (why or "no path"),
                 "changes": None, "notes": None, "previous_path_here": None}
    if p is not None:
        row["path"] = {"length": p.length, "cost": p.cost, "kinds": dict(sorted(p.kinds().items())),
                       "hops": hop_docs(cg, p, states)}
    if d is not None:
        row["changes"] = [change_doc(c) for c in d.changes]
        row["notes"] = [change_doc(c) for c in d.notes]
        row["previous_path_here"] = survival_doc(d.a_in_b)
    return row


def matrix_doc(query: dict, socket: str | None, socket_from: str | None, rows: list[dict]) -> dict:
    """socket: the configuration every row is replayed for (None: no configuration realises a path
    in any version); socket_from: the version it was chosen from, when --socket did not name it."""
    return {"schema_version": SCHEMA_VERSION, "query": query, "socket": socket, "socket_chosen_from": socket_from,
            "all_resolve": all(r["resolves"] for r in rows), "rows": rows}


def matrix_json(doc: dict) -> str:
    return _dumps(doc)


# -- matrix: text ---------------------------------------------------------------------------------------
def _label(row: dict) -> str:
    k = row["kernel"]
    v = k.get("version")
    name = row["spec"]
    return name + (f" ({v})" if v and v != name else "")


def _yes(v: bool | None) -> str:
    return "—" if v is None else "yes" if v else "no"


def _summary(row: dict) -> str:
    """What changed from the previous version, in a few words: class and function of each change."""
    if row["changes"] is None:
        return "(first)"
    if not row["changes"]:
        return "none" + (f" ({len(row['notes'])} note{'s' if len(row['notes']) != 1 else ''})" if row["notes"] else "")
    return "; ".join(f"{c['class']} {c['function']}" for c in row["changes"])


def _hop_mark(h: dict) -> str:
    if h["kind"] is None or h["kind"] in DIRECT_KINDS:
        return ""
    return f" [{h['kind']}{', ' + h['verdict'] if h['verdict'] and h['verdict'] != 'confirmed' else ''}]"


def _title(doc: dict) -> str:
    q = doc["query"]
    head = f"{q['from']} → {q['to']}"
    if q.get("via"):
        head += f" via {', '.join(q['via'])}"
    if doc["socket"]:
        chosen = f", the configuration realising the first path in {doc['socket_chosen_from']}" \
            if doc.get("socket_chosen_from") else ""
        head += f"  (socket {doc['socket']}{chosen})"
    else:
        head += "  (no socket configuration realises a path in any version)"
    return head


def _calls(row: dict) -> str:
    return str(row["path"]["length"]) if row["path"] else "—"


def matrix_text(doc: dict) -> str:
    rows = doc["rows"]
    table = [[_label(r), _yes(r["exists"]), _yes(r["resolves"]), _calls(r), _summary(r)] for r in rows]
    lines = [_title(doc), "", *_grid(["kernel", "path", "resolves", "calls", "changes from the previous version"], table)]
    before: dict | None = None
    for r in rows:
        lines += ["", f"== {_label(r)}"]
        if r["path"] is None:
            lines.append(f"  no resolving path: {r['no_path_because']}")
        elif before is not None and _names(before) == _names(r):
            lines.append(f"  the same functions as {_label(before)}")
        else:
            hops = r["path"]["hops"]
            w = max(len(h["function"]) + len(_hop_mark(h)) for h in hops)
            lines.extend(f"  {(h['function'] + _hop_mark(h)).ljust(w)}  {h['file']}:{h['line']}" for h in hops)
        if r["changes"]:
            width = max(len(c["class"]) for c in r["changes"])
            lines.append("  changes:")
            lines.extend(f"    {c['class'].ljust(width)}  {c['detail']}" for c in r["changes"])
        if r["notes"]:
            lines.append("  notes (not changes of the path):")
            lines.extend(f"    {c['class']}  {c['detail']}" for c in r["notes"])
        before = r
    return "\n".join(lines) + "\n"


def _names(row: dict) -> list[str] | None:
    return [h["function"] for h in row["path"]["hops"]] if row["path"] else None


# -- matrix: markdown -----------------------------------------------------------------------------------
def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _mark(v: bool) -> str:
    return "✅" if v else "❌"


def _md_summary(row: dict) -> str:
    if row["changes"] is None:
        return "—"
    if not row["changes"]:
        return "no change"
    return "; ".join(f"{c['class']} `{c['function']}`" for c in row["changes"])


def matrix_markdown(doc: dict) -> str:
    rows = doc["rows"]
    q = doc["query"]
    lines = [f"### `{q['from']}` → `{q['to']}` over {len(rows)} kernels"
             + (f" (socket `{doc['socket']}`)" if doc["socket"] else ""), "",
             "| kernel | path | resolves | calls | changes from the previous version |", "|---|---|---|---|---|"]
    lines.extend(f"| {_md(_label(r))} | {_mark(r['exists'])} | {_mark(r['resolves'])} | {_calls(r)} | "
                 f"{_md(_md_summary(r))} |" for r in rows)
    for r in rows:
        lines += ["", f"<details><summary>{html.escape(_label(r))}</summary>", ""]
        if r["path"] is None:
            lines.append(f"No resolving path: {_md(r['no_path_because'])}")
        else:
            lines.append("`" + " → ".join(h["function"] for h in r["path"]["hops"]) + "`")
        if r["changes"]:
            lines.append("")
            lines.extend(f"- {c['class']}: {_md(c['detail'])}" for c in r["changes"])
        lines += ["", "</details>"]
    return "\n".join(lines) + "\n"


# -- matrix: html -----------------------------------------------------------------------------------------
_CSS = ("body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}"
        "td,th{border:1px solid #bbb;padding:.3em .6em;vertical-align:top;text-align:left}"
        "th{background:#eee}.yes{color:#070}.no{color:#b00}ol{margin:0;padding-left:1.6em}"
        "code{font-size:90%}.where{color:#666;font-size:85%}.kind{color:#05a;font-size:85%}")


def _cell_bool(v: bool) -> str:
    return f"<td class=\"{'yes' if v else 'no'}\">{'yes' if v else 'no'}</td>"


def _cell_hops(r: dict) -> str:
    if r["path"] is None:
        return f"<td>{html.escape(r['no_path_because'] or '')}</td>"
    items = []
    for h in r["path"]["hops"]:
        kind = f" <span class=\"kind\">{html.escape(h['kind'])}</span>" if h["kind"] and h["kind"] not in DIRECT_KINDS \
            else ""
        title = f" title=\"{html.escape(h['state'])}\"" if h.get("state") else ""
        items.append(f"<li{title}><code>{html.escape(h['function'])}</code>{kind} "
                     f"<span class=\"where\">{html.escape(str(h['file']))}:{h['line']}</span></li>")
    return "<td><ol>" + "".join(items) + "</ol></td>"


def _cell_changes(r: dict) -> str:
    if r["changes"] is None:
        return "<td>—</td>"
    if not r["changes"]:
        return "<td>no change</td>"
    items = "".join(f"<li><b>{html.escape(c['class'])}</b> <code>{html.escape(c['function'])}</code>: "
                    f"{html.escape(c['detail'])}</li>" for c in r["changes"])
    return f"<td><ul>{items}</ul></td>"


def matrix_html(doc: dict) -> str:
    title = html.escape(_title(doc))
    rows = "".join(f"<tr><th>{html.escape(_label(r))}</th>{_cell_bool(r['exists'])}{_cell_bool(r['resolves'])}"
                   f"{_cell_hops(r)}{_cell_changes(r)}</tr>\n" for r in doc["rows"])
    return (f"<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{title}</title>"
            f"<style>{_CSS}</style></head><body>\n<h1>{title}</h1>\n<table>\n<tr><th>kernel</th><th>path</th>"
            f"<th>resolves</th><th>hops</th><th>changes from the previous version</th></tr>\n{rows}</table>\n"
            "</body></html>\n")
