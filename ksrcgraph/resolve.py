"""Stage 6b — resolve: value flow of functions into fields, variables and parameters, and the
call graph's edges.

In: a ``link.Program``. Out: a ``LinkedGraph`` — plain nodes, edges and counts, cached by the store
and turned into a graph by ``graph``.

Steps:
 1. Parameters that matter: a parameter is *called* when the function (or a macro) calls it, or
    passes it on to a called parameter (``NF_HOOK_COND(..., okfn)`` calls ``okfn``); it is *stored*
    when its value flows into a field, a variable or another stored parameter.
 2. Slots and flows: a slot is a place that can hold a function — a struct field ``(S, f)``, a
    global, a local, a parameter. Seeds are initializers (``.sendmsg = udp_sendmsg`` in ``udp_prot``:
    kind ``ops``), assignments (``rt->dst.output = ip_output``: ``assign``) and functions passed as
    arguments to stored parameters. Flows copy values between slots (``hh->hh_output =
    neigh->ops->hh_output``, ``napi->poll = poll``). Values are propagated to a fixed point, each
    keeping its evidence (where it entered, where it was stored).
 3. Sites: each call site becomes edges — ``direct`` (a named function), ``syscall`` (an entry made by
    SYSCALL_DEFINEn, or a call through one of its alias names), ``indirect_candidate`` (named by
    INDIRECT_CALL_*), ``ops``/``assign`` (the values of the slot the callee expression denotes, typed
    by ``Program.type_of``), ``param`` (a function passed to a called parameter: the edge goes from
    the caller that passes it), ``fallback`` (receiver type unknown: values of every field of that
    name, when they are few). Calls through macros are expanded. Sites left unresolved are counted,
    by reason.
"""

from __future__ import annotations

from collections import defaultdict, deque
from typing import NamedTuple

from . import kdata
from .facts import Expr
from .link import Program, dead, parse_args, split_arg_text, syscall_base

KINDS = ("direct", "syscall", "indirect_candidate", "ops", "param", "assign", "fallback")
CONFIDENCE = {"direct": 1.0, "syscall": 1.0, "indirect_candidate": 0.95, "ops": 0.9, "param": 0.85,
              "assign": 0.8, "fallback": 0.3}
FALLBACK_LIMIT = 24  # more candidates than this for a field name alone: left unresolved
MAX_VALUES = 4000  # per slot
MAX_EVIDENCE = 12  # per (slot, function)
LINKER_VERSION = 3

Step = tuple  # (what, label, file, line, cond): what in "ops", "assign", "arg", "store"


class LinkedGraph(NamedTuple):
    """Plain data, cached as is. Node flags: "" a function defined in scope, "x" external."""

    nodes: list  # (id, name, file | None, line, flags, signature, cond)
    edges: list  # (src, dst, kind, file, line, text, evidence: tuple[Step, ...], cond, slot)
    aliases: dict  # extra lookup name -> [node ids]
    stats: dict
    model: dict  # tables for the reference stack (refstack.facts)


class _Slots:
    def __init__(self) -> None:
        self.values: dict[tuple, dict[str, list[Step]]] = defaultdict(dict)
        self.succ: dict[tuple, list[tuple[tuple, Step | None]]] = defaultdict(list)
        self.by_field: dict[str, list[tuple]] = defaultdict(list)

    def seed(self, slot: tuple, fid: str, step: Step) -> None:
        vals = self.values[slot]
        ev = vals.get(fid)
        if ev is None:
            if len(vals) >= MAX_VALUES:
                return
            vals[fid] = [step]
            if slot[0] == "F" and len(vals) == 1:
                self.by_field[slot[2]].append(slot)
        elif len(ev) < MAX_EVIDENCE and step not in ev:
            ev.append(step)

    def flow(self, src: tuple, dst: tuple, step: Step | None) -> None:
        if src != dst:
            self.succ[src].append((dst, step))

    def propagate(self) -> None:
        queue = deque(s for s in list(self.values) if self.values[s])
        queued = set(queue)
        while queue:
            u = queue.popleft()
            queued.discard(u)
            uvals = self.values.get(u)
            if not uvals:
                continue
            for v, step in self.succ.get(u, ()):
                vvals = self.values[v]
                changed = False
                for fid, ev in uvals.items():
                    if fid in vvals or len(vvals) >= MAX_VALUES:
                        continue
                    new = list(ev[:2])
                    if step is not None:
                        new.append(step)
                    vvals[fid] = new
                    changed = True
                    if v[0] == "F" and len(vvals) == 1:
                        self.by_field[v[2]].append(v)
                if changed and v not in queued:
                    queue.append(v)
                    queued.add(v)


class Resolver:
    def __init__(self, prog: Program) -> None:
        self.p = prog
        self.slots = _Slots()
        self.called: set[tuple[str, int]] = set()  # (callable, index): the parameter gets called
        self.stored: set[tuple[str, int]] = set()  # the parameter's value flows somewhere
        self.call_in_callee: dict[tuple[str, int], tuple[str, int]] = {}  # where it is called (file, line)
        self.edges: dict[tuple, list] = {}
        self.externals: set[str] = set()
        self.stats: dict = defaultdict(int)
        self.unresolved: dict[str, int] = defaultdict(int)
        self.unresolved_samples: dict[str, list] = defaultdict(list)
        self._macro_cache: dict[str, list] = {}

    # -- callables -------------------------------------------------------------------------------
    def callable_for(self, fi: int, name: str) -> str | None:
        fid = self.p.function_for(fi, name)
        if fid is not None:
            return fid
        if name in self.p.macros:
            return "macro:" + name
        return None

    def param_name(self, callable_: str, i: int) -> str:
        if callable_.startswith("macro:"):
            m = self.p.macros[callable_[6:]][0][0]
            return m.params[i] if m.params and i < len(m.params) else f"#{i}"
        params = self.p.funcs[callable_].params
        return params[i][0] if i < len(params) else f"#{i}"

    # -- step 1: parameters that are called or stored ------------------------------------------------
    def find_params(self) -> None:
        p = self.p
        passes: dict[tuple[str, int], list[tuple[str, int]]] = defaultdict(list)  # callee param -> caller params
        for fi, ff in enumerate(p.facts):
            ids = p.fn_ids[fi]
            fn_params = p.fn_params_of[fi]
            for c in ff.calls:
                pmap = fn_params.get(c.caller)
                if not pmap:
                    continue
                fid = ids[c.caller]
                if fid is None:
                    continue
                callee = c.callee
                if callee[0] == "d":
                    callee = callee[1]
                if callee[0] == "v" and callee[1] in pmap:  # okfn(...), (*okfn)(...), INDIRECT_CALL_1(okfn, ...)
                    key = (fid, pmap[callee[1]])
                    self.called.add(key)
                    self.call_in_callee.setdefault(key, (ff.path, c.line))
                    continue
                if not c.args or callee[0] != "v" or not any(n in c.args for n in pmap):
                    continue
                target = self.callable_for(fi, callee[1])
                if target is None:
                    continue
                for k, a in enumerate(split_arg_text(c.args)):
                    a = a.strip()
                    if a in pmap:
                        passes[(target, k)].append((fid, pmap[a]))
            for a in ff.assigns:
                pmap = fn_params.get(a.fn)
                if not pmap:
                    continue
                fid = ids[a.fn]
                if fid is None:
                    continue
                for src in _leaves(a.rhs):
                    if src[0] == "v" and src[1] in pmap:
                        self.stored.add((fid, pmap[src[1]]))
        for name, defs in p.macros.items():
            key_base = "macro:" + name
            for m, path in defs:
                params = {q: i for i, q in enumerate(m.params or ())}
                for callee, args in m.calls:
                    if callee in params:
                        key = (key_base, params[callee])
                        self.called.add(key)
                        self.call_in_callee.setdefault(key, (path, m.line))
                        continue
                    target = callee if callee in p.funcs else ("macro:" + callee if callee in p.macros else None)
                    if target is None:
                        continue
                    for k, a in enumerate(args):
                        if a is not None and a[0] == "v" and a[1] in params:
                            passes[(target, k)].append((key_base, params[a[1]]))
        # called / stored propagate backwards along passes
        for seedset in (self.called, self.stored):
            queue = deque(seedset)
            while queue:
                key = queue.popleft()
                for up in passes.get(key, ()):
                    if up not in seedset:
                        seedset.add(up)
                        if key in self.call_in_callee:
                            self.call_in_callee.setdefault(up, self.call_in_callee[key])
                        queue.append(up)
        self.stored |= self.called
        self.passes = passes
        self.stored_by: dict[str, list[int]] = defaultdict(list)
        self.called_by: dict[str, list[int]] = defaultdict(list)
        for c_, k in sorted(self.stored):
            self.stored_by[c_].append(k)
        for c_, k in sorted(self.called):
            self.called_by[c_].append(k)

    # -- step 2: slots, seeds, flows ---------------------------------------------------------------
    def slot_of(self, e: Expr, fi: int, fn: int, fid: str) -> tuple | None:
        k = e[0]
        if k == "v":
            lk = self.p.local_kind(fi, fn, e[1])
            if lk is not None:
                return ("P", fid, lk[1]) if lk[0] == "P" else ("L", fid, e[1])
            gid = self.p.global_id(fi, e[1])
            if gid is not None:
                return ("G", gid)
            return None
        if k == "f":
            st = self.p.type_of(e[1], fi, fn)
            if st is not None and st != "fn":
                f = self.p.field(st, e[2])
                if f is not None:
                    return ("F", f[0], f[1])
                return ("F", st, e[2])
            return ("F?", e[2])
        if k in ("i", "d", "x"):
            return self.slot_of(e[-1], fi, fn, fid)
        return None

    def sources(self, e: Expr | None, fi: int, fn: int, fid: str) -> list[tuple[str, object]]:
        """('fn', function id) constants and ('slot', slot) places a value expression reads."""
        out: list[tuple[str, object]] = []
        for leaf in _leaves(e):
            k = leaf[0]
            if k == "a":
                leaf = leaf[1]
                k = leaf[0]
            if k == "v":
                name = leaf[1]
                if fn >= 0 and self.p.local_kind(fi, fn, name) is not None:
                    out.append(("slot", self.slot_of(leaf, fi, fn, fid)))
                    continue
                target = self.p.function_for(fi, name)
                if target is not None:
                    out.append(("fn", target))
                    continue
                gid = self.p.global_id(fi, name)
                if gid is not None:
                    out.append(("slot", ("G", gid)))
            elif k in ("f", "i", "d"):
                s = self.slot_of(leaf, fi, fn, fid)
                if s is not None:
                    out.append(("slot", s))
        return out

    def build_flows(self) -> None:
        p = self.p
        for fi, ff in enumerate(p.facts):
            ids = p.fn_ids[fi]
            for ini in ff.inits:
                if dead(ini.cond):
                    continue
                self._init_flow(fi, ini)
            for a in ff.assigns:
                fid = ids[a.fn]
                if fid is None or dead(a.cond):
                    continue
                if a.rhs[0] == "{":
                    self._compound_flow(fi, a, fid)
                    continue
                dst = self.slot_of(a.lhs, fi, a.fn, fid)
                if dst is None or dst[0] == "F?":
                    continue
                step = ("assign", a.text, ff.path, a.line, a.cond)
                for kind, obj in self.sources(a.rhs, fi, a.fn, fid):
                    if kind == "fn":
                        self.slots.seed(dst, obj, step)  # type: ignore[arg-type]
                    elif obj is not None and obj != dst:
                        self.slots.flow(obj, dst, step if dst[0] == "F" or dst[0] == "G" else None)  # type: ignore[arg-type]
            for c in ff.calls:
                fid = ids[c.caller]
                if fid is None or c.callee[0] != "v" or c.wrapper or dead(c.cond):
                    continue
                name = c.callee[1]
                if p.local_kind(fi, c.caller, name) is not None:
                    continue
                target = self.callable_for(fi, name)
                if target is None or target not in self.stored_by:
                    continue
                args = None
                for k in self.stored_by[target]:
                    if args is None:
                        args = parse_args(c)
                    if k >= len(args):
                        break
                    dst = ("P", target, k)
                    for kind, obj in self.sources(args[k], fi, c.caller, fid):
                        if kind == "fn":
                            self.slots.seed(dst, obj, ("arg", f"passed to {_short(target)} as "  # type: ignore[arg-type]
                                                       f"{self.param_name(target, k)}", ff.path, c.line, c.cond))
                        elif obj is not None:
                            self.slots.flow(obj, dst, None)  # type: ignore[arg-type]
        for (callee, k), ups in self.passes.items():
            for up in ups:
                if up in self.stored and (callee, k) in self.stored:
                    self.slots.flow(("P", up[0], up[1]), ("P", callee, k), None)

    def _init_flow(self, fi: int, ini) -> None:  # type: ignore[no-untyped-def]
        p = self.p
        ff = p.facts[fi]
        if ini.fn >= 0:
            gtype = p.locals[fi].get(ini.fn, {}).get(ini.var)
            gid = f"{ff.path}::{ini.var}@{ini.fn}"
            arr = False
        else:
            g = p.global_type(fi, ini.var)
            if g is None:
                return
            gtype, arr = g
            gid = p.global_id(fi, ini.var) or ini.var
        path = ini.path
        if arr and path and path[0][0] in ("#", "["):
            path = path[1:]  # element of the array variable
        slot = self._walk_path(p.struct_of(gtype) if gtype else None, path, ("G", gid))
        if slot is None:
            return
        step = ("ops", ini.var, ff.path, ini.line, ini.cond)
        fid_ctx = p.fn_ids[fi][ini.fn] if ini.fn >= 0 else ""
        for kind, obj in self.sources(ini.value, fi, ini.fn, fid_ctx or ""):
            if kind == "fn":
                self.slots.seed(slot, obj, step)  # type: ignore[arg-type]

    def _walk_path(self, cur: str | None, path: tuple, start: tuple) -> tuple | None:
        """The slot an initializer path designates inside a value of struct type cur."""
        p = self.p
        slot = start
        for kind, key in path:
            if kind == ".":
                if cur is None or cur == "fn":
                    return None  # a field of an unknown type
                f = p.field(cur, key)  # type: ignore[arg-type]
                slot = ("F", f[0], f[1]) if f else ("F", cur, key)
                cur = f[2] if f else None
            elif kind == "#":
                if cur is None or cur == "fn":
                    continue
                order = p.struct_order.get(cur, [])
                if not isinstance(key, int) or key >= len(order):
                    return None
                f = p.field(cur, order[key])
                slot = ("F", f[0], f[1]) if f else ("F", cur, order[key])
                cur = f[2] if f else None
            # "[" on a field: an element of an array member; the slot stays the field
        return slot

    def _compound_flow(self, fi: int, a, fid: str) -> None:  # type: ignore[no-untyped-def]
        """x = (struct T){ .f = fn, ... }: every fn is stored in T.f."""
        _, ty, leaves = a.rhs
        start = self.p.struct_of(ty)
        if start is None or start == "fn":
            return
        step = ("assign", a.text, self.p.facts[fi].path, a.line, a.cond)
        for path, value in leaves:
            slot = self._walk_path(start, path, ("G", "?"))
            if slot is None or slot[0] != "F":
                continue
            for kind, obj in self.sources(value, fi, a.fn, fid):
                if kind == "fn":
                    self.slots.seed(slot, obj, step)  # type: ignore[arg-type]

    # -- step 3: sites -----------------------------------------------------------------------------
    def add_edge(self, src: str, dst: str, kind: str, path: str, line: int, text: str, evidence: list, cond: str,
                 slot: str = "") -> None:
        key = (src, dst, kind, path, line)
        ev = self.edges.get(key)
        if ev is None:
            self.edges[key] = [text, list(evidence[:MAX_EVIDENCE]), cond, slot]
        else:
            for s in evidence:
                if s not in ev[1] and len(ev[1]) < MAX_EVIDENCE:
                    ev[1].append(s)

    def _values_edges(self, fid: str, slot: tuple, path: str, line: int, text: str, cond: str) -> int:
        vals = self.slots.values.get(slot)
        if not vals:
            return 0
        name = slot_name(slot)
        for target, ev in vals.items():
            last = ev[-1][0]
            kind = "ops" if last == "ops" else "assign"
            self.add_edge(fid, target, kind, path, line, text, ev, cond, name)
        return len(vals)

    def _site_unresolved(self, reason: str, path: str, line: int, text: str) -> None:
        self.unresolved[reason] += 1
        if len(self.unresolved_samples[reason]) < 20:
            self.unresolved_samples[reason].append(f"{path}:{line} {text}")

    def _fallback(self, fid: str, fname: str, path: str, line: int, text: str, cond: str) -> int:
        targets: dict[str, list] = {}
        for slot in self.slots.by_field.get(fname, ()):
            for t, ev in self.slots.values.get(slot, {}).items():
                targets.setdefault(t, list(ev[:2]))
        if not targets:
            self._site_unresolved("no type, no function stored in a field of that name", path, line, text)
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
                if callee in self.p.funcs:
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
                callee = c.callee
                if c.wrapper:
                    pslot = self.slot_of(callee, fi, c.caller, fid)
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
            if base is not None and ("sys_" + base) in p.funcs:
                target, kind = "sys_" + base, "syscall"
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
                self.add_edge(fid, target, "direct", path, c.line, name, [step], c.cond)
            self._param_edges(fi, fid, "macro:" + name, c, path)
            return
        st["external_sites"] += 1
        self.externals.add(name)
        self.add_edge(fid, name, "direct", path, c.line, name, [], c.cond)

    def _count_resolved(self, n: int, kind: str, reason: str, path: str, line: int, text: str) -> None:
        if n:
            self.stats[f"resolved_{kind}"] += 1
            self.stats["resolved_targets"] += n
        else:
            self._site_unresolved(reason, path, line, text)

    def _pointer_site(self, fi: int, fid: str, c, path: str) -> None:  # type: ignore[no-untyped-def]
        st = self.stats
        st["indirect_sites"] += 1
        slot = self.slot_of(c.callee, fi, c.caller, fid)
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
            vals = self.slots.values[slot]
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
        vals = self.slots.values.get(slot)
        if not vals:
            return
        pname = self.param_name(slot[1], slot[2])
        for target, ev in vals.items():
            note = ("through_param", f"called through parameter {pname}; the value comes from a caller", None, 0, "")
            self.add_edge(fid, target, "param", path, line, text, [note, *ev[:2]], cond)

    def _param_edges(self, fi: int, fid: str, target: str, c, path: str) -> None:  # type: ignore[no-untyped-def]
        ks = self.called_by.get(target)
        if not ks:
            return
        args = None
        for k in ks:
            if args is None:
                args = parse_args(c)
            if k >= len(args):
                break
            where = self.call_in_callee.get((target, k), (None, 0))
            pname = self.param_name(target, k)
            for kind, obj in self.sources(args[k], fi, c.caller, fid):
                if kind == "fn":
                    step = ("param", f"passed as {pname} to {_short(target)}, which calls it", where[0], where[1], "")
                    self.add_edge(fid, obj, "param", path, c.line, f"{_short(target)}(..., {obj.split('::')[-1]}, ...)",  # type: ignore[union-attr]
                                  [step], c.cond)
                elif kind == "slot" and obj is not None and obj[0] == "L":  # type: ignore[index]
                    for t, ev in self.slots.values.get(obj, {}).items():  # type: ignore[arg-type]
                        step = ("param", f"passed as {pname} to {_short(target)}, which calls it", where[0], where[1], "")
                        self.add_edge(fid, t, "param", path, c.line, f"{_short(target)}(..., {obj[2]}, ...)",  # type: ignore[index]
                                      [step, *ev[:2]], c.cond)

    # -- output ------------------------------------------------------------------------------------
    def graph(self) -> LinkedGraph:
        p = self.p
        nodes = []
        for fid in sorted(p.funcs):
            info = p.funcs[fid]
            d = info.primary
            flags = "i" if d.inline else ""
            nodes.append((fid, info.name, d.file, d.line, flags, d.signature, d.cond))
        for name in sorted(self.externals - set(p.funcs)):
            nodes.append((name, name, None, 0, "x", "", ""))
        edges = []
        for (src, dst, kind, path, line), (text, ev, cond, slot) in sorted(self.edges.items()):
            edges.append((src, dst, kind, path, line, text, tuple(tuple(s) for s in ev), cond, slot))
        aliases: dict[str, list[str]] = defaultdict(list)
        prefixes = kdata.syscall_prefixes()
        for fid, info in p.funcs.items():
            name = info.name
            for flavour in ("sys_", "compat_sys_"):
                if name.startswith(flavour) and len(name) > len(flavour):
                    base = name[len(flavour) :]
                    for pre in prefixes:
                        if ("compat" in pre) == (flavour == "compat_sys_") and pre != flavour:
                            aliases[pre + base].append(fid)
                    if flavour == "sys_" or ("sys_" + base) not in p.funcs:
                        aliases[base].append(fid)
        st = dict(self.stats)
        st["functions"] = len(p.funcs)
        st["externals"] = len(nodes) - len(p.funcs)
        st["edges"] = len(edges)
        st["edges_by_kind"] = {k: sum(1 for e in edges if e[2] == k) for k in KINDS}
        st["unresolved"] = dict(self.unresolved)
        st["unresolved_samples"] = {k: v for k, v in self.unresolved_samples.items()}
        st["files"] = len(p.facts)
        st["bytes"] = sum(ff.size for ff in p.facts)
        st["files_with_errors"] = sum(1 for ff in p.facts if ff.error_count)
        st["error_nodes"] = sum(ff.error_count for ff in p.facts)
        st["error_bytes"] = sum(ff.error_bytes for ff in p.facts)
        st["slots_with_values"] = sum(1 for v in self.slots.values.values() if v)
        return LinkedGraph(nodes, edges, {k: sorted(set(v)) for k, v in sorted(aliases.items())}, st, {})


def slot_name(slot: tuple | None) -> str:
    """'proto_ops.sendmsg' for a field slot; 'P:fn#2', 'L:fn:var', 'G:var' for the others."""
    if not slot:
        return ""
    if slot[0] == "F":
        return f"{slot[1]}.{slot[2]}"
    if slot[0] == "F?":
        return f"?.{slot[1]}"
    if slot[0] == "P":
        return f"P:{slot[1]}#{slot[2]}"
    if slot[0] == "L":
        return f"L:{slot[1]}:{slot[2]}"
    return f"G:{slot[1]}"


def _leaves(e: Expr | None) -> list[Expr]:
    """The alternatives a value expression may evaluate to (through ?:, casts and parentheses)."""
    if e is None:
        return []
    k = e[0]
    if k == "?":
        return _leaves(e[1]) + _leaves(e[2])
    if k == "x":
        return _leaves(e[2])
    if k in ("v", "a", "f", "i", "d"):
        return [e]
    return []


def _short(callable_: str) -> str:
    if callable_.startswith("macro:"):
        return callable_[6:]
    return callable_.split("::")[-1]


def build(prog: Program) -> LinkedGraph:
    r = Resolver(prog)
    r.find_params()
    r.build_flows()
    r.slots.propagate()
    r.resolve_sites()
    g = r.graph()
    from .refstack.tables import build_model

    g.model.update(build_model(prog, r))
    return g
