"""Link-time part of the reference stack: what the model needs, read from the linked program.

In: a ``link.Program`` and the ``flows.Flows`` view ``resolve.build`` made of it. Out:
``build_parts`` — the graph's opaque parts (plain data, stored beside the graph):
 * ``model``:
   * ``tables``: struct instances of the kinds the rules talk about — name → {struct, file, line,
     fields: {field: [("fn", id) | ("table", name) | ("const", text)]}}; array elements are
     ``name[i]``; a compound literal assigned to ``x.y`` is a table named ``x.y``;
   * ``registrations``: calls of the functions in data/registrations.tsv, with the tables they
     register (``Registration`` rows);
   * ``assigns``: ``x->f = &table`` (and ``x->f = entry->f``) inside functions, with their guards
     (``Assignment``);
   * ``allocs``: the table passed to the allocator named in data/refstack_state.tsv, with guards
     (``Alloc``);
   * ``stores``: for the rule slots, every function stored there and where (``Store``);
   * ``exits``: early returns under a socket-type condition (how create functions reject types);
   * ``fn_stores``: ``x->f = function`` inside functions, with guards (state a create path sets;
     ``Assignment`` whose value is the function);
 * ``ops_entries``: every initializer entry that names a function (``table.field`` → functions),
   for ``diff --graph``.
Rows are stored as plain tuples (marshal); the row types here name their fields for readers.
``model_part(cg)`` / ``ops_entries(cg)`` read the parts back from a ``CallGraph``.
"""

from __future__ import annotations

import weakref
from collections import defaultdict
from typing import NamedTuple

from .. import kdata
from ..facts import Expr
from ..flows import Flows, slot_name
from ..link import parse_args
from . import states


class Registration(NamedTuple):
    function: str
    registers: str  # the struct kind it registers (registrations.tsv)
    tables: list  # the tables the argument names
    key: str | None  # the key argument, when the function takes one
    caller: str
    file: str
    line: int


class Assignment(NamedTuple):
    fn: str  # the function that assigns
    slot: str  # "socket.ops"
    value: object  # ("table", id) | ("entry", "S.f") | ("fn", id); a function id in fn_stores
    guard: tuple | None
    file: str
    line: int


class Alloc(NamedTuple):
    fn: str
    value: tuple  # ("table", id) | ("entry", "S.f")
    guard: tuple | None
    file: str
    line: int


class Store(NamedTuple):
    function: str
    how: str  # "assign" | "ops"
    text: str  # the statement (or the table) that stores it
    file: str
    line: int


class Exit(NamedTuple):
    fn: str
    cond: str
    file: str
    line: int


def table_id(prog, fi: int, path: str) -> str:  # type: ignore[no-untyped-def]
    """A table's id: its access path with the base variable's global id (``file::name`` for a
    static), so that two files' ``static ... packet_ops`` stay apart."""
    base, dot, rest = path.partition(".")
    gid = prog.global_id(fi, base.split("[")[0]) or base.split("[")[0]
    return gid + base[len(base.split("[")[0]):] + dot + rest


def _value(prog, fi: int, e: Expr):  # type: ignore[no-untyped-def]
    """("fn", id) | ("table", id) | ("const", text) | None for an initializer or argument value."""
    k = e[0]
    if k == "a":
        inner = e[1]
        name = _access_path(inner)
        if name is not None:
            if inner[0] == "v" and prog.function_for(fi, inner[1]) is not None:
                return ("fn", prog.function_for(fi, inner[1]))
            return ("table", table_id(prog, fi, name))
        return None
    if k == "v":
        target = prog.function_for(fi, e[1])
        if target is not None:
            return ("fn", target)
        return ("const", e[1])
    if k == "n":
        return ("const", e[1])
    if k == "c":
        args = e[2] if len(e) > 2 else ()
        return ("const", f"{e[1]}({', '.join(a[1] for a in args if a[0] in ('v', 'n'))})")
    if k == "x":
        return _value(prog, fi, e[2])
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


def _field_of(path: tuple) -> str:
    """'a.b' for an initializer path ((".", "a"), ("[", "0"), (".", "b"))."""
    return ".".join(str(key) for kind, key in path if kind == ".")


def _table_kinds(rules: tuple, regs: dict) -> set[str]:
    """The struct kinds whose instances become tables: those the rules, the registrations and the
    tables_in states name."""
    kinds = {r.struct for r in rules} | {registers for _arg, _key, registers in regs.values()}
    for s in states.table().values():
        if s.how == "tables_in":
            kinds.add(s.value.split(":", 1)[1])
    return kinds


def _allocator() -> tuple[str, int]:
    """(function, index of its prot argument) of the prot state's allocator; ("", -1) if none."""
    prot = states.bound("prot")
    fn, _, idx = (prot.value if prot is not None else ":").partition(":")
    return fn, int(idx) if idx.isdigit() else -1


class _Collector:
    """One pass over every file's facts: tables, registrations, assignments, allocations, exits."""

    def __init__(self, prog, fl: Flows) -> None:  # type: ignore[no-untyped-def]
        self.p = prog
        self.fl = fl
        self.regs = kdata.registrations()
        self.kinds = _table_kinds(states.rules(), self.regs)
        self.allocators = _alloc_wrappers(prog, *_allocator())
        self.assign_slots = {s.value for s in states.table().values() if s.how in ("assign_to", "init_store")}
        self.tables: dict[str, dict] = {}
        self.ops_entries: dict[str, dict[str, list[str]]] = {}
        self.exits: list[tuple] = []
        self.registrations: list[tuple] = []
        self.assigns: list[tuple] = []
        self.fn_stores: list[tuple] = []
        self.allocs: list[tuple] = []

    def run(self) -> None:
        for fi, ff in enumerate(self.p.facts):
            ids = self.p.fn_ids[fi]
            for ex in ff.exits:
                if ids[ex.fn] is not None:
                    self.exits.append((ids[ex.fn], ex.cond, ff.path, ex.line))
            decl_line = {g.name: g.line for g in ff.globals if g.fn < 0}
            for ini in ff.inits:
                self._init(fi, ff, ini, decl_line)
            for a in ff.assigns:
                if ids[a.fn] is not None:
                    self._assign(fi, ff, a, ids[a.fn])
            for c in ff.calls:
                if c.callee[0] == "v" and ids[c.caller] is not None:
                    self._call(fi, ff, c, ids[c.caller])

    # -- tables from initializers ----------------------------------------------------------------
    def _init(self, fi: int, ff, ini, decl_line: dict[str, int]) -> None:  # type: ignore[no-untyped-def]
        if ini.fn >= 0 or not ini.path and not ini.value:
            return
        g = self.p.global_type(fi, ini.var)
        if g is None:
            return
        gtype, is_array = g
        if ini.value[0] in ("v", "a") and ini.path:
            self._ops_entry(fi, ini)
        struct = self.p.struct_of(gtype)
        if struct not in self.kinds:
            return
        got = self._table_path(fi, ini, struct, is_array)
        if got is None:
            return
        name, field = got
        v = _value(self.p, fi, ini.value)
        if v is None or not field:
            return
        t = self.tables.setdefault(name, {"struct": struct, "file": ff.path,
                                          "line": decl_line.get(ini.var, ini.line), "fields": {}})
        vals = t["fields"].setdefault(field, [])
        if v not in vals:
            vals.append(v)

    def _table_path(self, fi: int, ini, struct: str, is_array: bool) -> tuple[str, str] | None:  # type: ignore[no-untyped-def]
        """(table name, field) an initializer leaf fills: ``arr[i]`` for an element of an array,
        a positional initializer named by the struct's field order."""
        path = ini.path
        name = table_id(self.p, fi, ini.var)
        if is_array and path and path[0][0] in ("#", "["):
            name = f"{name}[{path[0][1]}]"
            path = path[1:]
        if not path:
            return None
        if path[0][0] == "#":
            order = self.p.struct_order.get(struct, [])
            if not isinstance(path[0][1], int) or path[0][1] >= len(order):
                return None
            path = ((".", order[path[0][1]]),) + path[1:]
        return name, _field_of(path)

    def _ops_entry(self, fi: int, ini) -> None:  # type: ignore[no-untyped-def]
        fv = _value(self.p, fi, ini.value)
        if fv is None or fv[0] != "fn":
            return
        tid = table_id(self.p, fi, ini.var)
        fpath = "".join(f".{k}" if kind == "." else f"[{k}]" for kind, k in ini.path).lstrip(".")
        lst = self.ops_entries.setdefault(tid, {}).setdefault(fpath, [])
        if fv[1] not in lst:
            lst.append(fv[1])

    # -- compound literals and assignments ---------------------------------------------------------
    def _assign(self, fi: int, ff, a, fid: str) -> None:  # type: ignore[no-untyped-def]
        if a.rhs[0] == "{":
            self._compound(fi, ff, a)
            return
        slot = self.fl.slot_of(a.lhs, fi, a.fn, fid)
        if not slot or slot[0] != "F":
            return
        sname = slot_name(slot)
        if a.rhs[0] in ("v", "a", "?", "x"):
            for kind, obj in self.fl.sources(a.rhs, fi, a.fn, fid):
                if kind == "fn":
                    self.fn_stores.append((fid, sname, obj, a.guard, ff.path, a.line))
        if sname not in self.assign_slots:
            return
        v = self._assigned(fi, a)
        if v is not None:
            self.assigns.append((fid, sname, v, a.guard, ff.path, a.line))

    def _assigned(self, fi: int, a):  # type: ignore[no-untyped-def]
        """What x->f = &table (a table) or x->f = entry->f (the entry's field) assigns."""
        if a.rhs[0] == "a":
            return _value(self.p, fi, a.rhs)
        if a.rhs[0] == "f":
            st = self.p.type_of(a.rhs[1], fi, a.fn)
            return ("entry", f"{st}.{a.rhs[2]}") if st else None
        return None

    def _compound(self, fi: int, ff, a) -> None:  # type: ignore[no-untyped-def]
        """x.y = (struct T){ ... }: a table named x.y."""
        struct = self.p.struct_of(a.rhs[1])
        name = _access_path(a.lhs)
        if name:
            name = table_id(self.p, fi, name)
        if struct not in self.kinds or not name:
            return
        t = self.tables.setdefault(name, {"struct": struct, "file": ff.path, "line": a.line, "fields": {}})
        for path, value in a.rhs[2]:
            field = _field_of(path)
            v = _value(self.p, fi, value)
            if v is not None and field and v not in t["fields"].setdefault(field, []):
                t["fields"][field].append(v)

    # -- registrations and allocations -------------------------------------------------------------
    def _call(self, fi: int, ff, c, fid: str) -> None:  # type: ignore[no-untyped-def]
        name = c.callee[1]
        reg = self.regs.get(name)
        if reg is None and name not in self.allocators:
            return
        args = parse_args(c)
        if reg is not None:
            self._registration(fi, ff, c, fid, reg, args)
        k = self.allocators.get(name, -1)
        if 0 <= k < len(args) and args[k] is not None:
            v = _prot_value(self.p, fi, c.caller, args[k], ff)
            if v is not None:
                self.allocs.append((fid, v, c.guard, ff.path, c.line))

    def _registration(self, fi: int, ff, c, fid: str, reg: tuple, args: tuple) -> None:  # type: ignore[no-untyped-def]
        arg_i, key_i, registers = reg
        if arg_i >= len(args) or args[arg_i] is None:
            return
        found = _registered(self.p, fi, c.caller, args[arg_i], self.tables, ff)
        key = None
        if 0 <= key_i < len(args) and args[key_i] is not None:
            kv = args[key_i]
            key = kv[1] if kv[0] in ("v", "n") else None
        self.registrations.append((c.callee[1], registers, found, key, fid, ff.path, c.line))


def _stores(fl: Flows) -> dict[str, list[tuple]]:
    """For each rule slot (dst->output, napi->poll, ...), the functions stored there, and where."""
    stores: dict[str, list] = defaultdict(list)
    kinds = states.table()
    for rule in states.rules():
        if rule.field != "*":
            fields = [rule.field]
        elif kinds[rule.state].binds == "stores":  # every field of the struct: neigh->ops->X
            fields = sorted(fl.p.structs.get(rule.struct, {}))
        else:
            continue
        for fld in fields:
            for target, ev in sorted(fl.values(("F", rule.struct, fld)).items()):
                for step in ev:
                    what, text, file, line = step[:4]
                    if what in ("assign", "ops") and file:
                        stores[f"{rule.struct}.{fld}"].append((target, what, text, file, line))
    return dict(stores)


def build_parts(prog, fl: Flows) -> dict:  # type: ignore[no-untyped-def]
    """The reference stack's parts of a graph: {"model": ..., "ops_entries": ...} (see above)."""
    c = _Collector(prog, fl)
    c.run()
    model = {"tables": c.tables, "registrations": c.registrations, "assigns": c.assigns, "allocs": c.allocs,
             "stores": _stores(fl), "exits": c.exits, "fn_stores": c.fn_stores}
    return {"model": model, "ops_entries": c.ops_entries}


_READ: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _part(cg, name: str) -> dict:  # type: ignore[no-untyped-def]
    got = _READ.setdefault(cg, {})
    if name not in got:
        got[name] = cg.part(name) or {}
    return got[name]


def model_part(cg) -> dict:  # type: ignore[no-untyped-def]
    """The ``model`` part of a CallGraph (read once per graph)."""
    return _part(cg, "model")


def ops_entries(cg) -> dict:  # type: ignore[no-untyped-def]
    """The ``ops_entries`` part of a CallGraph: table id -> {field path: [function ids]}."""
    return _part(cg, "ops_entries")


def _alloc_wrappers(prog, alloc_fn: str, alloc_arg: int) -> dict[str, int]:  # type: ignore[no-untyped-def]
    """The allocator (sk_alloc: its prot argument's index) and the functions that pass one of their
    own parameters as that argument (bt_sock_alloc(net, sock, prot, ...) calls sk_alloc(..., prot,
    kern)): function name -> index of the prot argument. Wrappers of wrappers too."""
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


def _registered(prog, fi, fn, arg, tables, ff) -> list[str]:  # type: ignore[no-untyped-def]
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


def _prot_value(prog, fi, fn, arg, ff):  # type: ignore[no-untyped-def]
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
                return _prot_value(prog, fi, fn, a.rhs, ff)
    return None
