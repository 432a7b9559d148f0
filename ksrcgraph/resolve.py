"""Stage 6b — resolve: the call graph's edges, from the value flow of functions.

In: a ``link.Program``. Out: a ``LinkedGraph`` — ``rows.Node`` and ``rows.Edge`` rows, extra lookup
names, counts, and the ``flows.Flows`` view the edges were made from (the reference stack's tables
read it; ``graph.pack`` packs the rest).

Each call site becomes edges — ``direct`` (a named function), ``syscall`` (an entry made by
SYSCALL_DEFINEn, or a call through one of its alias names), ``indirect_candidate`` (named by
INDIRECT_CALL_*), ``ops``/``assign`` (the values of the slot the callee expression denotes, typed by
``Program.type_of``: see ``flows``), ``param`` (a function passed to a called parameter: the edge goes
from the caller that passes it), ``fallback`` (receiver type unknown: values of every field of that
name, when they are few). Calls through macros are expanded. Sites left unresolved are counted, by
reason.
"""

from __future__ import annotations

from collections import defaultdict
from typing import NamedTuple

from . import flows, kdata, precision, resolve_cleanup
from .facts import Call
from .flows import MAX_EVIDENCE, Flows, short, slot_name
from .link import Program, dead, parse_args, syscall_base
from .rows import EDGE_KINDS, KINDS, Edge, Node

FALLBACK_LIMIT = 24  # more candidates than this for a field name alone: left unresolved
LINKER_VERSION = 3


class LinkedGraph(NamedTuple):
    nodes: list[Node]  # functions defined in scope (by id), then externals (by name)
    edges: list[Edge]  # sorted by (src, dst, kind, file, line)
    aliases: dict[str, list[str]]  # extra lookup name -> node ids
    stats: dict
    flows: Flows  # the value flow the edges come from


class _Sites:
    """Step 3: every call site of the program, turned into edges (or counted as unresolved)."""

    def __init__(self, prog: Program, fl: Flows) -> None:
        self.p = prog
        self.fl = fl
        # (src, dst, kind, file, line) -> [text, evidence, cond, slot, cold, store_cold, needs, lits, sock,
        # case_of]
        self.edges: dict[tuple, list] = {}
        self.externals: set[str] = set()
        self.stats: dict = defaultdict(int)
        self.unresolved: dict[str, int] = defaultdict(int)
        self.unresolved_samples: dict[str, list] = defaultdict(list)
        self._macro_cache: dict[str, list] = {}
        self.check = precision.SignatureCheck(prog)  # pointer edges whose target cannot fit the call
        self.site = Call(0, 0, ("v", ""), "", "", "", (), None, None)  # the call site being resolved
        self.fi = 0  # its file index
        # how rare the branch of each store of a function pointer is, by (file, line)
        self.store_cold = {(ff.path, a.line): a.cold for ff in prog.facts for a in ff.assigns if a.cold}

    def add_edge(self, src: str, dst: str, kind: str, path: str, line: int, text: str, evidence: list, cond: str,
                 slot: str = "") -> bool:
        if EDGE_KINDS[kind].pointer and not self.check.keep(src, dst, kind, self.site):
            return False
        key = (src, dst, kind, path, line)
        ev = self.edges.get(key)
        store_cold = self._value_cold(evidence)
        if ev is None:
            self.edges[key] = [text, list(evidence[:MAX_EVIDENCE]), cond, slot, self.site.cold, store_cold,
                               self.site.needs, self.site.lits, self.site.sock, self.site.case_of]
        else:
            ev[5] = min(ev[5], store_cold)
            for s in evidence:
                if s not in ev[1] and len(ev[1]) < MAX_EVIDENCE:
                    ev[1].append(s)
        return True

    def _value_cold(self, evidence: list) -> int:
        """How rare the stores that put the called function into the pointer are: the least rare
        of them (0 when one is on a main line, or when the value was not stored by an assignment)."""
        colds = [self.store_cold.get((s[2], s[3]), 0) for s in evidence if s[0] == "assign"]
        return min(colds) if colds else 0

    def _values_edges(self, fid: str, slot: tuple, path: str, line: int, text: str, cond: str) -> int:
        vals = self.fl.values(slot)
        if not vals:
            return 0
        name = slot_name(slot)
        kept = 0
        for target, ev in vals.items():
            if target == fid and slot in self.fl.saved:  # a wrapper calling itself through what it replaced
                self.check.dropped["saved_self"] += 1
                continue
            kind = "ops" if ev[-1][0] == "ops" else "assign"
            kept += self.add_edge(fid, target, kind, path, line, text, ev, cond, name)
        return kept

    def _site_unresolved(self, reason: str, path: str, line: int, text: str) -> None:
        self.unresolved[reason] += 1
        if len(self.unresolved_samples[reason]) < 20:
            self.unresolved_samples[reason].append(f"{path}:{line} {text}")

    def _fallback(self, fid: str, fname: str, path: str, line: int, text: str, cond: str) -> int:
        targets: dict[str, list] = {}
        for slot in self.fl.field_slots(fname):
            for t, ev in self.fl.values(slot).items():
                targets.setdefault(t, list(ev[:2]))
        if not targets:
            self._site_unresolved("no type, no function stored in a field of that name", path, line, text)
            return 0
        targets = self.check.compatible(targets, self.site, self.fi)
        if not targets:
            self._site_unresolved("no type, no function of a fitting signature in a field of that name", path,
                                  line, text)
            return 0
        if len(targets) > FALLBACK_LIMIT:
            self._site_unresolved(f"no type, more than {FALLBACK_LIMIT} functions stored in .{fname}", path, line, text)
            return 0
        note = ("fallback", f"receiver type unknown: any function stored in a field .{fname}", None, 0, "")
        for t, ev in targets.items():
            self.add_edge(fid, t, "fallback", path, line, text, [note, *ev], cond)
        return len(targets)

    def expand_macro(self, name: str, depth: int = 0, seen: frozenset = frozenset()) -> list:
        """[(function id, evidence step)] of the functions a macro's body calls (recursively)."""
        got = self._macro_cache.get(name)
        if got is not None:
            return got
        out: list = []
        if depth > 4 or name in seen:
            return out
        for m, path in self.p.macros.get(name, ()):
            params = set(m.params or ())
            step = ("macro", f"via macro {name}", path, m.line, m.cond)
            for callee, _ in m.calls:
                if callee in params or callee == name:
                    continue
                if callee in self.p.funcs or (depth == 0 and callee in self.p.protos):
                    # defined; or declared out of scope and named by this macro itself (mutex_lock ->
                    # mutex_lock_nested), not by a macro it uses (likely -> ftrace_likely_update)
                    out.append((callee, step))
                elif callee in self.p.macros:
                    out.extend(self.expand_macro(callee, depth + 1, seen | {name}))
        dedup = list(dict.fromkeys(out))
        self._macro_cache[name] = dedup
        return dedup

    def resolve_sites(self) -> None:
        p = self.p
        st = self.stats
        for fi, ff in enumerate(p.facts):
            ids = p.fn_ids[fi]
            path = ff.path
            for c in ff.calls:
                fid = ids[c.caller]
                if fid is None or dead(c.cond):
                    continue
                st["call_sites"] += 1
                self.site, self.fi = c, fi
                callee = c.callee
                if resolve_cleanup.is_cleanup(c):  # constructor / destructor of a cleanup.h class
                    resolve_cleanup.resolve_site(self, fi, fid, c, path)
                    continue
                if c.wrapper:
                    pslot = self.fl.slot_of(callee, fi, c.caller, fid)
                    for cand in c.candidates:
                        target = p.function_for(fi, cand)
                        if target is None:
                            target = cand
                            self.externals.add(cand)
                        self.add_edge(fid, target, "indirect_candidate", path, c.line, c.text,
                                      [("candidate", f"{c.wrapper}({c.text}, ..., {cand}, ...)", path, c.line, c.cond)],
                                      c.cond, slot_name(pslot) if pslot else "")
                if callee[0] == "v" and not c.wrapper:
                    self._named_site(fi, fid, c, path)
                else:
                    self._pointer_site(fi, fid, c, path)

    def _named_site(self, fi: int, fid: str, c, path: str) -> None:  # type: ignore[no-untyped-def]
        p = self.p
        st = self.stats
        name = c.callee[1]
        lk = p.local_kind(fi, c.caller, name)
        if lk is not None:
            st["indirect_sites"] += 1
            if lk[0] == "P":
                self._through_param(fid, ("P", fid, lk[1]), path, c.line, name, c.cond)
                return
            n = self._values_edges(fid, ("L", fid, name), path, c.line, name, c.cond)
            self._count_resolved(n, "assign", "local variable without a known function", path, c.line, name)
            return
        target = p.function_for(fi, name)
        kind = "direct"
        evidence: list = []
        if target is None:
            base = syscall_base(name)
            entry = kdata.syscall_entries()[0] + (base or "")
            if base is not None and entry in p.funcs:
                target, kind = entry, "syscall"
        if target is not None:
            d = p.funcs[target].primary
            if d.definer and kind == "direct":
                kind = "syscall"
            if kind == "syscall":
                evidence = [("syscall", f"{d.definer or 'entry'} {target}", d.file, d.line, d.cond)]
            st["direct_sites"] += 1
            self.add_edge(fid, target, kind, path, c.line, name, evidence, c.cond)
            self._param_edges(fi, fid, target, c, path)
            return
        g = p.global_type(fi, name)
        if g is not None and p.struct_of(g[0]) == "fn":
            st["indirect_sites"] += 1
            gid = p.global_id(fi, name)
            n = self._values_edges(fid, ("G", gid), path, c.line, name, c.cond)
            self._count_resolved(n, "assign", "global function pointer without a known function", path, c.line, name)
            return
        if name in p.macros:
            st["macro_sites"] += 1
            for target, step in self.expand_macro(name):
                self._macro_edge(fid, target, path, c, [step])
            if name in p.protos:  # a function under the configurations that do not define the macro
                self._macro_edge(fid, name, path, c, [])
            self._param_edges(fi, fid, "macro:" + name, c, path)
            return
        st["external_sites"] += 1
        self.externals.add(name)
        self.add_edge(fid, name, "direct", path, c.line, name, [], c.cond)

    def _macro_edge(self, fid: str, target: str, path: str, c, evidence: list) -> None:  # type: ignore[no-untyped-def]
        if target not in self.p.funcs:
            self.externals.add(target)
        self.add_edge(fid, target, "direct", path, c.line, c.callee[1], evidence, c.cond)

    def _count_resolved(self, n: int, kind: str, reason: str, path: str, line: int, text: str) -> None:
        if n:
            self.stats[f"resolved_{kind}"] += 1
            self.stats["resolved_targets"] += n
        else:
            self._site_unresolved(reason, path, line, text)

    def _pointer_site(self, fi: int, fid: str, c, path: str) -> None:  # type: ignore[no-untyped-def]
        st = self.stats
        st["indirect_sites"] += 1
        slot = self.fl.read_slot(c.callee, fi, c.caller, fid)
        text = c.text or str(c.callee)
        if slot is None:
            if c.wrapper and c.candidates:
                st["resolved_indirect_candidate"] += 1
                st["resolved_targets"] += len(c.candidates)
                return
            self._site_unresolved("callee expression not understood", path, c.line, text)
            return
        if slot[0] == "P":
            self._through_param(fid, slot, path, c.line, text, c.cond)
            return
        if slot[0] == "F?":
            n = self._fallback(fid, slot[1], path, c.line, text, c.cond)
            if n:
                st["resolved_fallback"] += 1
                st["resolved_targets"] += n
            elif c.wrapper and c.candidates:
                st["resolved_indirect_candidate"] += 1
                st["resolved_targets"] += len(c.candidates)
            return
        n = self._values_edges(fid, slot, path, c.line, text, c.cond)
        if n:
            vals = self.fl.values(slot)
            kinds = {("ops" if ev[-1][0] == "ops" else "assign") for ev in vals.values()}
            st["resolved_ops" if "ops" in kinds else "resolved_assign"] += 1
            st["resolved_targets"] += n
        elif c.wrapper and c.candidates:
            st["resolved_indirect_candidate"] += 1
            st["resolved_targets"] += len(c.candidates)
        else:
            what = f"{slot[1]}.{slot[2]}" if slot[0] == "F" else slot[-1]
            self._site_unresolved("typed, but no function stored there in scope", path, c.line, f"{text} ({what})")

    def _through_param(self, fid: str, slot: tuple, path: str, line: int, text: str, cond: str) -> None:
        """A call through one of the function's own parameters: edges to every function its callers
        pass there, marked ``through_param`` so that path search takes the caller's ``param`` edge
        instead (a path ip_rcv → NF_HOOK → ip_local_deliver_finish would mix two callers)."""
        self.stats["resolved_param_call"] += 1
        vals = self.fl.values(slot)
        if not vals:
            return
        pname = self.fl.param_name(slot[1], slot[2])
        for target, ev in vals.items():
            note = ("through_param", f"called through parameter {pname}; the value comes from a caller", None, 0, "")
            self.add_edge(fid, target, "param", path, line, text, [note, *ev[:2]], cond)

    def _param_edges(self, fi: int, fid: str, target: str, c, path: str) -> None:  # type: ignore[no-untyped-def]
        """Edges from the caller to the functions it passes to target's called parameters."""
        ks = self.fl.called_params(target)
        if not ks:
            return
        args = parse_args(c)
        for k in ks:
            if k >= len(args):
                break
            file, line = self.fl.called_at(target, k)
            step = ("param", f"passed as {self.fl.param_name(target, k)} to {short(target)}, which calls it", file, line, "")
            for kind, obj in self.fl.sources(args[k], fi, c.caller, fid):
                if kind == "fn":
                    self.add_edge(fid, obj, "param", path, c.line, f"{short(target)}(..., {obj.split('::')[-1]}, ...)",  # type: ignore[union-attr]
                                  [step], c.cond)
                elif kind == "slot" and obj is not None and obj[0] == "L":  # type: ignore[index]
                    for t, ev in self.fl.values(obj).items():  # type: ignore[arg-type]
                        self.add_edge(fid, t, "param", path, c.line, f"{short(target)}(..., {obj[2]}, ...)",  # type: ignore[index]
                                      [step, *ev[:2]], c.cond)

def _nodes(prog: Program, externals: set[str]) -> list[Node]:
    nodes = []
    for fid in sorted(prog.funcs):
        info = prog.funcs[fid]
        d = info.primary
        nodes.append(Node(fid, info.name, d.file, d.line, "i" if d.inline else "", d.signature, d.cond))
    for name in sorted(externals - set(prog.funcs)):
        nodes.append(Node(name, name, None, 0, "x", "", ""))
    return nodes


def _edges(found: dict[tuple, list]) -> list[Edge]:
    return [Edge(src, dst, kind, path, line, text, tuple(tuple(s) for s in ev), cond, slot, *rest)
            for (src, dst, kind, path, line), (text, ev, cond, slot, *rest) in sorted(found.items())]


def _aliases(prog: Program) -> dict[str, list[str]]:
    """System call entries under their other names: ``__x64_sys_sendto`` and ``sendto`` for
    ``sys_sendto`` (``compat_sys_*`` under the compat prefixes; data/syscall_aliases.tsv)."""
    aliases: dict[str, list[str]] = defaultdict(list)
    entries = kdata.syscall_entries()
    for fid, info in prog.funcs.items():
        name = info.name
        for entry in entries:
            if name.startswith(entry) and len(name) > len(entry):
                base = name[len(entry) :]
                for pre in kdata.syscall_aliases_of(entry):
                    aliases[pre + base].append(fid)
                if entry == entries[0] or (entries[0] + base) not in prog.funcs:
                    aliases[base].append(fid)
    return {k: sorted(set(v)) for k, v in sorted(aliases.items())}


def _stats(prog: Program, sites: _Sites, nodes: list[Node], edges: list[Edge]) -> dict:
    st = dict(sites.stats)
    st["functions"] = len(prog.funcs)
    st["externals"] = len(nodes) - len(prog.funcs)
    st["edges"] = len(edges)
    st["edges_by_kind"] = {k: sum(1 for e in edges if e.kind == k) for k in KINDS}
    st["unresolved"] = dict(sites.unresolved)
    st["dropped"] = dict(sorted(sites.check.dropped.items()))  # pointer edges that cannot happen, by reason
    st["unresolved_samples"] = dict(sites.unresolved_samples)
    st["files"] = len(prog.facts)
    st["bytes"] = sum(ff.size for ff in prog.facts)
    st["files_with_errors"] = sum(1 for ff in prog.facts if ff.error_count)
    st["error_nodes"] = sum(ff.error_count for ff in prog.facts)
    st["error_bytes"] = sum(ff.error_bytes for ff in prog.facts)
    st["slots_with_values"] = sites.fl.filled()
    return st


def build(prog: Program) -> LinkedGraph:
    """The value flow of prog, then its call sites as edges."""
    fl = flows.build(prog)
    sites = _Sites(prog, fl)
    sites.resolve_sites()
    nodes = _nodes(prog, sites.externals)
    edges = _edges(sites.edges)
    return LinkedGraph(nodes, edges, _aliases(prog), _stats(prog, sites, nodes, edges), fl)
