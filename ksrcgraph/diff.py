"""Stage 9b — diff: how a call path (or the whole graph) changed between two kernel versions.

In: two ``CallGraph``s (versions A and B), the best path found in each (``query.Path`` or None) and
what became of A's path on B (``Survival``, found by the caller: replaying it needs the reference
stack, a layer above this one). Out: a ``PathDiff`` — the two paths aligned hop by hop, and every
change classified:

 * ``added`` / ``removed``   — a hop only one version's path has;
 * ``renamed``               — the same role under another name (the hops around it match, and the
                               names are alike or the two call the same functions);
 * ``moved``                 — defined in another file (e.g. became a ``static inline`` in a header);
 * ``resolution changed``    — an indirect hop resolved through other tables or assignments, or a
                               direct call became indirect (or the reverse);
 * ``condition changed``     — the ``#if`` around the function or the call site changed;
 * ``signature changed``     — the function's parameters or return type changed;
 * ``path added`` / ``path removed`` — no path at all in one version.

``graph_diff`` summarises whole-graph changes: functions added, removed, moved, re-signed, and
ops-table entries (``table.field = function``, given by the caller) added, removed or changed.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from .graph import CallGraph
from .query import Path
from .rows import Edge, primary_edge

OpsEntries = dict[str, dict[str, list[str]]]  # table -> field -> functions


@dataclass
class Change:
    kind: str
    function: str  # the hop's function (in B when it exists there)
    detail: str
    before: dict | None = None
    after: dict | None = None


@dataclass(frozen=True)
class Survival:
    """A's path replayed on B: does it still exist (every function and call), does it resolve for
    the socket (None without one), and where does it break (hop, from, to, why)."""

    exists: bool
    resolves: bool | None
    breaks_at: dict | None
    socket: str | None


@dataclass
class PathDiff:
    a: CallGraph
    b: CallGraph
    path_a: Path | None
    path_b: Path | None
    changes: list[Change] = field(default_factory=list)
    a_in_b: Survival | None = None  # A's path replayed on B

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
    d = {"id": nid, "file": n.file, "line": n.line}
    if n.signature:
        d["signature"] = n.signature
    if n.cond:
        d["if"] = n.cond
    return d


_RESOLVING_STEPS = ("ops", "assign", "arg", "param", "syscall")


def _resolution(e: Edge) -> tuple[str, frozenset]:
    """What an edge's resolution says, without line numbers: its kind and the tables/assignments."""
    return e.kind, frozenset((s[0], str(s[1])) for s in e.evidence if s[0] in _RESOLVING_STEPS)


def _short(e: Edge) -> str:
    labels = sorted({str(s[1]) for s in e.evidence if s[0] in _RESOLVING_STEPS})
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


def _neighbours(names: list[str], i: int) -> str:
    before = names[i - 1] if i > 0 else "start"
    after = names[i + 1] if i + 1 < len(names) else "end"
    return f"between {before} and {after}"


# -- path diff ---------------------------------------------------------------------------------------
def diff_paths(a: CallGraph, b: CallGraph, path_a: Path | None, path_b: Path | None,
               a_in_b: Survival | None = None) -> PathDiff:
    """The changes from path_a (the best path in A) to path_b (in B); a_in_b: path_a replayed on B."""
    out = PathDiff(a, b, path_a, path_b, a_in_b=a_in_b)
    if path_a is None and path_b is None:
        return out
    if path_a is None or path_b is None:
        out.changes.append(_path_gone_or_new(out))
        return out
    al = _Alignment(out)
    for i, j in al.matched:
        out.changes.extend(al.hop_changes(i, j))
    return out


def _path_gone_or_new(d: PathDiff) -> Change:
    p, cg, kind = (d.path_b, d.b, "path added") if d.path_a is None else (d.path_a, d.a, "path removed")
    assert p is not None
    names = " → ".join(cg.name(n) for n in p.nodes)
    return Change(kind, cg.name(p.nodes[-1]), f"{kind.split()[1]}: {names}")


class _Alignment:
    """The two paths of a diff aligned by name: hops paired (equal or renamed), the others added or
    removed (recorded in the diff as they are found)."""

    def __init__(self, d: PathDiff) -> None:
        assert d.path_a is not None and d.path_b is not None
        self.d, self.pa, self.pb = d, d.path_a, d.path_b
        self.names_a = [d.a.name(n) for n in self.pa.nodes]
        self.names_b = [d.b.name(n) for n in self.pb.nodes]
        self.matched: list[tuple[int, int]] = []
        sm = difflib.SequenceMatcher(None, self.names_a, self.names_b, autojunk=False)
        for op, i1, i2, j1, j2 in sm.get_opcodes():
            if op == "equal":
                self.matched.extend(zip(range(i1, i2), range(j1, j2)))
            else:
                self._pair_unequal(list(range(i1, i2)), list(range(j1, j2)))
        self.matched.sort()
        self.pairs = dict(self.matched)

    def _pair_unequal(self, left: list[int], right: list[int]) -> None:
        """Renamed hops paired in order; what is left was removed (A) or added (B)."""
        d, pa, pb = self.d, self.pa, self.pb
        for i in list(left):
            for j in list(right):
                why = _similar(d.a, pa.nodes[i], d.b, pb.nodes[j])
                if why:
                    d.changes.append(Change("renamed", self.names_b[j], why, _where(d.a, pa.nodes[i]),
                                            _where(d.b, pb.nodes[j])))
                    left.remove(i)
                    right.remove(j)
                    self.matched.append((i, j))
                    break
        for i in left:
            d.changes.append(Change("removed", self.names_a[i], f"{self.names_a[i]} is no longer on the path "
                                    f"({_neighbours(self.names_a, i)})", _where(d.a, pa.nodes[i]), None))
        for j in right:
            d.changes.append(Change("added", self.names_b[j], f"{self.names_b[j]} is new on the path "
                                    f"({_neighbours(self.names_b, j)})", None, _where(d.b, pb.nodes[j])))

    def hop_changes(self, i: int, j: int) -> list[Change]:
        """Changes of the function at hop i of A / j of B, and of the call into it when the previous
        functions match too."""
        out = self._function_changes(i, j)
        if i > 0 and j > 0 and self.pairs.get(i - 1) == j - 1:
            out.extend(self._call_changes(i, j))
        return out

    def _function_changes(self, i: int, j: int) -> list[Change]:
        d, nb = self.d, self.pb.nodes[j]
        wa, wb = _where(d.a, self.pa.nodes[i]), _where(d.b, nb)
        name = self.names_b[j]
        out = []
        if wa.get("file") != wb.get("file") and wa.get("file") and wb.get("file"):
            inline = " (now a static inline in a header)" if str(wb["file"]).endswith(".h") and \
                "i" in (d.b.nodes[nb].flags if nb in d.b.nodes else "") else ""
            out.append(Change("moved", name, f"{name}: {wa['file']}:{wa['line']} → {wb['file']}:{wb['line']}{inline}",
                              wa, wb))
        if wa.get("signature") and wb.get("signature") and \
                _norm_sig(wa["signature"], self.names_a[i]) != _norm_sig(wb["signature"], name):
            out.append(Change("signature changed", name, f"{wa['signature']}  →  {wb['signature']}", wa, wb))
        if wa.get("if", "") != wb.get("if", ""):
            out.append(Change("condition changed", name, f"{name} is defined under "
                              f"#if {wa.get('if') or '(none)'} → #if {wb.get('if') or '(none)'}", wa, wb))
        return out

    def _call_changes(self, i: int, j: int) -> list[Change]:
        ea, eb = primary_edge(self.pa.hops[i - 1]), primary_edge(self.pb.hops[j - 1])
        name, caller = self.names_b[j], self.names_b[j - 1]
        out = []
        if _resolution(ea) != _resolution(eb):
            out.append(Change("resolution changed", name, f"{caller} → {name}: {_short(ea)}  →  {_short(eb)}",
                              {"kind": ea.kind, "site": ea.site}, {"kind": eb.kind, "site": eb.site}))
        if ea.cond != eb.cond:
            out.append(Change("condition changed", name, f"the call {caller} → {name} is under "
                              f"#if {ea.cond or '(none)'} → #if {eb.cond or '(none)'}",
                              {"site": ea.site, "if": ea.cond}, {"site": eb.site, "if": eb.cond}))
        return out


# -- whole graph --------------------------------------------------------------------------------------
def graph_diff(a: CallGraph, b: CallGraph, ops_a: OpsEntries, ops_b: OpsEntries) -> dict:
    """Whole-graph changes from A to B (a JSON-ready document); ops_a / ops_b: each version's
    ops-table entries (table -> field -> functions)."""
    return {"functions": _function_changes(a, b), "ops_entries": _ops_changes(ops_a, ops_b),
            "counts": {"functions_a": len(_defined(a)), "functions_b": len(_defined(b)), "edges_a": a.n_edges,
                       "edges_b": b.n_edges}}


def _defined(cg: CallGraph) -> dict:
    return {nid: n for nid, n in cg.nodes.items() if not n.external}


def _function_changes(a: CallGraph, b: CallGraph) -> dict:
    fa, fb = _defined(a), _defined(b)
    moved, resigned = [], []
    for nid in sorted(set(fa) & set(fb)):
        x, y = fa[nid], fb[nid]
        if x.file != y.file:
            moved.append({"id": nid, "from": f"{x.file}:{x.line}", "to": f"{y.file}:{y.line}"})
        if x.signature and y.signature and _norm_sig(x.signature) != _norm_sig(y.signature):
            resigned.append({"id": nid, "from": x.signature, "to": y.signature})
    return {"added": sorted(set(fb) - set(fa)), "removed": sorted(set(fa) - set(fb)), "moved": moved,
            "signature_changed": resigned}


def _ops_changes(ea: OpsEntries, eb: OpsEntries) -> dict:
    keys_a = {(t, f) for t, fs in ea.items() for f in fs}
    keys_b = {(t, f) for t, fs in eb.items() for f in fs}
    return {"added": sorted(f"{t}.{f} = {', '.join(eb[t][f])}" for t, f in keys_b - keys_a),
            "removed": sorted(f"{t}.{f} = {', '.join(ea[t][f])}" for t, f in keys_a - keys_b),
            "changed": sorted(f"{t}.{f}: {', '.join(ea[t][f])} → {', '.join(eb[t][f])}"
                              for t, f in keys_a & keys_b if sorted(ea[t][f]) != sorted(eb[t][f]))}


def graph_changed(d: dict) -> bool:
    return any(d["functions"][k] for k in d["functions"]) or any(d["ops_entries"][k] for k in d["ops_entries"])
