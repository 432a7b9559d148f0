"""Stage 9b — diff: how a call path (or the whole graph) changed between two kernel versions.

In: two ``CallGraph``s (versions A and B) and a path query (with an optional socket). Out: a
``PathDiff`` — the best path in each version, aligned hop by hop, and every change classified:

 * ``added`` / ``removed``   — a hop only one version's path has;
 * ``renamed``               — the same role under another name (the hops around it match, and the
                               names are alike or the two call the same functions);
 * ``moved``                 — defined in another file (e.g. became a ``static inline`` in a header);
 * ``resolution changed``    — an indirect hop resolved through other tables or assignments, or a
                               direct call became indirect (or the reverse);
 * ``condition changed``     — the ``#if`` around the function or the call site changed;
 * ``signature changed``     — the function's parameters or return type changed;
 * ``path added`` / ``path removed`` — no path at all in one version.
A's path is also replayed on B: does it still exist and resolve, and where does it break.

``graph_diff`` summarises whole-graph changes: functions added, removed, moved, re-signed, and
ops-table entries (``table.field = function``) added, removed or changed.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from . import query
from .graph import CallGraph, Edge
from .refstack import paths as rpaths
from .report import primary_edge


@dataclass
class Change:
    kind: str
    function: str  # the hop's function (in B when it exists there)
    detail: str
    before: dict | None = None
    after: dict | None = None

    def doc(self) -> dict:
        d = {"class": self.kind, "function": self.function, "detail": self.detail}
        if self.before is not None:
            d["from"] = self.before
        if self.after is not None:
            d["to"] = self.after
        return d


@dataclass
class PathDiff:
    a: CallGraph
    b: CallGraph
    path_a: query.Path | None
    path_b: query.Path | None
    changes: list[Change] = field(default_factory=list)
    a_in_b: dict | None = None  # A's path replayed on B

    @property
    def changed(self) -> bool:
        return bool(self.changes)


def _norm_sig(sig: str, name: str = "") -> str:
    """A signature without storage words, spacing, or the function's own name (a rename is
    reported as such, not as a new signature)."""
    s = re.sub(r"\b(static|inline|extern|__always_inline|noinline|__inline__|__inline)\b", " ", sig)
    if name:
        s = re.sub(rf"\b{re.escape(name)}\s*\(", " FN(", s, count=1)
    return " ".join(s.replace("*", " * ").replace("(", " ( ").replace(")", " ) ").replace(",", " , ").split())


def _where(cg: CallGraph, nid: str) -> dict:
    n = cg.nodes.get(nid)
    if n is None:
        return {"id": nid}
    d = {"id": nid, "file": n[2], "line": n[3]}
    if len(n) > 5 and n[5]:
        d["signature"] = n[5]
    if len(n) > 6 and n[6]:
        d["if"] = n[6]
    return d


def _resolution(e: Edge) -> tuple[str, frozenset]:
    """What an edge's resolution says, without line numbers: its kind and the tables/assignments."""
    labels = frozenset((s[0], str(s[1])) for s in e.evidence if s[0] in ("ops", "assign", "arg", "param", "syscall"))
    return e.kind, labels


def _short(cg: CallGraph, e: Edge) -> str:
    labels = sorted({str(s[1]) for s in e.evidence if s[0] in ("ops", "assign", "arg", "param", "syscall")})
    text = ", ".join(labels[:3]) + (f", +{len(labels) - 3}" if len(labels) > 3 else "")
    return f"{e.kind}" + (f" via {text}" if text else "") + f" at {e.site}"


def _callees(cg: CallGraph, nid: str) -> set[str]:
    return {cg.name(x) for x in cg.out.get(nid, {})}


def _similar(a_cg: CallGraph, a: str, b_cg: CallGraph, b: str) -> str | None:
    """Why hop a (in A) and hop b (in B) look like one function renamed, or None."""
    na, nb = a_cg.name(a), b_cg.name(b)
    sa, sb = na.strip("_"), nb.strip("_")
    if sa == sb or sa in sb or sb in sa:
        return f"{na} → {nb}: the name differs only by prefix or suffix"
    ratio = difflib.SequenceMatcher(None, na, nb).ratio()
    ca, cb = _callees(a_cg, a), _callees(b_cg, b)
    jac = len(ca & cb) / len(ca | cb) if ca | cb else 0.0
    if ratio >= 0.7:
        return f"{na} → {nb}: similar names ({ratio:.0%})"
    if jac >= 0.5 and len(ca & cb) >= 2:
        return f"{na} → {nb}: calls the same functions ({len(ca & cb)} of {len(ca | cb)})"
    return None


def best_path(cg: CallGraph, src: str, dst: str, socket: str | None, via: list[str], avoid: list[str],
              max_depth: int) -> query.Path | None:
    try:
        s, t = cg.lookup(src), cg.lookup(dst)
        vias = [cg.lookup(v) for v in via]
        avoids = []
        for a in avoid:
            try:
                avoids.append(cg.lookup(a))
            except Exception:  # noqa: BLE001 - a function to avoid that does not exist is avoided
                pass
    except Exception:  # noqa: BLE001 - an endpoint missing in one version is a result: no path
        return None
    if socket:
        res = rpaths.socket_paths(cg, s, t, k=1, via=vias, avoid=avoids, max_depth=max_depth, socket=socket)
    else:
        paths = query.find_paths(cg, s, t, k=1, via=vias, avoid=avoids, max_depth=max_depth)
        return paths[0] if paths else None
    return res.paths[0] if res.paths else None


def diff_paths(a: CallGraph, b: CallGraph, src: str, dst: str, socket: str | None = None, via: list[str] | None = None,
               avoid: list[str] | None = None, max_depth: int = query.DEFAULT_MAX_DEPTH) -> PathDiff:
    pa = best_path(a, src, dst, socket, via or [], avoid or [], max_depth)
    pb = best_path(b, src, dst, socket, via or [], avoid or [], max_depth)
    out = PathDiff(a, b, pa, pb)
    if pa is None and pb is None:
        return out
    if pa is None or pb is None:
        p, cg, kind = (pb, b, "path added") if pa is None else (pa, a, "path removed")
        names = " → ".join(cg.name(n) for n in p.nodes)
        out.changes.append(Change(kind, cg.name(p.nodes[-1]), f"{kind.split()[1]}: {names}"))
        if pa is not None:
            out.a_in_b = _replay_in(a, pa, b, socket)
        return out
    out.a_in_b = _replay_in(a, pa, b, socket)
    names_a = [a.name(n) for n in pa.nodes]
    names_b = [b.name(n) for n in pb.nodes]
    sm = difflib.SequenceMatcher(None, names_a, names_b, autojunk=False)
    matched: list[tuple[int, int]] = []
    for op, i1, i2, j1, j2 in sm.get_opcodes():
        if op == "equal":
            matched.extend(zip(range(i1, i2), range(j1, j2)))
            continue
        left, right = list(range(i1, i2)), list(range(j1, j2))
        # pair renamed hops in order
        for i in list(left):
            for j in list(right):
                why = _similar(a, pa.nodes[i], b, pb.nodes[j])
                if why:
                    out.changes.append(Change("renamed", names_b[j], why, _where(a, pa.nodes[i]), _where(b, pb.nodes[j])))
                    left.remove(i)
                    right.remove(j)
                    matched.append((i, j))
                    break
        for i in left:
            out.changes.append(Change("removed", names_a[i], f"{names_a[i]} is no longer on the path "
                                      f"({_neighbours(names_a, i)})", _where(a, pa.nodes[i]), None))
        for j in right:
            out.changes.append(Change("added", names_b[j], f"{names_b[j]} is new on the path "
                                      f"({_neighbours(names_b, j)})", None, _where(b, pb.nodes[j])))
    matched.sort()
    pairs = dict(matched)
    for i, j in matched:
        na, nb = pa.nodes[i], pb.nodes[j]
        wa, wb = _where(a, na), _where(b, nb)
        name = names_b[j]
        if wa.get("file") != wb.get("file") and wa.get("file") and wb.get("file"):
            inline = " (now a static inline in a header)" if str(wb["file"]).endswith(".h") and \
                "i" in (b.nodes[nb][4] if nb in b.nodes else "") else ""
            out.changes.append(Change("moved", name, f"{name}: {wa['file']}:{wa['line']} → {wb['file']}:{wb['line']}{inline}",
                                      wa, wb))
        if wa.get("signature") and wb.get("signature") and \
                _norm_sig(wa["signature"], names_a[i]) != _norm_sig(wb["signature"], names_b[j]):
            out.changes.append(Change("signature changed", name, f"{wa['signature']}  →  {wb['signature']}", wa, wb))
        if wa.get("if", "") != wb.get("if", ""):
            out.changes.append(Change("condition changed", name, f"{name} is defined under "
                                      f"#if {wa.get('if') or '(none)'} → #if {wb.get('if') or '(none)'}", wa, wb))
        # the hop into this function, when the previous functions match too
        if i > 0 and j > 0 and pairs.get(i - 1) == j - 1:
            ea, eb = primary_edge(pa.hops[i - 1]), primary_edge(pb.hops[j - 1])
            ra, rb = _resolution(ea), _resolution(eb)
            if ra != rb:
                out.changes.append(Change("resolution changed", name, f"{names_b[j - 1]} → {name}: "
                                          f"{_short(a, ea)}  →  {_short(b, eb)}",
                                          {"kind": ea.kind, "site": ea.site}, {"kind": eb.kind, "site": eb.site}))
            if ea.cond != eb.cond:
                out.changes.append(Change("condition changed", name, f"the call {names_b[j - 1]} → {name} is under "
                                          f"#if {ea.cond or '(none)'} → #if {eb.cond or '(none)'}",
                                          {"site": ea.site, "if": ea.cond}, {"site": eb.site, "if": eb.cond}))
    return out


def _neighbours(names: list[str], i: int) -> str:
    before = names[i - 1] if i > 0 else "start"
    after = names[i + 1] if i + 1 < len(names) else "end"
    return f"between {before} and {after}"


def _replay_in(a: CallGraph, pa: query.Path, b: CallGraph, socket: str | None) -> dict:
    """A's path on B: the saved-path replay (``ksrcgraph replay``) of it."""
    from .report import path_doc

    doc = path_doc(a, 1, pa)
    if socket:
        doc["replay"] = {"socket": socket}
    res = rpaths.replay_saved(b, [doc], socket)[0]
    exists = all(h["verdict"] != "missing" for h in res["replay"]["hops"])
    return {"exists": exists, "resolves": res["replay"]["resolves"] if socket else None,
            "breaks_at": res["breaks_at"], "socket": res["replay"]["socket"] if socket else None}


# -- whole graph --------------------------------------------------------------------------------------
def graph_diff(a: CallGraph, b: CallGraph) -> dict:
    fa = {nid: n for nid, n in a.nodes.items() if n[4] != "x"}
    fb = {nid: n for nid, n in b.nodes.items() if n[4] != "x"}
    added = sorted(set(fb) - set(fa))
    removed = sorted(set(fa) - set(fb))
    moved, resigned = [], []
    for nid in sorted(set(fa) & set(fb)):
        x, y = fa[nid], fb[nid]
        if x[2] != y[2]:
            moved.append({"id": nid, "from": f"{x[2]}:{x[3]}", "to": f"{y[2]}:{y[3]}"})
        if len(x) > 5 and len(y) > 5 and x[5] and y[5] and _norm_sig(x[5]) != _norm_sig(y[5]):
            resigned.append({"id": nid, "from": x[5], "to": y[5]})
    ea, eb = a.ops_entries, b.ops_entries
    keys_a = {(t, f) for t, fs in ea.items() for f in fs}
    keys_b = {(t, f) for t, fs in eb.items() for f in fs}
    ops_added = sorted(f"{t}.{f} = {', '.join(eb[t][f])}" for t, f in keys_b - keys_a)
    ops_removed = sorted(f"{t}.{f} = {', '.join(ea[t][f])}" for t, f in keys_a - keys_b)
    ops_changed = sorted(f"{t}.{f}: {', '.join(ea[t][f])} → {', '.join(eb[t][f])}"
                         for t, f in keys_a & keys_b if sorted(ea[t][f]) != sorted(eb[t][f]))
    return {"functions": {"added": added, "removed": removed, "moved": moved, "signature_changed": resigned},
            "ops_entries": {"added": ops_added, "removed": ops_removed, "changed": ops_changed},
            "counts": {"functions_a": len(fa), "functions_b": len(fb), "edges_a": a.n_edges,
                       "edges_b": b.n_edges}}


def graph_changed(d: dict) -> bool:
    return any(d["functions"][k] for k in d["functions"]) or any(d["ops_entries"][k] for k in d["ops_entries"])
