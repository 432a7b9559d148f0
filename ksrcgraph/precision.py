"""Stage 6a' — precision: rules that keep an edge only where the call can happen at its site.

In: a ``flows.Flows`` being built (``prepare``), then the call sites ``resolve`` turns into edges
(``SignatureCheck``). Out: narrower slots, program order of saves, signature checks:
 * a named table read by name (``inet_dgram_ops.ioctl``, ``(&udp_prot)->recvmsg``) reads the slot
   ``("N", global id, member path)`` that the table's own initializer fills, not every function
   stored in that field of any table of its type;
 * a field of an embedded member (``ptype->callbacks.gso_segment``) reads the slot keyed by the outer
   struct and the member, ``("F", "packet_offload.callbacks", "gso_segment")``, when initializers show
   the member is embedded (``.callbacks = { ... }``);
 * a save then a replacement (``x->old = x->f; x->f = wrapper;``): the flow f → old does not carry
   what the saving function stores in f after the save; no function calls itself through a saved
   pointer;
 * a pointer edge needs a target whose parameter count fits the call (the arguments of a call
   through a pointer are as many as the pointer type's parameters); field-name fallback also needs
   the known struct types of the arguments to match the target's parameters.
"""

from __future__ import annotations

import re
from collections import defaultdict

from .ctext import match_paren, split_arg_text
from .link import Program, dead, parse_args


def _chain(e: tuple) -> tuple[tuple, list[str]]:
    """(base, member names) of a field chain ``base.a.b`` (``&`` on the base read through)."""
    names: list[str] = []
    while True:
        while e[0] == "a":
            e = e[1]
        if e[0] != "f":
            break
        names.append(e[2])
        e = e[1]
    names.reverse()
    return e, names


class Refiner:
    """Narrow slots for reads of named tables and of embedded members (built from initializers)."""

    def __init__(self, fl) -> None:  # type: ignore[no-untyped-def]
        self.fl = fl
        self.p: Program = fl.p
        self.embedded: set[tuple[str, str]] = set()  # (owner struct, member) seen nested in an initializer
        self.known: set[tuple] = set()  # narrow slots an initializer fills

    def read(self, e: tuple, fi: int, fn: int) -> tuple | None:
        """The narrow slot a field read denotes, when an initializer fills it; else None."""
        if e[0] != "f":
            return None
        base, names = _chain(e)
        if base[0] == "v" and (fn < 0 or self.p.local_kind(fi, fn, base[1]) is None):
            gid = self.p.global_id(fi, base[1])
            g = self.p.global_type(fi, base[1])
            if gid is not None and g is not None and not g.array:
                slot = ("N", gid, tuple(names))
                if slot in self.known:
                    return slot
        inner = e[1]
        while inner[0] == "a":
            inner = inner[1]
        if inner[0] != "f":
            return None
        t = self.p.type_of(inner[1], fi, fn)
        if t is None or t == "fn":
            return None
        outer = self.p.field(t, inner[2])
        if outer is None or (outer.owner, outer.name) not in self.embedded or outer.type in (None, "fn"):
            return None
        f = self.p.field(outer.type, e[2])  # type: ignore[arg-type]
        slot = ("F", f"{outer.owner}.{outer.name}", f.name if f else e[2])
        return slot if slot in self.known else None

    def walk(self, cur: str | None, path: tuple) -> list | None:
        """The FieldRefs an initializer path goes through (None: an array member or unknown type)."""
        refs = []
        for kind, key in path:
            if cur is None or cur == "fn" or kind == "[":
                return None
            if kind == "#":
                order = self.p.struct_order.get(cur, [])
                if not isinstance(key, int) or key >= len(order):
                    return None
                key = order[key]
            f = self.p.field(cur, key)  # type: ignore[arg-type]
            if f is None:
                return None
            refs.append(f)
            cur = f.type
        return refs

    def init_slots(self, fi: int, ini) -> list[tuple]:  # type: ignore[no-untyped-def]
        """The narrow slots an initializer leaf fills (and the embedded members it shows)."""
        p = self.p
        if ini.fn >= 0:
            gtype, arr, gid = p.locals[fi].get(ini.fn, {}).get(ini.var), False, None  # as flows._Seeder._init
        else:
            g = p.global_type(fi, ini.var)
            if g is None:
                return []
            gtype, arr, gid = g.type, g.array, p.global_id(fi, ini.var)
        path = ini.path
        if arr and path and path[0][0] in ("#", "["):
            path = path[1:]  # element of the array variable
        refs = self.walk(p.struct_of(gtype) if gtype else None, path)
        if not refs:
            return []
        for r in refs[:-1]:
            self.embedded.add((r.owner, r.name))
        out = []
        if gid is not None and not arr:
            out.append(("N", gid, tuple(r.name for r in refs)))
        if len(refs) >= 2:
            out.append(("F", f"{refs[-2].owner}.{refs[-2].name}", refs[-1].name))
        return out


def prepare(fl) -> None:  # type: ignore[no-untyped-def]
    """Before seeding: the narrow slots, and what initializers and assignments put there."""
    ref = Refiner(fl)
    fl.refine = ref
    p = fl.p
    for fi, ff in enumerate(p.facts):
        for ini in ff.inits:
            if dead(ini.cond):
                continue
            slots = ref.init_slots(fi, ini)
            if not slots:
                continue
            ref.known.update(slots)
            step = ("ops", ini.var, ff.path, ini.line, ini.cond)
            ctx = p.fn_ids[fi][ini.fn] if ini.fn >= 0 else ""
            for kind, obj in fl.sources(ini.value, fi, ini.fn, ctx or ""):
                if kind == "fn":
                    for s in slots:
                        fl.slots.seed(s, obj, step)
    for fi, ff in enumerate(p.facts):
        _narrow_assigns(fl, ref, fi, ff)


def order_saves(fl) -> None:  # type: ignore[no-untyped-def]
    """After seeding, before propagation: the flows of saves that must not carry the wrapper."""
    fl.slots.blocked, fl.saved = saved_blocks(fl)


def _narrow_assigns(fl, ref: Refiner, fi: int, ff) -> None:  # type: ignore[no-untyped-def]
    """Assignments into a narrow slot an initializer also fills (``udp_prot.close = f``)."""
    ids = fl.p.fn_ids[fi]
    for a in ff.assigns:
        fid = ids[a.fn]
        if fid is None or dead(a.cond) or a.rhs[0] == "{":
            continue
        dst = ref.read(a.lhs, fi, a.fn)
        if dst is None:
            continue
        step = ("assign", a.text, ff.path, a.line, a.cond)
        for kind, obj in fl.sources(a.rhs, fi, a.fn, fid):
            if kind == "fn":
                fl.slots.seed(dst, obj, step)
            elif obj is not None and obj != dst:
                fl.slots.flow(obj, dst, step)


def saved_blocks(fl) -> tuple[dict[tuple, set[str]], set[tuple]]:  # type: ignore[no-untyped-def]
    """Saves ``x->old = x->f; x->f = wrapper;`` (a copy out of a field, then a store into it): per
    flow (f, old), the functions the saving function stores into f after the save (the wrapper); and
    the slots saved into: those, the fields only ever filled by a copy out of another field
    (``psock->saved_close = prot->close``), and the local variables they are copied to."""
    blocked: dict[tuple, set[str]] = defaultdict(set)
    saved: set[tuple] = set()
    to_locals: list[tuple[tuple, tuple]] = []
    pure: dict[tuple, bool] = {}  # field slot -> filled only by copies out of fields (so far)
    p = fl.p
    for fi, ff in enumerate(p.facts):
        ids = p.fn_ids[fi]
        by_fn: dict[int, list] = defaultdict(list)
        for k, a in enumerate(ff.assigns):
            if ids[a.fn] is not None and not dead(a.cond) and a.rhs[0] != "{":
                by_fn[a.fn].append((a.line, k, a))
        for fn, items in by_fn.items():
            _saves_in(fl, fi, fn, ids[fn], sorted(items, key=lambda t: (t[0], t[1])), blocked, saved,
                      (to_locals, pure))
    saved.update(s for s, ok in pure.items() if ok and not fl.slots.values.get(s))  # no function stored directly
    grown = True
    while grown:
        grown = False
        for src, dst in to_locals:
            if src in saved and dst not in saved:
                saved.add(dst)
                grown = True
    return dict(blocked), saved


def _saves_in(fl, fi: int, fn: int, fid: str, items: list, blocked: dict, saved: set,  # type: ignore[no-untyped-def]
              more: tuple) -> None:
    """The saves of one function, its assignments in program order (see saved_blocks)."""
    to_locals, pure = more
    stores = []  # (position, destination slot, function constants stored)
    for pos, (_line, _k, a) in enumerate(items):
        dst = fl.slot_of(a.lhs, fi, fn, fid)
        if dst is None:
            continue
        srcs = fl.sources(a.rhs, fi, fn, fid)
        stores.append((pos, dst, {obj for kind, obj in srcs if kind == "fn"}, srcs))
        if dst[0] == "F":
            pure[dst] = pure.get(dst, True) and all(  # x->old = NULL is neither
                k == "slot" and o is not None and o[0] in ("F", "N") for k, o in srcs)
    for pos, dst, _fns, srcs in stores:
        for kind, src in srcs:
            if kind != "slot" or src is None or src == dst:
                continue
            if dst[0] == "L":
                to_locals.append((src, dst))
            if src[0] not in ("F", "N"):
                continue
            later = set().union(*(fns for q, d, fns, _s in stores if q > pos and d == src))
            if later:
                blocked[(src, dst)] |= later
                saved.add(dst)


class SignatureCheck:
    """Does a target fit the call through a pointer? Parameter count (variadic targets take at least
    their fixed parameters); for fallback also the known struct types of the arguments."""

    def __init__(self, prog: Program) -> None:
        self.p = prog
        self._arity: dict[str, tuple[set[int], int | None] | None] = {}
        self.dropped: dict[str, int] = defaultdict(int)

    def arity(self, fid: str) -> tuple[set[int], int | None] | None:
        """(exact parameter counts over the definitions, least count of a variadic one); None: unknown."""
        if fid in self._arity:
            return self._arity[fid]
        info = self.p.funcs.get(fid)
        out: tuple[set[int], int | None] | None = None
        if info is not None:
            exact: set[int] = set()
            least: int | None = None
            for d in info.defs:
                n = _count_params(d.signature, info.name)
                if n is None or (info.params and len(info.params) != n[0] and not n[1]):
                    exact = set()
                    least = None
                    break
                if n[1]:
                    least = n[0] if least is None else min(least, n[0])
                else:
                    exact.add(n[0])
            out = (exact, least) if exact or least is not None else None
        self._arity[fid] = out
        return out

    def fits(self, fid: str, nargs: int | None) -> bool:
        a = self.arity(fid)
        if a is None or nargs is None:
            return True
        exact, least = a
        return nargs in exact or (least is not None and nargs >= least)

    def types_fit(self, fid: str, call, fi: int) -> bool:  # type: ignore[no-untyped-def]
        """The struct types known on both sides of each argument agree."""
        info = self.p.funcs.get(fid)
        if info is None or not call.args.strip():
            return True
        for text, arg, (_name, ptype) in zip(split_arg_text(call.args), parse_args(call), info.params):
            if arg is None or text.lstrip().startswith("("):  # a cast: parse_args reads through it
                continue
            want = self.p.struct_of(ptype)
            got = self.p.type_of(arg, fi, call.caller)
            if want not in (None, "fn") and got not in (None, "fn") and want != got:
                return False
        return True

    def keep(self, src: str, dst: str, kind: str, call) -> bool:  # type: ignore[no-untyped-def]
        """The pointer edge src → dst at call can happen (by parameter count); counts the dropped ones."""
        if not self.fits(dst, nargs(call)):
            self.dropped[f"signature_{kind}"] += 1
            return False
        return True


    def compatible(self, targets: dict, call, fi: int) -> dict:  # type: ignore[no-untyped-def]
        """Field-name fallback: the targets whose parameter count and known argument types fit."""
        n = nargs(call)
        out = {t: ev for t, ev in targets.items() if self.fits(t, n) and self.types_fit(t, call, fi)}
        self.dropped["fallback_signature"] += len(targets) - len(out)
        return out


def nargs(call) -> int | None:  # type: ignore[no-untyped-def]
    """How many arguments a call passes."""
    text = call.args.strip()
    return len(split_arg_text(text)) if text else 0


def _count_params(signature: str, name: str) -> tuple[int, bool] | None:
    """(fixed parameter count, variadic) from a function head as written; None when not readable."""
    m = re.search(r"\b" + re.escape(name) + r"\s*\(", signature)
    if m is None:
        return None
    open_pos = m.end() - 1
    close = match_paren(signature, open_pos, len(signature))
    if close <= open_pos:
        return None
    inner = signature[open_pos + 1 : close].strip()
    if inner in ("", "void"):
        return (0, False)
    parts = [s.strip() for s in split_arg_text(inner)]
    if parts and parts[-1] == "...":
        return (len(parts) - 1, True)
    return (len(parts), False)
