"""Stage 6a — flows: the functions each place that can hold a function may hold.

In: a ``link.Program``. Out: ``Flows`` — a value-flow view of the program, read by ``resolve`` (to
turn call sites into edges) and by the reference stack's tables:
 * ``slot_of(expr, ...)``: the slot an expression denotes. A slot is a place that can hold a
   function — ``("F", struct, field)``, ``("F?", field)`` (receiver type unknown), ``("G", global
   id)``, ``("L", function id, local)``, ``("P", callable, parameter index)``; ``read_slot`` narrows a
   read to a named table's own slot ``("N", global id, member path)`` or an embedded member's (``precision``);
 * ``sources(expr, ...)``: the function constants and slots a value expression reads;
 * ``values(slot)``: function id → evidence (the steps that put it there), after propagation;
 * ``called_params`` / ``called_at`` / ``param_name``: the parameters a callable calls.

Steps:
 1. Parameters that matter: a parameter is *called* when the function (or a macro) calls it, or
    passes it on to a called parameter (``NF_HOOK_COND(..., okfn)`` calls ``okfn``); it is *stored*
    when its value flows into a field, a variable or another stored parameter.
 2. Seeds are initializers (``.sendmsg = udp_sendmsg`` in ``udp_prot``: step ``ops``), assignments
    (``rt->dst.output = ip_output``: ``assign``) and functions passed as arguments to stored
    parameters (``arg``). Flows copy values between slots (``hh->hh_output =
    neigh->ops->hh_output``, ``napi->poll = poll``).
 3. Values are propagated to a fixed point, each keeping its evidence (where it entered, where it
    was stored). Evidence steps are ``rows.Step`` tuples.
"""

from __future__ import annotations

from collections import defaultdict, deque
from dataclasses import dataclass

from . import precision
from .facts import Expr
from .link import Program, dead, parse_args, split_arg_text
from .rows import Step

MAX_VALUES = 4000  # per slot
MAX_EVIDENCE = 12  # per (slot, function)

Param = tuple[str, int]  # (callable, parameter index); a callable is a function id or "macro:NAME"


class Slots:
    """Values per slot, flows between slots, and the field slots per field name (for fallback)."""

    def __init__(self) -> None:
        self.values: dict[tuple, dict[str, list[Step]]] = defaultdict(dict)
        self.succ: dict[tuple, list[tuple[tuple, Step | None]]] = defaultdict(list)
        self.by_field: dict[str, list[tuple]] = defaultdict(list)
        self.blocked: dict[tuple, set[str]] = {}  # (src, dst) -> functions that flow must not carry

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
                bl = self.blocked.get((u, v))
                if self._copy({f: e for f, e in uvals.items() if f not in bl} if bl else uvals, v, step) \
                        and v not in queued:
                    queue.append(v)
                    queued.add(v)

    def _copy(self, uvals: dict[str, list[Step]], v: tuple, step: Step | None) -> bool:
        """Copy the values of a slot into slot v (their first two steps, then step): any new?"""
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
        return changed


@dataclass
class Params:
    """Step 1's result: the parameters that are called, and those whose value is stored."""

    called: set[Param]
    stored: set[Param]  # includes the called ones
    call_in_callee: dict[Param, tuple[str, int]]  # where a called parameter is called (file, line)
    passes: dict[Param, list[Param]]  # callee parameter -> the caller parameters passed to it
    called_by: dict[str, list[int]]  # callable -> its called parameters, in order
    stored_by: dict[str, list[int]]


def callable_for(prog: Program, fi: int, name: str) -> str | None:
    """The function id a name calls from file fi, or "macro:NAME" for a macro."""
    fid = prog.function_for(fi, name)
    if fid is not None:
        return fid
    if name in prog.macros:
        return "macro:" + name
    return None


class _ParamFinder:
    """Step 1: parameters that are called or stored, and how callers pass them on."""

    def __init__(self, prog: Program) -> None:
        self.p = prog
        self.called: set[Param] = set()
        self.stored: set[Param] = set()
        self.call_in_callee: dict[Param, tuple[str, int]] = {}
        self.passes: dict[Param, list[Param]] = defaultdict(list)

    def run(self) -> Params:
        for fi, ff in enumerate(self.p.facts):
            self._calls(fi, ff)
            self._assigns(fi, ff)
        self._macros()
        for seedset in (self.called, self.stored):
            self._propagate_back(seedset)
        self.stored |= self.called
        return Params(self.called, self.stored, self.call_in_callee, self.passes,
                      _by_callable(self.called), _by_callable(self.stored))

    def _in_functions_with_params(self, fi: int, facts: list, fn_index: str):  # type: ignore[no-untyped-def]
        """(fact, function id, its function-holding parameters by name) for the facts of file fi
        inside a live function that has such parameters."""
        ids = self.p.fn_ids[fi]
        fn_params = self.p.fn_params_of[fi]
        for x in facts:
            fn = getattr(x, fn_index)
            pmap = fn_params.get(fn)
            if pmap and ids[fn] is not None:
                yield x, ids[fn], pmap

    def _calls(self, fi: int, ff) -> None:  # type: ignore[no-untyped-def]
        for c, fid, pmap in self._in_functions_with_params(fi, ff.calls, "caller"):
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
            target = callable_for(self.p, fi, callee[1])
            if target is None:
                continue
            for k, a in enumerate(split_arg_text(c.args)):
                a = a.strip()
                if a in pmap:
                    self.passes[(target, k)].append((fid, pmap[a]))

    def _assigns(self, fi: int, ff) -> None:  # type: ignore[no-untyped-def]
        for a, fid, pmap in self._in_functions_with_params(fi, ff.assigns, "fn"):
            for src in leaves(a.rhs):
                if src[0] == "v" and src[1] in pmap:
                    self.stored.add((fid, pmap[src[1]]))

    def _macros(self) -> None:
        p = self.p
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
                            self.passes[(target, k)].append((key_base, params[a[1]]))

    def _propagate_back(self, seedset: set[Param]) -> None:
        """Called / stored propagate backwards along passes: a parameter passed on to a called
        parameter is called too. Sorted: which call site a parameter's evidence names must not
        depend on the order of a set."""
        queue = deque(sorted(seedset))
        while queue:
            key = queue.popleft()
            for up in self.passes.get(key, ()):
                if up not in seedset:
                    seedset.add(up)
                    if key in self.call_in_callee:
                        self.call_in_callee.setdefault(up, self.call_in_callee[key])
                    queue.append(up)


def _by_callable(params: set[Param]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = defaultdict(list)
    for c, k in sorted(params):
        out[c].append(k)
    return out


class Flows:
    """The value-flow view of a program (see the module docstring)."""

    def __init__(self, prog: Program, params: Params) -> None:
        self.p = prog
        self.params = params
        self.slots = Slots()
        self.refine = None  # precision.Refiner: narrow slots of named tables and embedded members
        self.saved: set[tuple] = set()  # slots a field is saved into (precision.saved_blocks)

    # -- callables and parameters --------------------------------------------------------------
    def callable_for(self, fi: int, name: str) -> str | None:
        return callable_for(self.p, fi, name)

    def param_name(self, callable_: str, i: int) -> str:
        if callable_.startswith("macro:"):
            m = self.p.macros[callable_[6:]][0][0]
            return m.params[i] if m.params and i < len(m.params) else f"#{i}"
        params = self.p.funcs[callable_].params
        return params[i][0] if i < len(params) else f"#{i}"

    def called_params(self, callable_: str) -> list[int]:
        """Indexes of the callable's parameters that it calls (directly or by passing them on)."""
        return self.params.called_by.get(callable_, [])

    def called_at(self, callable_: str, i: int) -> tuple[str | None, int]:
        """Where the callable's parameter i is called: (file, line), or (None, 0)."""
        return self.params.call_in_callee.get((callable_, i), (None, 0))

    # -- slots and values ----------------------------------------------------------------------
    def slot_of(self, e: Expr, fi: int, fn: int, fid: str) -> tuple | None:
        """The slot expression e denotes inside function fn (id fid) of file fi, if any."""
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
        for leaf in leaves(e):
            k = leaf[0]
            if k == "a":
                leaf = leaf[1]
                k = leaf[0]
            if k == "v":
                got = self._named_source(leaf, fi, fn, fid)
                if got is not None:
                    out.append(got)
            elif k in ("f", "i", "d"):
                s = self.read_slot(leaf, fi, fn, fid)
                if s is not None:
                    out.append(("slot", s))
        return out

    def _named_source(self, leaf: Expr, fi: int, fn: int, fid: str) -> tuple[str, object] | None:
        name = leaf[1]
        if fn >= 0 and self.p.local_kind(fi, fn, name) is not None:
            return ("slot", self.slot_of(leaf, fi, fn, fid))
        target = self.p.function_for(fi, name)
        if target is not None:
            return ("fn", target)
        gid = self.p.global_id(fi, name)
        if gid is not None:
            return ("slot", ("G", gid))
        return None

    def read_slot(self, e: Expr, fi: int, fn: int, fid: str) -> tuple | None:
        """The slot a read of e denotes: slot_of, narrowed by precision.Refiner when it can be."""
        return (self.refine.read(e, fi, fn) if self.refine else None) or self.slot_of(e, fi, fn, fid)

    def values(self, slot: tuple) -> dict[str, list[Step]]:
        """Function id -> evidence steps, for every function the slot may hold."""
        return self.slots.values.get(slot, {})

    def field_slots(self, name: str) -> list[tuple]:
        """The ("F", struct, name) slots holding a function, in the order they got one."""
        return self.slots.by_field.get(name, [])

    def filled(self) -> int:
        """How many slots hold a function."""
        return sum(1 for v in self.slots.values.values() if v)


class _Seeder:
    """Step 2: seeds (functions entering slots) and flows (slot to slot) from every file's facts."""

    def __init__(self, fl: Flows) -> None:
        self.fl = fl
        self.p = fl.p
        self.slots = fl.slots

    def run(self) -> None:
        for fi, ff in enumerate(self.p.facts):
            for ini in ff.inits:
                if not dead(ini.cond):
                    self._init(fi, ini)
            self._assigns(fi, ff)
            self._calls(fi, ff)
        params = self.fl.params
        for (callee, k), ups in params.passes.items():
            for up in ups:
                if up in params.stored and (callee, k) in params.stored:
                    self.slots.flow(("P", up[0], up[1]), ("P", callee, k), None)

    def _assigns(self, fi: int, ff) -> None:  # type: ignore[no-untyped-def]
        ids = self.p.fn_ids[fi]
        for a in ff.assigns:
            fid = ids[a.fn]
            if fid is None or dead(a.cond):
                continue
            if a.rhs[0] == "{":
                self._compound(fi, a, fid)
                continue
            dst = self.fl.slot_of(a.lhs, fi, a.fn, fid)
            if dst is None or dst[0] == "F?":
                continue
            step = ("assign", a.text, ff.path, a.line, a.cond)
            for kind, obj in self.fl.sources(a.rhs, fi, a.fn, fid):
                if kind == "fn":
                    self.slots.seed(dst, obj, step)  # type: ignore[arg-type]
                elif obj is not None and obj != dst:
                    self.slots.flow(obj, dst, step if dst[0] == "F" or dst[0] == "G" else None)  # type: ignore[arg-type]

    def _calls(self, fi: int, ff) -> None:  # type: ignore[no-untyped-def]
        """Functions passed to stored parameters (seeds), and slots passed there (flows)."""
        ids = self.p.fn_ids[fi]
        stored_by = self.fl.params.stored_by
        for c in ff.calls:
            fid = ids[c.caller]
            if fid is None or c.callee[0] != "v" or c.wrapper or dead(c.cond):
                continue
            name = c.callee[1]
            if self.p.local_kind(fi, c.caller, name) is not None:
                continue
            target = self.fl.callable_for(fi, name)
            if target is None or target not in stored_by:
                continue
            args = None
            for k in stored_by[target]:
                if args is None:
                    args = parse_args(c)
                if k >= len(args):
                    break
                self._arg(fi, ff, c, fid, target, k, args[k])

    def _arg(self, fi: int, ff, c, fid: str, target: str, k: int, arg: Expr | None) -> None:  # type: ignore[no-untyped-def]
        dst = ("P", target, k)
        for kind, obj in self.fl.sources(arg, fi, c.caller, fid):
            if kind == "fn":
                step = ("arg", f"passed to {short(target)} as {self.fl.param_name(target, k)}", ff.path, c.line, c.cond)
                self.slots.seed(dst, obj, step)  # type: ignore[arg-type]
            elif obj is not None:
                self.slots.flow(obj, dst, None)  # type: ignore[arg-type]

    def _init(self, fi: int, ini) -> None:  # type: ignore[no-untyped-def]
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
        for kind, obj in self.fl.sources(ini.value, fi, ini.fn, fid_ctx or ""):
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
            elif kind == "#":
                if cur is None or cur == "fn":
                    continue
                order = p.struct_order.get(cur, [])
                if not isinstance(key, int) or key >= len(order):
                    return None
                key = order[key]
            else:
                continue  # "[" on a field: an element of an array member; the slot stays the field
            f = p.field(cur, key)  # type: ignore[arg-type]
            slot = ("F", f[0], f[1]) if f else ("F", cur, key)
            cur = f[2] if f else None
        return slot

    def _compound(self, fi: int, a, fid: str) -> None:  # type: ignore[no-untyped-def]
        """x = (struct T){ .f = fn, ... }: every fn is stored in T.f."""
        _, ty, parts = a.rhs
        start = self.p.struct_of(ty)
        if start is None or start == "fn":
            return
        step = ("assign", a.text, self.p.facts[fi].path, a.line, a.cond)
        for path, value in parts:
            slot = self._walk_path(start, path, ("G", "?"))
            if slot is None or slot[0] != "F":
                continue
            for kind, obj in self.fl.sources(value, fi, a.fn, fid):
                if kind == "fn":
                    self.slots.seed(slot, obj, step)  # type: ignore[arg-type]


def build(prog: Program) -> Flows:
    """Parameters, seeds, flows, propagation: the value-flow view of prog."""
    fl = Flows(prog, _ParamFinder(prog).run())
    precision.prepare(fl)
    _Seeder(fl).run()
    precision.order_saves(fl)
    fl.slots.propagate()
    return fl


def slot_name(slot: tuple | None) -> str:
    """'proto_ops.sendmsg' for a field slot; 'P:fn#2', 'L:fn:var', 'G:var' for the others."""
    if not slot:
        return ""
    if slot[0] == "F":
        return f"{slot[1]}.{slot[2]}"
    if slot[0] == "N":
        return f"{slot[1].split('::')[-1]}.{'.'.join(slot[2])}"
    if slot[0] == "F?":
        return f"?.{slot[1]}"
    if slot[0] == "P":
        return f"P:{slot[1]}#{slot[2]}"
    if slot[0] == "L":
        return f"L:{slot[1]}:{slot[2]}"
    return f"G:{slot[1]}"


def leaves(e: Expr | None) -> list[Expr]:
    """The alternatives a value expression may evaluate to (through ?:, casts and parentheses)."""
    if e is None:
        return []
    k = e[0]
    if k == "?":
        return leaves(e[1]) + leaves(e[2])
    if k == "x":
        return leaves(e[2])
    if k in ("v", "a", "f", "i", "d"):
        return [e]
    return []


def short(callable_: str) -> str:
    """A callable's name as written: ``ip_output`` for ``net/ipv4/x.c::ip_output``, the macro's name."""
    if callable_.startswith("macro:"):
        return callable_[6:]
    return callable_.split("::")[-1]
