"""Stage 6a — link: symbol tables and type inference over the facts of a whole tree.

In: the ``FileFacts`` of every file in scope.
Out: a ``Program``: functions by id (global ``name``; ``path::name`` for a ``static`` function of a
.c file; a header's ``static inline`` counts as global, all its ``#ifdef`` variants merged), call
resolution by name from a file, globals, struct fields, typedefs, macros — and ``type_of``, which
infers the struct type of an expression (``sock->ops`` → ``proto_ops``, ``skb_dst(skb)`` →
``dst_entry``, ``sk->sk_prot`` through the ``#define sk_prot __sk_common.skc_prot`` alias).

Facts under ``#if 0`` are dropped here; every other branch of every conditional is kept.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from typing import NamedTuple

from . import kdata
from .ctext import looks_like_type, match_paren, split_arg_text  # split_arg_text: resolve reads it here
from .facts import Call, Expr, FileFacts, Function, Macro

_DEAD = re.compile(r"(?:^|&& )0(?: &&|$)")


def dead(cond: str) -> bool:
    """True for facts under ``#if 0`` (directly or in a conjunction)."""
    return bool(cond) and _DEAD.search(cond) is not None


@dataclass
class Def:
    file: str
    line: int
    end_line: int
    cond: str
    static: bool
    inline: bool
    definer: str | None
    fi: int  # file index
    fn: int  # function index within the file
    signature: str = ""


@dataclass
class FuncInfo:
    id: str
    name: str
    defs: list[Def] = field(default_factory=list)
    ret: str | None = None
    params: tuple[tuple[str, str], ...] = ()

    _primary: Def | None = None

    @property
    def primary(self) -> Def:
        """The definition to show: a .c file before a header, then the first by path and line."""
        if self._primary is None:
            self._primary = min(self.defs, key=lambda d: (d.file.endswith(".h"), d.file, d.line))
        return self._primary


class GlobalDef(NamedTuple):
    """A global variable visible from every file (a header's, or a non-static one)."""

    type: str
    file: str
    fi: int
    array: bool


class GlobalType(NamedTuple):
    type: str
    array: bool


class MacroDef(NamedTuple):
    macro: Macro
    file: str


class FieldRef(NamedTuple):
    """A field found in a struct: the struct that owns it, its name, its own struct type (or 'fn')."""

    owner: str
    name: str
    type: str | None


def function_id(path: str, fn: Function) -> str:
    if fn.static and not path.endswith(".h"):
        return f"{path}::{fn.name}"
    return fn.name


def syscall_base(name: str) -> str | None:
    """'__x64_sys_sendto' -> 'sendto'; None when name has no syscall prefix."""
    if "sys" not in name:
        return None
    for p in kdata.syscall_prefixes():
        if name.startswith(p) and len(name) > len(p):
            return name[len(p) :]
    return None


class Program:
    """Everything link and resolve need to look up, built once from the facts."""

    def __init__(self, facts: list[FileFacts]) -> None:
        self.facts = facts
        self.funcs: dict[str, FuncInfo] = {}
        self.file_statics: list[dict[str, str]] = [{} for _ in facts]  # per file: name -> id
        self.fn_ids: list[list[str | None]] = []  # per file, per function index: id (None if dropped)
        self.globals: dict[str, list[GlobalDef]] = defaultdict(list)
        self.file_globals: list[dict[str, GlobalType]] = [{} for _ in facts]  # static globals per file
        self.structs: dict[str, dict[str, str]] = {}
        self.struct_order: dict[str, list[str]] = {}
        self.typedefs: dict[str, str] = {}
        self.macros: dict[str, list[MacroDef]] = defaultdict(list)
        self.aliases: dict[str, Expr] = {}  # object-like macro -> field path
        self.protos: dict[str, str] = {}
        self.locals: list[dict[int, dict[str, str]]] = [defaultdict(dict) for _ in facts]
        self.params_of: list[dict[int, dict[str, int]]] = [{} for _ in facts]
        self.fn_params_of: list[dict[int, dict[str, int]]] = [{} for _ in facts]  # params that can hold a function
        self._build()

    # -- construction ------------------------------------------------------------------------
    def _build(self) -> None:
        for fi, ff in enumerate(self.facts):
            self.fn_ids.append(self._add_functions(fi, ff))
            self._add_locals(fi, ff)
            self._add_globals(fi, ff)
            self._add_types(ff)
            self._add_macros(ff)
            for p in ff.protos:
                if self.protos.get(p.name, "p") == "p":  # a typed declaration wins over a scalar one
                    self.protos[p.name] = p.ret
        self._drop_macros_named_like_functions()
        self._find_function_params()

    def _add_functions(self, fi: int, ff: FileFacts) -> list[str | None]:
        """Record the live functions of one file; their ids by function index (None: under #if 0)."""
        ids: list[str | None] = []
        for j, fn in enumerate(ff.functions):
            if dead(fn.cond):
                ids.append(None)
                continue
            fid = function_id(ff.path, fn)
            ids.append(fid)
            info = self.funcs.get(fid)
            if info is None:
                info = self.funcs[fid] = FuncInfo(fid, fn.name)
            info.defs.append(Def(ff.path, fn.line, fn.end_line, fn.cond, fn.static, fn.inline, fn.definer, fi, j,
                                 fn.signature))
            if info.ret is None and fn.ret:
                info.ret = fn.ret
            if not info.params and fn.params:
                info.params = fn.params
            if fid != fn.name:
                self.file_statics[fi][fn.name] = fid
            self.params_of[fi][j] = {name: i for i, (name, _type) in enumerate(fn.params)}
        return ids

    def _add_locals(self, fi: int, ff: FileFacts) -> None:
        for loc in ff.locals:
            self.locals[fi][loc.fn][loc.name] = loc.type

    def _add_globals(self, fi: int, ff: FileFacts) -> None:
        for g in ff.globals:
            if dead(g.cond) or g.fn >= 0:
                continue
            if g.static and not ff.path.endswith(".h"):
                self.file_globals[fi][g.name] = GlobalType(g.type, g.array)
            else:
                self.globals[g.name].append(GlobalDef(g.type, ff.path, fi, g.array))

    def _add_types(self, ff: FileFacts) -> None:
        """Struct fields (a known type beats 'p', first seen wins otherwise) and typedefs."""
        for st in ff.structs:
            fields = self.structs.setdefault(st.name, {})
            order = self.struct_order.setdefault(st.name, [])
            for f in st.fields:
                if f.name not in fields or fields[f.name] == "p":
                    fields[f.name] = f.type
                if f.name not in order:
                    order.append(f.name)
        for td in ff.typedefs:
            if td.name not in self.typedefs or self.typedefs[td.name] == "p":
                self.typedefs[td.name] = td.type

    def _add_macros(self, ff: FileFacts) -> None:
        for m in ff.macros:
            if dead(m.cond):
                continue
            if m.params is None:
                if m.alias is not None and m.name not in self.aliases:
                    self.aliases[m.name] = m.alias
            else:
                self.macros[m.name].append(MacroDef(m, ff.path))

    def _drop_macros_named_like_functions(self) -> None:
        """A function-like macro that is also a function: the function wins (the macro is usually
        the other branch of an #ifdef, e.g. a stub)."""
        for name in list(self.macros):
            if name in self.funcs:
                del self.macros[name]

    def _find_function_params(self) -> None:
        """Per function, the parameters whose type can carry a function."""
        for fi, ff in enumerate(self.facts):
            out = self.fn_params_of[fi]
            for j, fn in enumerate(ff.functions):
                keep = {name: i for i, (name, ptype) in enumerate(fn.params) if self.may_hold_function(ptype)}
                if keep:
                    out[j] = keep

    def may_hold_function(self, t: str) -> bool:
        """A parameter of this type can carry a function: a function pointer, or a typedef we
        cannot see through (structs and scalars cannot)."""
        if t == "fn":
            return True
        if t.startswith("t:"):
            st = self.struct_of(t)
            return st is None or st == "fn"
        return False

    # -- names -------------------------------------------------------------------------------
    def function_for(self, fi: int, name: str) -> str | None:
        """The function a call of ``name`` from file fi reaches (a static of that file first)."""
        fid = self.file_statics[fi].get(name)
        if fid is not None:
            return fid
        return name if name in self.funcs else None

    def global_type(self, fi: int, name: str) -> GlobalType | None:
        """Type of the global ``name`` seen from file fi: its own static first, then the first
        declaration with a known type, then the first one."""
        g = self.file_globals[fi].get(name)
        if g is not None:
            return g
        defs = self.globals.get(name)
        if defs:
            for d in defs:
                if d.type != "p":
                    return GlobalType(d.type, d.array)
            return GlobalType(defs[0].type, defs[0].array)
        return None

    def global_id(self, fi: int, name: str) -> str | None:
        if name in self.file_globals[fi]:
            return f"{self.facts[fi].path}::{name}"
        return name if name in self.globals else None

    # -- types -------------------------------------------------------------------------------
    def struct_of(self, t: str | None, depth: int = 0) -> str | None:
        """Struct tag a TypeRef stands for (following typedefs); 'fn' for function pointers."""
        while t and depth < 12:
            if t.startswith("s:"):
                return t[2:]
            if t == "fn":
                return "fn"
            if t.startswith("t:"):
                name = t[2:]
                nt = self.typedefs.get(name)
                if nt is None:
                    return name if name in self.structs else None
                t = nt
                depth += 1
                continue
            return None
        return None

    def field(self, struct: str, name: str, depth: int = 0) -> FieldRef | None:
        """The field ``struct.name``, following field aliases (#define sk_prot
        __sk_common.skc_prot). None when unknown."""
        fields = self.structs.get(struct)
        if fields is not None and name in fields:
            return FieldRef(struct, name, self.struct_of(fields[name]))
        alias = self.aliases.get(name)
        if alias is not None and depth < 4:
            return self._apply_alias(struct, alias, depth + 1)
        return None

    def _apply_alias(self, struct: str, path: Expr, depth: int) -> FieldRef | None:
        if path[0] == "v":
            return self.field(struct, path[1], depth)
        if path[0] == "f":
            base = self._apply_alias(struct, path[1], depth)
            if base is None or base.type is None:
                return None
            return self.field(base.type, path[2], depth)
        return None

    def ret_type(self, fi: int, name: str) -> str | None:
        fid = self.function_for(fi, name)
        if fid is not None:
            r = self.funcs[fid].ret
            if r:
                return self.struct_of(r)
        r = self.protos.get(name)
        if r:
            return self.struct_of(r)
        for md in self.macros.get(name, ()):
            if md.macro.type:
                return self.struct_of(md.macro.type)
        return None

    def type_of(self, e: Expr, fi: int, fn: int, depth: int = 0) -> str | None:
        """Struct tag (or 'fn') of expression e inside function fn of file fi."""
        if depth > 16:
            return None
        k = e[0]
        if k == "v":
            t = self.locals[fi].get(fn, {}).get(e[1]) if fn >= 0 else None
            if t is None:
                g = self.global_type(fi, e[1])
                t = g.type if g else kdata.typed_names().get(e[1])
            return self.struct_of(t)
        if k == "f":
            base = self.type_of(e[1], fi, fn, depth + 1)
            if base is None or base == "fn":
                return None
            f = self.field(base, e[2])
            return f.type if f else None
        if k == "c":
            return self.ret_type(fi, e[1])
        if k == "x":
            return self.struct_of(e[1]) or self.type_of(e[2], fi, fn, depth + 1)
        if k == "t":
            return self.struct_of(e[1])
        if k in ("i", "d", "a"):
            return self.type_of(e[1], fi, fn, depth + 1)
        if k == "?":
            return self.type_of(e[1], fi, fn, depth + 1) or self.type_of(e[2], fi, fn, depth + 1)
        return None

    def local_kind(self, fi: int, fn: int, name: str) -> tuple[str, int] | None:
        """('P', index) for a parameter, ('L', 0) for a local variable, None otherwise."""
        p = self.params_of[fi].get(fn)
        if p is not None and name in p:
            return ("P", p[name])
        if name in self.locals[fi].get(fn, {}):
            return ("L", 0)
        return None


# ------------------------------------------------------------------------------------------------
# call arguments are stored as text; the few that matter are parsed here, on demand

_IDENT = re.compile(r"^[A-Za-z_]\w*$")
_FIELDS = re.compile(r"^([A-Za-z_]\w*)((?:\s*(?:->|\.)\s*[A-Za-z_]\w*)+)$")
_NUM = re.compile(r"^(?:0[xX][0-9a-fA-F]+|\d+)[uUlL]*$")

def parse_arg(text: str, depth: int = 0) -> Expr | None:
    """One argument as written -> Expr, for the forms that can carry a function or a table."""
    t = text.strip()
    if not t or depth > 4:
        return None
    if _IDENT.match(t):
        return ("v", t)
    if _NUM.match(t):
        return ("n", t)
    if t[0] == "&":
        inner = parse_arg(t[1:], depth + 1)
        return ("a", inner) if inner is not None else None
    if t[0] == "(":
        return _parse_parenthesized(t, depth)
    m = _FIELDS.match(t)
    if m:
        e: Expr = ("v", m.group(1))
        for part in re.findall(r"[A-Za-z_]\w*", m.group(2)):
            e = ("f", e, part)
        return e
    if "?" in t and ":" in t and t.count("?") == 1:
        return _parse_conditional(t, depth)
    return None


def _parse_parenthesized(t: str, depth: int) -> Expr | None:
    """'(x)' -> x; '(struct T *)x' -> x (a cast: the receiver's type comes from elsewhere)."""
    close = match_paren(t, 0, len(t))
    if close == len(t) - 1:
        return parse_arg(t[1:-1], depth + 1)
    if close > 0 and looks_like_type(t[1:close]):
        return parse_arg(t[close + 1 :], depth + 1)
    return None


def _parse_conditional(t: str, depth: int) -> Expr | None:
    _cond, _, rest = t.partition("?")
    a, _, b = rest.partition(":")
    ea, eb = parse_arg(a, depth + 1), parse_arg(b, depth + 1)
    if ea is not None or eb is not None:
        return ("?", ea or ("u",), eb or ("u",))
    return None


_ARGS_CACHE: dict[str, tuple[Expr | None, ...]] = {}


def parse_args(call: Call) -> tuple[Expr | None, ...]:
    """The arguments of a call site, parsed (cached by text)."""
    text = call.args
    got = _ARGS_CACHE.get(text)
    if got is not None:
        return got
    out = tuple(parse_arg(a) for a in split_arg_text(text)) if text.strip() else ()
    if len(_ARGS_CACHE) > 200_000:
        _ARGS_CACHE.clear()
    _ARGS_CACHE[text] = out
    return out
