"""What ``ksrcgraph diff`` found, as text, JSON and Markdown (for a pull-request comment).

In: the ``diff.PathDiff`` of each socket configuration compared (the two best paths, their changes
and notes, each path replayed on the other version) with the query document, or the whole-graph
summary of ``diff.graph_diff``. Out: strings: a section per configuration.
"""

from __future__ import annotations

from ..diff import Change, PathDiff, Survival
from ..graph import CallGraph
from ..query import Path
from .docs import SCHEMA_VERSION, dumps, kernel_doc, kernel_label, path_doc


# -- documents -----------------------------------------------------------------------------------------
def change_doc(c: Change) -> dict:
    d: dict = {"class": c.kind, "function": c.function, "detail": c.detail}
    if c.before is not None:
        d["from"] = c.before
    if c.after is not None:
        d["to"] = c.after
    return d


def survival_doc(s: Survival | None) -> dict | None:
    if s is None:
        return None
    return {"exists": s.exists, "resolves": s.resolves, "breaks_at": s.breaks_at, "socket": s.socket}


def section_doc(d: PathDiff) -> dict:
    """One socket configuration's comparison."""
    return {"socket": d.socket, "changed": d.changed, "changes": [change_doc(c) for c in d.changes],
            "notes": [change_doc(c) for c in d.notes],
            "paths": {"from": path_doc(d.a, 1, d.path_a) if d.path_a else None,
                      "to": path_doc(d.b, 1, d.path_b) if d.path_b else None},
            "no_path_because": {"from": d.seen.why_none[0] or None, "to": d.seen.why_none[1] or None},
            "from_path_on_to": survival_doc(d.a_in_b), "to_path_on_from": survival_doc(d.seen.b_in_a)}


def diff_doc(ds: list[PathDiff], query: dict) -> dict:
    return {"schema_version": SCHEMA_VERSION, "from": kernel_doc(ds[0].a), "to": kernel_doc(ds[0].b), "query": query,
            "changed": any(d.changed for d in ds), "sockets": [section_doc(d) for d in ds]}


def diff_json(ds: list[PathDiff], query: dict) -> str:
    return dumps(diff_doc(ds, query))


# -- text ------------------------------------------------------------------------------------------------
def _chain(cg: CallGraph, p: Path | None, why: str = "") -> str:
    return " → ".join(cg.name(n) for n in p.nodes) if p else f"(no path{': ' + why if why else ''})"


def _survival_line(d: PathDiff, s: Survival) -> str:
    a, b = kernel_label(d.a), kernel_label(d.b)
    if s.breaks_at:
        x = s.breaks_at
        return f"  the {a} path breaks in {b} at hop {x['hop']}: {x['from']} → {x['to']}: {x['why']}"
    if s.resolves:
        return f"  the {a} path still exists in {b} and resolves ({s.socket})"
    if s.resolves is None and s.exists:
        return f"  the {a} path still exists in {b}"
    return f"  the {a} path exists in {b} but does not resolve for {s.socket}"


def _listed(title: str, cs: list[Change]) -> list[str]:
    w = max(len(c.kind) for c in cs)
    return [title, *(f"  {c.kind.ljust(w)}  {c.detail}" for c in cs)]


def _section_text(d: PathDiff) -> list[str]:
    a, b = kernel_label(d.a), kernel_label(d.b)
    lines = [f"== socket {d.socket}"] if d.socket else []
    lines += [f"  {a}: {_chain(d.a, d.path_a, d.seen.why_none[0])}", f"  {b}: {_chain(d.b, d.path_b, d.seen.why_none[1])}"]
    if d.a_in_b is not None:
        lines.append(_survival_line(d, d.a_in_b))
    n = len(d.changes)
    lines += _listed(f"{n} change{'s' if n != 1 else ''}:", d.changes) if d.changes else ["no change"]
    if d.notes:
        lines += _listed("notes (not changes of the path):", d.notes)
    return lines


def diff_text(ds: list[PathDiff], query: dict) -> str:
    a, b = kernel_label(ds[0].a), kernel_label(ds[0].b)
    lines = [f"{query['from']} → {query['to']}: {a} → {b}"]
    if len(ds) > 1:
        lines.append(f"compared for {len(ds)} socket configurations (those realising the first path in either "
                     f"version): {', '.join(str(d.socket) for d in ds)}")
    for d in ds:
        lines += ["", *_section_text(d)] if len(ds) > 1 or d.socket else _section_text(d)
    return "\n".join(lines) + "\n"


# -- markdown --------------------------------------------------------------------------------------------
def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _section_markdown(d: PathDiff) -> list[str]:
    a, b = kernel_label(d.a), kernel_label(d.b)
    lines = [f"#### socket `{d.socket}`", ""] if d.socket else []
    lines += [f"- **{a}**: `{_chain(d.a, d.path_a, d.seen.why_none[0])}`",
              f"- **{b}**: `{_chain(d.b, d.path_b, d.seen.why_none[1])}`"]
    if d.a_in_b is not None and d.a_in_b.breaks_at:
        x = d.a_in_b.breaks_at
        lines.append(f"- the {a} path breaks in {b} at hop {x['hop']}: `{x['from']}` → `{x['to']}` — "
                     f"{_md(x['why'])}")
    lines.append("")
    if not d.changes:
        lines.append("No change.")
    else:
        lines += ["| change | function | detail |", "|---|---|---|"]
        lines.extend(f"| {c.kind} | `{c.function}` | {_md(c.detail)} |" for c in d.changes)
    if d.notes:
        lines += ["", "Notes (not changes of the path):", ""]
        lines.extend(f"- {c.kind}: `{c.function}` — {_md(c.detail)}" for c in d.notes)
    return lines


def diff_markdown(ds: list[PathDiff], query: dict) -> str:
    a, b = kernel_label(ds[0].a), kernel_label(ds[0].b)
    lines = [f"### `{query['from']}` → `{query['to']}`: {a} → {b}", ""]
    for d in ds:
        lines += [*_section_markdown(d), ""]
    return "\n".join(lines).rstrip("\n") + "\n"


# -- whole graph -----------------------------------------------------------------------------------------
def graph_diff_json(a: CallGraph, b: CallGraph, g: dict, changed: bool) -> str:
    return dumps({"schema_version": SCHEMA_VERSION, "from": kernel_doc(a), "to": kernel_doc(b), "changed": changed,
                  **g})


def _graph_rows(g: dict) -> list[tuple[str, list[str]]]:
    f, o = g["functions"], g["ops_entries"]
    return [("functions added", f["added"]), ("functions removed", f["removed"]),
            ("functions moved", [f"{m['id']}: {m['from']} → {m['to']}" for m in f["moved"]]),
            ("signatures changed", [f"{m['id']}: {m['from']} → {m['to']}" for m in f["signature_changed"]]),
            ("ops-table entries added", o["added"]), ("ops-table entries removed", o["removed"]),
            ("ops-table entries changed", o["changed"])]


def graph_diff_text(a: CallGraph, b: CallGraph, g: dict, markdown: bool = False) -> str:
    head = f"call graph: {kernel_label(a)} → {kernel_label(b)}"
    if markdown:
        lines = [f"### {head}", "", "| what | count | first ones |", "|---|---|---|"]
        for label, items in _graph_rows(g):
            lines.append(f"| {label} | {len(items)} | {_md(', '.join(f'`{x}`' for x in items[:5]))} |")
        return "\n".join(lines) + "\n"
    lines = [head, f"  functions {g['counts']['functions_a']} → {g['counts']['functions_b']}, "
                   f"edges {g['counts']['edges_a']} → {g['counts']['edges_b']}"]
    for label, items in _graph_rows(g):
        lines.append(f"{label}: {len(items)}")
        lines.extend(f"  {x}" for x in items[:20])
        if len(items) > 20:
            lines.append(f"  ... and {len(items) - 20} more (--format json lists all)")
    return "\n".join(lines) + "\n"
