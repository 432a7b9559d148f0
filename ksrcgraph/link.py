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

from . import kdata
from .clean import split_args
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
        self.globals: dict[str, list[tuple[str, str, int, bool]]] = defaultdict(list)  # name -> (type, file, fi, array)
        self.file_globals: list[dict[str, tuple[str, bool]]] = [{} for _ in facts]  # static globals per file
        self.structs: dict[str, dict[str, str]] = {}
        self.struct_order: dict[str, list[str]] = {}
        self.typedefs: dict[str, str] = {}
        self.macros: dict[str, list[tuple[Macro, str]]] = defaultdict(list)  # name -> (macro, file)
        self.aliases: dict[str, Expr] = {}  # object-like macro -> field path
        self.protos: dict[str, str] = {}
        self.locals: list[dict[int, dict[str, str]]] = [defaultdict(dict) for _ in facts]
        self.params_of: list[dict[int, dict[str, int]]] = [{} for _ in facts]
        self.fn_params_of: list[dict[int, dict[str, int]]] = [{} for _ in facts]  # params that can hold a function
        self._build()

    # -- construction ------------------------------------------------------------------------
    def _build(self) -> None:
        for fi, ff in enumerate(self.facts):
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
                self.params_of[fi][j] = {p: i for i, (p, _) in enumerate(fn.params)}
            self.fn_ids.append(ids)
            for loc in ff.locals:
                self.locals[fi][loc.fn][loc.name] = loc.type
            for g in ff.globals:
                if dead(g.cond) or g.fn >= 0:
                    continue
                if g.static and not ff.path.endswith(".h"):
                    self.file_globals[fi][g.name] = (g.type, g.array)
                else:
                    self.globals[g.name].append((g.type, ff.path, fi, g.array))
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
            for m in ff.macros:
                if dead(m.cond):
                    continue
                if m.params is None:
                    if m.alias is not None and m.name not in self.aliases:
                        self.aliases[m.name] = m.alias
                else:
                    self.macros[m.name].append((m, ff.path))
            for p in ff.protos:
                self.protos.setdefault(p.name, p.ret)
        # a function-like macro that is also a function: the function wins (the macro is usually
        # the other branch of an #ifdef, e.g. a stub)
        for name in list(self.macros):
            if name in self.funcs:
                del self.macros[name]
        for fi, ff in enumerate(self.facts):
            out = self.fn_params_of[fi]
            for j, fn in enumerate(ff.functions):
                keep = {p: i for i, (p, t) in enumerate(fn.params) if self.may_hold_function(t)}
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

    def global_type(self, fi: int, name: str) -> tuple[str, bool] | None:
        g = self.file_globals[fi].get(name)
        if g is not None:
            return g
        lst = self.globals.get(name)
        if lst:
            for t, _, _, arr in lst:
                if t != "p":
                    return t, arr
            return lst[0][0], lst[0][3]
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

    def field(self, struct: str, name: str, depth: int = 0) -> tuple[str, str, str | None] | None:
        """(owner struct, field, field's struct type) for ``struct.name``, following field
        aliases (#define sk_prot __sk_common.skc_prot). None when unknown."""
        fields = self.structs.get(struct)
        if fields is not None and name in fields:
            return struct, name, self.struct_of(fields[name])
        alias = self.aliases.get(name)
        if alias is not None and depth < 4:
            return self._apply_alias(struct, alias, depth + 1)
        return None

    def _apply_alias(self, struct: str, path: Expr, depth: int) -> tuple[str, str, str | None] | None:
        if path[0] == "v":
            return self.field(struct, path[1], depth)
        if path[0] == "f":
            base = self._apply_alias(struct, path[1], depth)
            if base is None or base[2] is None:
                return None
            return self.field(base[2], path[2], depth)
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
        ms = self.macros.get(name)
        if ms:
            for m, _ in ms:
                if m.type:
                    return self.struct_of(m.type)
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
                t = g[0] if g else None
            return self.struct_of(t)
        if k == "f":
            base = self.type_of(e[1], fi, fn, depth + 1)
            if base is None or base == "fn":
                return None
            f = self.field(base, e[2])
            return f[2] if f else None
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
_TYPE_TEXT = re.compile(r"^\s*(?:const\s+|volatile\s+)*(?:(?:struct|union|enum)\s+)?[A-Za-z_]\w*(?:\s+[A-Za-z_]\w*)*[\s*]*$")
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)
_FIELDS = re.compile(r"^([A-Za-z_]\w*)((?:\s*(?:->|\.)\s*[A-Za-z_]\w*)+)$")
_NUM = re.compile(r"^(?:0[xX][0-9a-fA-F]+|\d+)[uUlL]*$")


def split_arg_text(text: str) -> list[str]:
    """An argument list as written, split on its top-level commas."""
    if not any(ch in text for ch in "([{\"'/"):
        return text.split(",")
    if "/" in text:
        text = _COMMENT.sub(" ", text)
    return [a.decode("utf-8", "replace") for a in split_args(text.encode("utf-8", "replace"))]


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
        close = _close_paren(t)
        if close == len(t) - 1:
            return parse_arg(t[1:-1], depth + 1)
        if close > 0 and _TYPE_TEXT.match(t[1:close]):
            return parse_arg(t[close + 1 :], depth + 1)  # a cast
        return None
    m = _FIELDS.match(t)
    if m:
        e: Expr = ("v", m.group(1))
        for part in re.findall(r"[A-Za-z_]\w*", m.group(2)):
            e = ("f", e, part)
        return e
    if "?" in t and ":" in t and t.count("?") == 1:
        cond, _, rest = t.partition("?")
        a, _, b = rest.partition(":")
        ea, eb = parse_arg(a, depth + 1), parse_arg(b, depth + 1)
        if ea is not None or eb is not None:
            return ("?", ea or ("u",), eb or ("u",))
    return None


def _close_paren(t: str) -> int:
    depth = 0
    for i, ch in enumerate(t):
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
            if depth == 0:
                return i
    return -1


_ARGS_CACHE: dict[str, tuple[Expr | None, ...]] = {}


def parse_args(call: Call) -> tuple[Expr | None, ...]:
    """The arguments of a call site, parsed (cached by text)."""
    text = call.args
    got = _ARGS_CACHE.get(text)
    if got is not None:
        return got
    if not text.strip():
        out: tuple[Expr | None, ...] = ()
    elif not any(ch in text for ch in "([{\"'/"):
        out = tuple(parse_arg(a) for a in text.split(","))
    else:
        clean_text = _COMMENT.sub(" ", text) if "/" in text else text
        out = tuple(parse_arg(a.decode("utf-8", "replace")) for a in split_args(clean_text.encode("utf-8", "replace")))
    if len(_ARGS_CACHE) > 200_000:
        _ARGS_CACHE.clear()
    _ARGS_CACHE[text] = out
    return out
