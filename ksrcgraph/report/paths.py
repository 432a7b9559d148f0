"""Call paths and their replays on the reference stack, as text and JSON.

In: ``query.Path`` lists (or a ``refstack.socket_paths.SocketPaths``) with the query document that found
them; replays of saved paths (``refstack.socket_paths.replay_saved``). Out: strings — each hop with its
file:line and, for an indirect hop, the table or assignment that resolves it and the replay's verdict.
"""

from __future__ import annotations

from ..graph import CallGraph
from ..query import Path
from ..refstack.socket_paths import SocketPaths
from ..rows import Edge, primary_edge
from .docs import SCHEMA_VERSION, dumps, kernel_doc, path_doc

_MARK = {"confirmed": "✓", "contradicted": "✗", "unmodelled": "?", "missing": "✗"}
_SHOWN_STEPS = ("ops", "assign", "arg", "param", "macro", "syscall", "candidate", "fallback")


def _tables(e: Edge, callee_file: str | None = None) -> list[str]:
    """Short 'how it resolved' phrases: the tables or assignments that put the callee there
    (those in the callee's own file first)."""
    steps = sorted(e.evidence, key=lambda s: (s[2] != callee_file, s[2] or "", s[3] or 0)) if callee_file else e.evidence
    out = []
    for s in steps:
        what, label, file, line = s[0], s[1], s[2], s[3]
        at = f" ({file}:{line})" if file else ""
        if what == "store":
            out.append(f"stored by {label}{at}")
        elif what in _SHOWN_STEPS:
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
    if e.kind in ("assign", "fallback"):
        return f"{e.text} → {callee}: {shown}  [call at {e.site}]"
    if e.kind == "param":
        return f"{callee} {shown}  [call at {e.site}]"
    if e.kind == "syscall":
        return f"{callee} is a system call entry ({shown})  [call at {e.site}]"
    return f"call at {e.site}"


# -- paths ---------------------------------------------------------------------------------------------
def paths_json(cg: CallGraph, query: dict, paths: list[Path], extras: list[dict] | None = None,
               more: dict | None = None) -> str:
    doc: dict = {"schema_version": SCHEMA_VERSION, "kernel": kernel_doc(cg), "query": query,
                 "paths": [path_doc(cg, i + 1, p, extras[i] if extras else None) for i, p in enumerate(paths)]}
    if more:
        doc.update(more)
    return dumps(doc)


def socket_paths_json(cg: CallGraph, query: dict, res: SocketPaths) -> str:
    """``path --format json``: every path with its replay and the configurations that realise it."""
    return paths_json(cg, query, res.paths, res.extras(), res.summary())


def socket_paths_text(cg: CallGraph, query: dict, res: SocketPaths) -> str:
    """``path``: grouped by the configurations that realise them, unless the query names a socket."""
    return paths_text(cg, query, res.paths, res.extras(), None if query.get("socket") else res.groups())


def _head(cg: CallGraph, query: dict) -> list[str]:
    k = cg.meta
    lines = [f"{query['from']} → {query['to']}  (kernel {k.get('label')}"
             f"{' ' + k['version'] if k.get('version') and k.get('version') != k.get('label') else ''}, "
             f"scope {','.join(k.get('scope', []))})"]
    if query.get("via"):
        lines.append(f"via {', '.join(query['via'])}")
    if query.get("avoid"):
        lines.append(f"avoiding {', '.join(query['avoid'])}")
    if query.get("socket"):
        lines.append(f"socket {query['socket']}: only paths it takes, replayed on the reference stack")
    return lines


def paths_text(cg: CallGraph, query: dict, paths: list[Path], extras: list[dict] | None = None,
               groups: list[tuple[str, list[int]]] | None = None) -> str:
    lines = _head(cg, query)
    if not paths:
        lines.append("no path found" + (f" within {query.get('max_depth')} calls" if query.get("max_depth") else "")
                     + (f" that a {query['socket']} socket takes" if query.get("socket") else ""))
        return "\n".join(lines) + "\n"
    for label, idxs in groups or [("", list(range(len(paths))))]:
        if groups is not None:
            lines.append("")
            lines.append(f"== realised by {label}" if label else "== realised by no socket configuration the model knows")
        for i in idxs:
            lines.extend(_path_lines(cg, i, paths[i], extras[i] if extras else None))
    return "\n".join(lines) + "\n"


def _path_lines(cg: CallGraph, i: int, p: Path, extra: dict | None) -> list[str]:
    kinds = ", ".join(f"{n} {kd}" for kd, n in sorted(p.kinds().items(), key=lambda x: -x[1]))
    rep = extra.get("replay") if extra else None
    status = ""
    if rep is not None:
        status = f"; replay {rep['socket']}: " + ("resolves" if rep["resolves"] else "does not resolve")
    lines = ["", f"[{i + 1}] {p.length} calls ({kinds}{status})"]
    width = max(len(cg.name(n)) + j for j, n in enumerate(p.nodes)) + 26
    for j in range(len(p.nodes)):
        lines.extend(_hop_lines(cg, p, j, width, rep["hops"][j - 1] if rep is not None and j else None))
    return lines


def _hop_lines(cg: CallGraph, p: Path, j: int, width: int, verdict: dict | None) -> list[str]:
    """The function at hop j of path p; below it, how the call into it resolves and the replay's
    verdict on it."""
    nid = p.nodes[j]
    file, line = cg.location(nid)
    where = f"{file}:{line}" if file else "(not defined in scope)"
    label = (" " * (j - 1) + "└ " if j else "") + cg.name(nid)
    if j == 0:
        return [f"  {label.ljust(width)} {where}"]
    edges = p.hops[j - 1]
    e = primary_edge(edges)
    label += "" if e.kind == "direct" else f" [{e.kind}]"
    lines = [f"  {label.ljust(width)} {where}"]
    pad = "  " + " " * (j + 3)
    if e.kind != "direct":
        lines.append(pad + explain(e, cg.name(nid), file))
        for other in edges:
            if other is not e and other.kind != "direct" and other.site == e.site:
                lines.append(pad + "also: " + explain(other, cg.name(nid), file))
    v = verdict["verdict"] if verdict is not None else "direct"
    if verdict is not None and v != "direct" and (e.kind != "direct" or v != "confirmed"):
        lines.append(pad + f"{_MARK.get(v, '')} {v}" + (f": {verdict['state']}" if verdict.get("state") else ""))
    return lines


# -- replays of saved paths ------------------------------------------------------------------------------
def replay_json(cg: CallGraph, source: str, results: list[dict]) -> str:
    return dumps({"schema_version": SCHEMA_VERSION, "kernel": kernel_doc(cg), "source": source, "paths": results})


def replay_text(cg: CallGraph, source: str, results: list[dict]) -> str:
    k = cg.meta
    lines = [f"replaying {source} on kernel {k.get('label')}"
             f"{' ' + k['version'] if k.get('version') and k.get('version') != k.get('label') else ''}"]
    for r in results:
        lines.extend(_replay_lines(r))
    return "\n".join(lines) + "\n"


def _replay_lines(r: dict) -> list[str]:
    rep = r["replay"]
    verdict = "resolves" if rep["resolves"] else "does not resolve"
    lines = ["", f"[{r['rank']}] {' → '.join(x for x in r['functions'] if x)}",
             f"    socket {rep['socket']}: {verdict}"]
    for j, h in enumerate(rep["hops"]):
        if h["verdict"] == "direct":
            continue
        lines.append(f"    {_MARK.get(h['verdict'], ' ')} {r['functions'][j]} → {r['functions'][j + 1]}: "
                     f"{h['verdict']}" + (f" ({h['state']})" if h.get("state") else ""))
    if r.get("breaks_at"):
        b = r["breaks_at"]
        lines.append(f"    breaks at hop {b['hop']}: {b['from']} → {b['to']}: {b['why']}")
    return lines
