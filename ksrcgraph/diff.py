"""Stage 9b — diff: how a call path (or the whole graph) changed between two kernel versions.

In: two ``CallGraph``s (versions A and B), the best path found in each (``query.Path`` or None) for
one socket configuration (or none), and what the reference stack says about them (``Replays``, found
by the caller: replaying needs the reference stack, a layer above this one) — the replay state of
every hop for that socket, and each path replayed on the other version (``Survival``). Out: a
``PathDiff`` — the two paths aligned hop by hop, and every difference classified. Changes:

 * ``added`` / ``removed``   — a hop only one version's path has;
 * ``renamed``               — the same role under another name: the old name is gone from B, the
                               new one absent from A, the hops around it match, and the names are
                               alike or the two call the same functions;
 * ``moved``                 — defined in another file (e.g. became a ``static inline`` in a header);
 * ``resolution changed``    — the socket's binding for an indirect hop changed (its replay state,
                               file:line aside), or a direct call became indirect (or the reverse);
                               without replay states, any change of the tables or assignments;
 * ``condition changed``     — the ``#if`` around the function or the call site changed;
 * ``signature changed``     — the function's parameters or return type changed;
 * ``path added`` / ``path removed`` — no path at all in one version.

Notes (``PathDiff.notes``: informational, not changes of the path):

 * ``another route``         — the paths part and meet again, and each version can take both routes
                               (for the socket): the search ranked the other one first;
 * ``other tables changed``  — an indirect hop's socket binding is the same, only other tables or
                               assignments listing the same function changed (other families').

``graph_diff`` summarises whole-graph changes: functions added, removed, moved, re-signed, and
ops-table entries (``table.field = function``, given by the caller) added, removed or changed.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass, field

from . import kdata
from .errors import SymbolError
from .graph import CallGraph
from .query import Path
from .rows import DIRECT_KINDS, Edge, primary_edge

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
    """A path replayed on the other version: does it still exist (every function and call), does it
    resolve for the socket (None without one), where does it break (hop, from, to, why); and the
    verdict of each of its hops there (direct, confirmed, contradicted, unmodelled, missing)."""

    exists: bool
    resolves: bool | None
    breaks_at: dict | None
    socket: str | None
    hops: tuple[str, ...] = field(default=(), compare=False)
    whys: tuple[str, ...] = field(default=(), compare=False)  # the state (or reason) of each hop's verdict

    def takes(self, lo: int, hi: int) -> bool:
        """Can the other version take hops lo..hi-1 of the path (for the socket: each one direct or
        confirmed; without one: each call still there)?"""
        ok = ("direct", "confirmed") if self.socket else ("direct", "confirmed", "unmodelled")
        return 0 <= lo <= hi <= len(self.hops) and all(v in ok for v in self.hops[lo:hi])

    def why(self, h: int) -> str:
        v = self.hops[h] if h < len(self.hops) else "missing"
        w = self.whys[h] if h < len(self.whys) else ""
        return f"{v}: {w}" if w else v


@dataclass(frozen=True)
class Replays:
    """What the reference stack says about the two paths, as plain data (the caller replays them):
    the socket configuration, the replay state of each hop of each path for it ("confirmed: sock->ops
    = inet_dgram_ops (net/ipv4/af_inet.c:1111): .sendmsg = inet_sendmsg"; None: not replayed), each
    path replayed on the other version, and why a version has no path (when it has none)."""

    socket: str | None = None
    states_a: list[str] | None = None
    states_b: list[str] | None = None
    a_in_b: Survival | None = None
    b_in_a: Survival | None = None
    why_none: tuple[str, str] = ("", "")


@dataclass
class PathDiff:
    a: CallGraph
    b: CallGraph
    path_a: Path | None
    path_b: Path | None
    changes: list[Change] = field(default_factory=list)
    seen: Replays = field(default_factory=Replays)
    notes: list[Change] = field(default_factory=list)  # informational: not changes of the path

    @property
    def changed(self) -> bool:
        return bool(self.changes)

    @property
    def socket(self) -> str | None:
        return self.seen.socket

    @property
    def a_in_b(self) -> Survival | None:  # A's path replayed on B
        return self.seen.a_in_b


def _norm_sig(sig: str, name: str = "") -> str:
    """A signature without storage words, spacing, or the function's own name (a rename is
    reported as such, not as a new signature)."""
    s = re.sub(r"\b(static|inline|extern|__always_inline|noinline|__inline__|__inline)\b", " ", sig)
    s = re.sub(r"\bunsigned\b(?!\s+(?:int|long|short|char)\b)", "unsigned int", s)  # the same type
    if name:
        s = re.sub(rf"\b{re.escape(name)}\s*\(", " FN(", s, count=1)
    return " ".join(s.replace("*", " * ").replace("(", " ( ").replace(")", " ) ").replace(",", " , ").split())


def _norm_cond(cond: str | None) -> str:
    """An #if condition without the conjuncts every kernel build satisfies (``__KERNEL__``)."""
    if not cond:
        return ""
    always = kdata.always_defined()
    parts = [p.strip() for p in cond.split("&&")]
    kept = [p for p in parts if p.strip("() ").replace("defined", "").strip("() ") not in always]
    return " && ".join(kept)


def _norm_state(state: str) -> str:
    """A replay state without line numbers (the binding, not where its table sits in the file), a
    table named by itself, not by the object holding it (6.9 moved the static udp_protocol into
    net_hotdata.udp_protocol: the same table)."""
    state = re.sub(r"(\S+\.[chS]):\d+", r"\1", state)
    return re.sub(r"\b\w+(?:\.\w+)*\.(\w+) \(", r"\1 (", state)


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


def _exists(cg: CallGraph, nid: str, name: str) -> bool:
    """Is the function (by its id, else by its name) defined in cg?"""
    n = cg.nodes.get(nid)
    if n is not None and not n.external:
        return True
    try:
        return not cg.nodes[cg.lookup(name)].external
    except SymbolError:  # unknown, or defined several times (static namesakes)
        return any(m.name == name and not m.external for m in cg.nodes.values())


_RESOLVING_STEPS = ("ops", "assign", "arg", "param", "syscall")


def _labels(e: Edge) -> set[str]:
    return {str(s[1]) for s in e.evidence if s[0] in _RESOLVING_STEPS}


def _resolution(e: Edge) -> tuple[str, frozenset]:
    """What an edge's resolution says, without line numbers: its kind and the tables/assignments."""
    return e.kind, frozenset((s[0], str(s[1])) for s in e.evidence if s[0] in _RESOLVING_STEPS)


def _few(labels: list[str]) -> str:
    return ", ".join(labels[:3]) + (f", +{len(labels) - 3}" if len(labels) > 3 else "")


def _short(e: Edge) -> str:
    text = _few(sorted(_labels(e)))
    return f"{e.kind}" + (f" via {text}" if text else "") + f" at {e.site}"


def _callees(cg: CallGraph, nid: str) -> set[str]:
    return {cg.name(x) for x in cg.out.get(nid, {})}


def _similar(a_cg: CallGraph, a: str, b_cg: CallGraph, b: str) -> str | None:
    """Why hop a (in A) and hop b (in B) look like one function renamed, or None: never when a
    still exists in B or b already existed in A."""
    na, nb = a_cg.name(a), b_cg.name(b)
    if _exists(b_cg, a, na) or _exists(a_cg, b, nb):
        return None
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
               seen: Replays | None = None) -> PathDiff:
    """The changes from path_a (the best path in A) to path_b (in B), and the notes; seen: what the
    reference stack says about them (without it: no notes, and any change of an indirect hop's
    tables is a change)."""
    out = PathDiff(a, b, path_a, path_b, seen=seen or Replays())
    if path_a is None and path_b is None:
        return out
    if path_a is None or path_b is None:
        out.changes.append(_path_gone_or_new(out))
        return out
    al = _Alignment(out)
    for i, j in al.matched:
        al.hop_changes(i, j)
    return out


def _path_gone_or_new(d: PathDiff) -> Change:
    p, cg, kind = (d.path_b, d.b, "path added") if d.path_a is None else (d.path_a, d.a, "path removed")
    assert p is not None
    names = " → ".join(cg.name(n) for n in p.nodes)
    why = d.seen.why_none[0 if d.path_a is None else 1]
    return Change(kind, cg.name(p.nodes[-1]), f"{kind.split()[1]}: {names}" + (f" ({why})" if why else ""))


def _state(states: list[str] | None, h: int) -> str | None:
    return states[h] if states is not None and 0 <= h < len(states) else None


def _tables_delta(ea: Edge, eb: Edge) -> list[str]:
    """What other tables or assignments changed between two edges into the same function."""
    la, lb = _labels(ea), _labels(eb)
    parts = []
    if lb - la:
        parts.append(f"now also {_few(sorted(lb - la))}")
    if la - lb:
        parts.append(f"no longer {_few(sorted(la - lb))}")
    if ea.kind != eb.kind:
        parts.append(f"the edge is {eb.kind} (was {ea.kind})")
    return parts


# A replay state binding a pointer to a set of stored functions (refstack's Model.describe):
# "dst.output ∈ {ip_mc_output, ip_output} set by rt->dst.output = ip_output (net/ipv4/route.c:15); ..."
_SET = re.compile(r"^(?P<head>.*?) ∈ \{(?P<members>[^}]*)\} set by (?P<by>.*)$")


def _hop_binding(state: str, callee: str) -> str:
    """What a replay state says about one hop, file:line aside: for a pointer bound to a set of
    stored functions, that the callee is in it and the stores that put it there (not the others)."""
    s = _norm_state(state)
    m = _SET.match(s)
    if m is None:
        return s
    return f"{m['head']} ∋ {callee}"  # which statement stores it (rth->u.dst.output, rt->dst.output) is no change


def _hop_shown(state: str, callee: str) -> str:
    """The hop's binding as a note shows it: for a set of stored functions, the stores of the callee."""
    s = _norm_state(state)
    m = _SET.match(s)
    if m is None:
        return s
    mine = [x for x in m["by"].split("; ") if re.search(rf"\b{re.escape(callee)}\b", x)]
    return f"{m['head']} ∋ {callee}" + (f" set by {'; '.join(mine)}" if mine else "")


def _members(state: str) -> set[str]:
    m = _SET.match(_norm_state(state))
    return set(m["members"].split(", ")) if m else set()


def _others(ea: Edge, eb: Edge, sa: str, sb: str) -> tuple[str, str]:
    """(kind, what) of the note for a call whose binding is the same: the other tables listing the
    function, or the other functions stored in the pointer, that changed."""
    parts = _tables_delta(ea, eb)
    ma, mb = _members(sa), _members(sb)
    if mb - ma:
        parts.append(f"the pointer may now also hold {_few(sorted(mb - ma))}")
    if ma - mb:
        parts.append(f"no longer {_few(sorted(ma - mb))}")
    kind = "other tables changed" if _resolution(ea) != _resolution(eb) else "other stores changed"
    return kind, "; ".join(parts) or "the evidence changed"


class _Alignment:
    """The two paths of a diff aligned by name: hops paired (equal or renamed); where the paths part,
    the hops in between classified — another route or another member of a pointer set (notes),
    renamed, added, removed — and recorded in the diff as they are found."""

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
                self._apart(i1, i2, j1, j2)
        self.matched.sort()
        self.pairs = dict(self.matched)

    def _apart(self, i1: int, i2: int, j1: int, j2: int) -> None:
        """Hops i1..i2-1 of A and j1..j2-1 of B, between matched hops (or an end of the paths)."""
        d, seen = self.d, self.d.seen
        lo_a, hi_a = max(i1 - 1, 0), min(i2, len(self.names_a) - 1)  # the calls from the hop before
        lo_b, hi_b = max(j1 - 1, 0), min(j2, len(self.names_b) - 1)  # to the hop after
        a_ok = seen.a_in_b is not None and seen.a_in_b.takes(lo_a, hi_a)
        b_ok = seen.b_in_a is not None and seen.b_in_a.takes(lo_b, hi_b)
        if a_ok and b_ok:
            seg_a, seg_b = " → ".join(self.names_a[lo_a:hi_a + 1]), " → ".join(self.names_b[lo_b:hi_b + 1])
            d.notes.append(Change("another route", self.names_b[min(j1, hi_b)], f"{seg_a}  /  {seg_b}: both "
                                  f"versions{self._for()} can take both routes; the search ranked the other first"))
            return
        if self._member(i1, i2, j1, j2):  # what else differs: the calls the other version cannot make
            self._untaken(lo_a, hi_a, lo_b, hi_b)
            return
        left, right = list(range(i1, i2)), list(range(j1, j2))
        self._renames(left, right)
        self._added_removed(left, right)

    def _for(self) -> str:
        return f" (for {self.d.seen.socket})" if self.d.seen.socket else ""

    def _member(self, i1: int, i2: int, j1: int, j2: int) -> bool:
        """caller → X in A, caller → Y in B, and each version can make both calls: another member of
        the same pointer set was chosen — a note, not a change."""
        seen, i, j = self.d.seen, i1, j1
        if i1 == i2 or j1 == j2 or i == 0 or j == 0 or seen.a_in_b is None or seen.b_in_a is None:
            return False
        if not (seen.a_in_b.takes(i - 1, i) and seen.b_in_a.takes(j - 1, j)):
            return False
        caller, x, y = self.names_b[j - 1], self.names_a[i], self.names_b[j]
        self.d.notes.append(Change("another member", y, f"{caller} → {x}  /  {caller} → {y}: both versions"
                                   f"{self._for()} can make both calls (another member of the same pointer set "
                                   f"was chosen)", _where(self.d.a, self.pa.nodes[i]), _where(self.d.b, self.pb.nodes[j])))
        return True

    def _renames(self, left: list[int], right: list[int]) -> None:
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

    def _added_removed(self, left: list[int], right: list[int]) -> None:
        d, na, nb = self.d, self.names_a, self.names_b
        for i in left:
            d.changes.append(Change("removed", na[i], f"{na[i]} is no longer on the path ({_neighbours(na, i)})",
                                    _where(d.a, self.pa.nodes[i]), None))
        for j in right:
            d.changes.append(Change("added", nb[j], f"{nb[j]} is new on the path ({_neighbours(nb, j)})", None,
                                    _where(d.b, self.pb.nodes[j])))

    def _untaken(self, lo_a: int, hi_a: int, lo_b: int, hi_b: int) -> None:
        """The calls of A's route the new version cannot make, and those of B's route the old one
        could not."""
        seen, na, nb = self.d.seen, self.names_a, self.names_b
        for h in range(lo_a, hi_a):
            if seen.a_in_b is not None and not seen.a_in_b.takes(h, h + 1):
                self.d.changes.append(Change("removed", na[h + 1], f"the call {na[h]} → {na[h + 1]} cannot be "
                                             f"made any more{self._for()}: {seen.a_in_b.why(h)}"))
        for h in range(lo_b, hi_b):
            if seen.b_in_a is not None and not seen.b_in_a.takes(h, h + 1):
                self.d.changes.append(Change("added", nb[h + 1], f"the call {nb[h]} → {nb[h + 1]} is new"
                                             f"{self._for()}: before, {seen.b_in_a.why(h)}"))

    def hop_changes(self, i: int, j: int) -> None:
        """Changes of the function at hop i of A / j of B, and of the call into it when the previous
        functions match too."""
        self.d.changes.extend(self._function_changes(i, j))
        if i > 0 and j > 0 and self.pairs.get(i - 1) == j - 1:
            self._call_changes(i, j)

    def _function_changes(self, i: int, j: int) -> list[Change]:
        d, nb = self.d, self.pb.nodes[j]
        wa, wb = _where(d.a, self.pa.nodes[i]), _where(d.b, nb)
        name = self.names_b[j]
        out = []
        if wa.get("file") != wb.get("file") and wa.get("file") and wb.get("file"):
            inline = " (now a static inline in a header)" if str(wb["file"]).endswith(".h") and \
                not str(wa["file"]).endswith(".h") and "i" in (d.b.nodes[nb].flags if nb in d.b.nodes else "") else ""
            out.append(Change("moved", name, f"{name}: {wa['file']}:{wa['line']} → {wb['file']}:{wb['line']}{inline}",
                              wa, wb))
        if wa.get("signature") and wb.get("signature") and \
                _norm_sig(wa["signature"], self.names_a[i]) != _norm_sig(wb["signature"], name):
            out.append(Change("signature changed", name, f"{wa['signature']}  →  {wb['signature']}", wa, wb))
        if _norm_cond(wa.get("if")) != _norm_cond(wb.get("if")):
            out.append(Change("condition changed", name, f"{name} is defined under "
                              f"#if {wa.get('if') or '(none)'} → #if {wb.get('if') or '(none)'}", wa, wb))
        return out

    def _call_changes(self, i: int, j: int) -> None:
        ea, eb = primary_edge(self.pa.hops[i - 1]), primary_edge(self.pb.hops[j - 1])
        name, caller = self.names_b[j], self.names_b[j - 1]
        self._resolution(i, j, ea, eb)
        if _norm_cond(ea.cond) != _norm_cond(eb.cond):
            self.d.changes.append(Change("condition changed", name, f"the call {caller} → {name} is under "
                                         f"#if {ea.cond or '(none)'} → #if {eb.cond or '(none)'}",
                                         {"site": ea.site, "if": ea.cond}, {"site": eb.site, "if": eb.cond}))

    def _resolution(self, i: int, j: int, ea: Edge, eb: Edge) -> None:
        """A change when the socket's binding for the call changed (or, without replay states, its
        tables), or a direct call became indirect; a note when only other tables or stores changed."""
        d = self.d
        sa, sb = _state(d.seen.states_a, i - 1), _state(d.seen.states_b, j - 1)
        if _resolution(ea) == _resolution(eb) and (sa is None or sb is None or _norm_state(sa) == _norm_state(sb)):
            return
        hop, name = f"{self.names_b[j - 1]} → {self.names_b[j]}", self.names_b[j]
        before, after = {"kind": ea.kind, "site": ea.site}, {"kind": eb.kind, "site": eb.site}
        if sa is None or sb is None or (ea.kind in DIRECT_KINDS) != (eb.kind in DIRECT_KINDS):
            d.changes.append(Change("resolution changed", name, f"{hop}: {_short(ea)}  →  {_short(eb)}", before, after))
            return
        old = re.sub(rf"\b{re.escape(self.names_a[i])}\b", name, _hop_binding(sa, self.names_a[i]))
        new = _hop_binding(sb, name)
        if old != new:
            d.changes.append(Change("resolution changed", name, f"{hop}: {sa}  →  {sb}", {**before, "state": sa},
                                    {**after, "state": sb}))
            return
        kind, what = _others(ea, eb, sa, sb)
        shown = sb if _SET.match(sb) is None else _hop_shown(sb, name)
        d.notes.append(Change(kind, name, f"{hop}: {what}; the binding{self._for()} is unchanged ({shown})",
                              {**before, "state": sa}, {**after, "state": sb}))


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
