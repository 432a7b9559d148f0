"""Link-time part of the reference stack: what the model needs, read from the linked program.

In: a ``link.Program`` and the ``resolve.Resolver`` that built the graph. Out: a plain dict (cached
with the graph) —
 * ``tables``: struct instances of the kinds the rules talk about — name → {struct, file, line,
   fields: {field: [("fn", id) | ("table", name) | ("const", text)]}}; array elements are
   ``name[i]``; a compound literal assigned to ``x.y`` is a table named ``x.y``;
 * ``registrations``: calls of the functions in data/registrations.tsv, with the tables they register;
 * ``assigns``: ``x->f = &table`` (and ``x->f = entry->f``) inside functions, with their guards;
 * ``allocs``: the table passed to the allocator named in data/refstack_state.tsv, with guards;
 * ``stores``: for the rule slots, every function stored there and where;
 * ``exits``: early returns under a socket-type condition (how create functions reject types);
 * ``fn_stores``: ``x->f = function`` inside functions, with guards (state a create path sets);
 * ``ops_entries``: every initializer entry that names a function (``table.field`` → functions),
   for ``diff --graph``.
"""

from __future__ import annotations

from collections import defaultdict

from .. import kdata
from ..facts import Expr


def table_id(prog, fi: int, path: str) -> str:  # type: ignore[no-untyped-def]
    """A table's id: its access path with the base variable's global id (``file::name`` for a
    static), so that two files' ``static ... packet_ops`` stay apart."""
    base, dot, rest = path.partition(".")
    gid = prog.global_id(fi, base.split("[")[0]) or base.split("[")[0]
    return gid + base[len(base.split("[")[0]):] + dot + rest


def _value(resolver, fi: int, fn: int, fid: str, e: Expr):  # type: ignore[no-untyped-def]
    """("fn", id) | ("table", id) | ("const", text) | None for an initializer or argument value."""
    p = resolver.p
    k = e[0]
    if k == "a":
        inner = e[1]
        name = _access_path(inner)
        if name is not None:
            if inner[0] == "v" and p.function_for(fi, inner[1]) is not None:
                return ("fn", p.function_for(fi, inner[1]))
            return ("table", table_id(p, fi, name))
        return None
    if k == "v":
        target = p.function_for(fi, e[1])
        if target is not None:
            return ("fn", target)
        return ("const", e[1])
    if k == "n":
        return ("const", e[1])
    if k == "c":
        args = e[2] if len(e) > 2 else ()
        return ("const", f"{e[1]}({', '.join(a[1] for a in args if a[0] in ('v', 'n'))})")
    if k == "x":
        return _value(resolver, fi, fn, fid, e[2])
    return None


def _access_path(e: Expr) -> str | None:
    """'net_hotdata.udp_protocol' for ("f", ("v", "net_hotdata"), "udp_protocol")."""
    if e[0] == "v":
        return e[1]
    if e[0] == "f":
        base = _access_path(e[1])
        return f"{base}.{e[2]}" if base else None
    if e[0] == "i":
        return _access_path(e[1])
    return None


def build_model(prog, resolver) -> dict:  # type: ignore[no-untyped-def]
    rules = kdata.refstack_rules()
    regs = kdata.registrations()
    state_src = kdata.refstack_state()
    kinds = {r[0] for r in rules} | {v[2] for v in regs.values()} | {"inet_protosw"}
    for how, value in state_src.values():
        if how == "tables_in":
            kinds.add(value.split(":", 1)[1])
    alloc_fn, _, alloc_idx = state_src.get("sk.prot", ("", ":"))[1].partition(":")
    alloc_arg = int(alloc_idx) if alloc_idx.isdigit() else -1
    assign_slots = {v[1] for k, v in state_src.items() if v[0] in ("assign_to", "init_store")}

    allocators = _alloc_wrappers(prog, alloc_fn, alloc_arg)
    tables: dict[str, dict] = {}
    ops_entries: dict[str, dict[str, list[str]]] = {}
    exits: list = []
    registrations: list = []
    assigns: list = []
    fn_stores: list = []
    allocs: list = []
    for fi, ff in enumerate(prog.facts):
        ids = prog.fn_ids[fi]
        decl_line = {g.name: g.line for g in ff.globals if g.fn < 0}
        for ex in ff.exits:
            if ids[ex.fn] is not None:
                exits.append((ids[ex.fn], ex.cond, ff.path, ex.line))
        # -- tables from initializers --------------------------------------------------------
        for ini in ff.inits:
            if ini.fn >= 0 or not ini.path and not ini.value:
                continue
            g = prog.global_type(fi, ini.var)
            if g is None:
                continue
            if ini.value[0] in ("v", "a") and ini.path:
                fv = _value(resolver, fi, ini.fn, "", ini.value)
                if fv is not None and fv[0] == "fn":
                    tid = table_id(prog, fi, ini.var)
                    fpath = "".join(f".{k}" if kind == "." else f"[{k}]" for kind, k in ini.path).lstrip(".")
                    lst = ops_entries.setdefault(tid, {}).setdefault(fpath, [])
                    if fv[1] not in lst:
                        lst.append(fv[1])
            struct = prog.struct_of(g[0])
            if struct not in kinds:
                continue
            path = ini.path
            name = table_id(prog, fi, ini.var)
            if g[1] and path and path[0][0] in ("#", "["):
                name = f"{name}[{path[0][1]}]"
                path = path[1:]
            if not path:
                continue
            if path[0][0] == "#":
                order = prog.struct_order.get(struct, [])
                if not isinstance(path[0][1], int) or path[0][1] >= len(order):
                    continue
                path = ((".", order[path[0][1]]),) + path[1:]
            field = ".".join(str(s[1]) for s in path if s[0] == ".")
            v = _value(resolver, fi, ini.fn, "", ini.value)
            if v is None or not field:
                continue
            t = tables.setdefault(name, {"struct": struct, "file": ff.path,
                                         "line": decl_line.get(ini.var, ini.line), "fields": {}})
            vals = t["fields"].setdefault(field, [])
            if v not in vals:
                vals.append(v)
        # -- compound literals, registrations, assignments ----------------------------------------
        for a in ff.assigns:
            fid = ids[a.fn]
            if fid is None:
                continue
            if a.rhs[0] == "{":
                struct = prog.struct_of(a.rhs[1])
                name = _access_path(a.lhs)
                if name:
                    name = table_id(prog, fi, name)
                if struct in kinds and name:
                    t = tables.setdefault(name, {"struct": struct, "file": ff.path, "line": a.line, "fields": {}})
                    for path, value in a.rhs[2]:
                        field = ".".join(str(s[1]) for s in path if s[0] == ".")
                        v = _value(resolver, fi, a.fn, fid, value)
                        if v is not None and field and v not in t["fields"].setdefault(field, []):
                            t["fields"][field].append(v)
                continue
            slot = resolver.slot_of(a.lhs, fi, a.fn, fid)
            if not slot or slot[0] != "F":
                continue
            if a.rhs[0] in ("v", "a", "?", "x"):
                for kind, obj in resolver.sources(a.rhs, fi, a.fn, fid):
                    if kind == "fn":
                        fn_stores.append((fid, f"{slot[1]}.{slot[2]}", obj, a.guard, ff.path, a.line))
            if f"{slot[1]}.{slot[2]}" not in assign_slots:
                continue
            rhs = a.rhs
            if rhs[0] == "a":
                v = _value(resolver, fi, a.fn, fid, rhs)
            elif rhs[0] == "f":
                st = prog.type_of(rhs[1], fi, a.fn)
                v = ("entry", f"{st}.{rhs[2]}") if st else None
            else:
                v = None
            if v is not None:
                assigns.append((fid, f"{slot[1]}.{slot[2]}", v, a.guard, ff.path, a.line))
        for c in ff.calls:
            if c.callee[0] != "v":
                continue
            fid = ids[c.caller]
            if fid is None:
                continue
            name = c.callee[1]
            reg = regs.get(name)
            if reg is not None or name in allocators:
                from ..link import parse_args

                args = parse_args(c)
                if reg is not None:
                    arg_i, key_i, registers = reg
                    if arg_i < len(args) and args[arg_i] is not None:
                        found = _registered(prog, resolver, fi, c.caller, fid, args[arg_i], tables, ff)
                        key = None
                        if 0 <= key_i < len(args) and args[key_i] is not None:
                            kv = args[key_i]
                            key = kv[1] if kv[0] in ("v", "n") else None
                        registrations.append((name, registers, found, key, fid, ff.path, c.line))
                k = allocators.get(name, -1)
                if 0 <= k < len(args) and args[k] is not None:
                    v = _prot_value(prog, resolver, fi, c.caller, fid, args[k], ff)
                    if v is not None:
                        allocs.append((fid, v, c.guard, ff.path, c.line))
    # -- stores into rule slots (dst->output, napi->poll, ...) ----------------------------------------
    stores: dict[str, list] = defaultdict(list)
    for struct, field, _state, _f in rules:
        if field == "*":
            continue
        vals = resolver.slots.values.get(("F", struct, field), {})
        for target, ev in sorted(vals.items()):
            for step in ev:
                if step[0] in ("assign", "ops") and step[2]:
                    stores[f"{struct}.{field}"].append((target, step[0], step[1], step[2], step[3]))
    return {"tables": tables, "registrations": registrations, "assigns": assigns, "allocs": allocs,
            "stores": dict(stores), "exits": exits, "fn_stores": fn_stores, "ops_entries": ops_entries}


def _alloc_wrappers(prog, alloc_fn: str, alloc_arg: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """The allocator (sk_alloc: its prot argument's index) and the functions that pass one of their
    own parameters as that argument (bt_sock_alloc(net, sock, prot, ...) calls sk_alloc(..., prot,
    kern)): function name -> index of the prot argument. Wrappers of wrappers too."""
    from ..link import parse_args

    out = {alloc_fn: alloc_arg} if alloc_fn and alloc_arg >= 0 else {}
    for _ in range(4):  # wrapper depth; the kernel has one or two levels
        found = {}
        for fi, ff in enumerate(prog.facts):
            for c in ff.calls:
                if c.callee[0] != "v" or c.callee[1] not in out or c.caller < 0:
                    continue
                args = parse_args(c)
                k = out[c.callee[1]]
                if k < len(args) and args[k] is not None and args[k][0] == "v":
                    kind = prog.local_kind(fi, c.caller, args[k][1])
                    name = ff.functions[c.caller].name
                    if kind is not None and kind[0] == "P" and name not in out:
                        found[name] = kind[1]
        if not found:
            break
        out.update(found)
    return out


def _registered(prog, resolver, fi, fn, fid, arg, tables, ff) -> list[str]:  # type: ignore[no-untyped-def]
    """Tables a registration call's argument names: &table, &a.b, or a local walking an array."""
    if arg[0] == "a":
        name = _access_path(arg[1])
        return [table_id(prog, fi, name)] if name else []
    if arg[0] == "v":
        kind = prog.local_kind(fi, fn, arg[1])
        if kind is None:
            return [table_id(prog, fi, arg[1])]  # a global pointer variable
        out: list[str] = []
        for a in ff.assigns:  # q = inetsw_array (a for loop walking an array of entries)
            if a.fn == fn and a.lhs == ("v", arg[1]):
                src = a.rhs[1] if a.rhs[0] == "a" else a.rhs
                base = _access_path(src)
                if base:
                    base = table_id(prog, fi, base)
                    elems = sorted((n for n in tables if n.startswith(base + "[")), key=_elem_key)
                    out.extend(elems or [base])
        return out
    return []


def _elem_key(name: str) -> tuple:
    idx = name[name.index("[") + 1 : -1]
    return (0, int(idx)) if idx.isdigit() else (1, idx)


def _prot_value(prog, resolver, fi, fn, fid, arg, ff):  # type: ignore[no-untyped-def]
    """What an allocator's prot argument is: a table, or a field of the protosw-like entry."""
    if arg[0] == "a":
        name = _access_path(arg[1])
        return ("table", table_id(prog, fi, name)) if name else None
    if arg[0] == "f":
        st = prog.type_of(arg[1], fi, fn)
        return ("entry", f"{st}.{arg[2]}") if st else None
    if arg[0] == "v" and prog.local_kind(fi, fn, arg[1]) is not None:
        for a in ff.assigns:
            if a.fn == fn and a.lhs == ("v", arg[1]) and a.rhs[0] in ("a", "f"):
                return _prot_value(prog, resolver, fi, fn, fid, a.rhs, ff)
    return None
