"""Extractors for definitions and declarations: ``functions.scm``, ``declarations.scm``,
``structs.scm``, ``typedefs.scm``.

In: a ``FileContext`` and the matches of one query file (capture name -> nodes).
Out: appended to the context — ``Function`` and the ``Local`` of each parameter; ``Global``,
``Local``, ``Init``, ``Proto`` and the ``Assign`` of an initialized local; ``Struct``; ``Typedef``.
"""

from __future__ import annotations

import re

from tree_sitter import Node

from . import kdata
from .extract_context import FileContext, Match
from .extract_nodes import Decl, anonymous_body
from .facts import Assign, Expr, Field, Function, Global, Init, Local, Proto, Struct, Typedef, TypeRef

_HEAD_STOPS = ("function_declarator", "pointer_declarator", "compound_statement")
_SCALAR_TYPES = ("primitive_type", "sized_type_specifier")
_DEFINER_CALL = re.compile(rb"\s*([A-Z][A-Z0-9_]*DEFINE[0-9]*)\s*\(")
_LOCAL_VALUE_KINDS = ("v", "a", "f", "?", "x", "t")  # an initialized local that may hold a function
_GLOBAL_VALUE_KINDS = ("v", "a", "n", "c", "x", "?")


# -- functions ----------------------------------------------------------------------------------

def functions(ctx: FileContext, matches: list[Match]) -> None:
    """Function definitions, their parameters as locals, and their byte spans (for fn_at)."""
    prefixes = kdata.definer_prefixes()
    for m in matches:
        fnode = m["function"][0]
        decl_node = m["function.declarator"][0]
        d = ctx.decl(decl_node)
        if d.name is None or not d.function:
            continue
        static, inline = _function_storage(ctx, fnode)
        ret = ctx.spec_type(fnode.child_by_field_name("type"))
        params = _params(ctx, d)
        definer = None
        if d.name.startswith(prefixes) and ctx.src[decl_node.start_byte : decl_node.start_byte + 1]:
            definer = _definer(ctx, fnode)
        body = m["function.body"][0]
        head = " ".join(ctx.src[fnode.start_byte : body.start_byte].decode("utf-8", "replace").split())[:300]
        fn = Function(d.name, decl_node.start_point[0] + 1, fnode.end_point[0] + 1, static, inline,
                      None if ret == "p" else ret, tuple(params), ctx.cond_at(fnode.start_byte), definer, head,
                      "" if definer else _blanked_words(ctx, fnode.start_byte, body.start_byte))  # a definer's head is rewritten
        idx = ctx.add_function(fn, fnode)
        for pname, ptype in params:
            ctx.locals.append(Local(idx, pname, ptype))
    _file_scope_markers(ctx)


_WORD = re.compile(rb"[A-Za-z_]\w*")
_LOOK_BACK = 512  # bytes before a function's head searched for the words clean blanked
_MARKER = re.compile(rb"(?m)^[ \t]*(?:(?:static|const)[ \t]+)*([A-Za-z_]\w*)[ \t]*\(([^()]{0,600})\)")


def _blanked_words(ctx: FileContext, start: int, end: int) -> str:
    """The identifiers clean blanked in a function's head (start..end), and on the same line before
    it (``__visible noinstr void f(...)``: the definition starts at ``void``), or on a line of their
    own right above it (``noinline\nstatic int f(...)``)."""
    raw, src = ctx.raw, ctx.src
    floor = max(0, start - _LOOK_BACK)  # bounded: a file on one line must not cost a scan per function
    line = max(src.rfind(b"\n", floor, start) + 1, floor)
    above = max(src.rfind(b"\n", floor, max(line - 1, 0)) + 1, floor) if line > floor else line
    if line and not src[above:line].strip() and re.fullmatch(rb"[\w \t]*\n", raw[above:line]):
        line = above
    words = [m.group().decode() for m in _WORD.finditer(raw, line, end) if not src[m.start() : m.end()].strip()]
    return " ".join(dict.fromkeys(words))


def _file_scope_markers(ctx: FileContext) -> None:
    """A macro invoked at file scope with one of the file's functions as an argument —
    ``EXPORT_SYMBOL(f);``, ``NOKPROBE_SYMBOL(f);``, ``late_initcall(f);``, ``static
    DECLARE_WORK(w, f);`` — is added to that function's attrs as ``NAME()``: its address is taken
    there, where no call or initializer fact sees it."""
    if not ctx.functions:
        return
    names = {fn.name for fn in ctx.functions}
    marks: dict[str, list[str]] = {}
    for m in _MARKER.finditer(ctx.raw):
        if ctx.fn_at(m.start(1)) >= 0:
            continue
        for arg in m.group(2).decode("utf-8", "replace").split(","):
            if arg.strip() in names:
                marks.setdefault(arg.strip(), []).append(m.group(1).decode() + "()")
    for i, fn in enumerate(ctx.functions):
        if fn.name in marks:
            ctx.functions[i] = fn._replace(attrs=" ".join(dict.fromkeys(fn.attrs.split() + marks[fn.name])))


def _function_storage(ctx: FileContext, fnode: Node) -> tuple[bool, bool]:
    """(static, inline) from the storage class words before the declarator."""
    static = inline = False
    for ch in fnode.children:
        if ch.type == "storage_class_specifier":
            w = ctx.text(ch)
            static |= w == "static"
            inline |= "inline" in w
        elif ch.type in _HEAD_STOPS:
            break
    return static, inline


def _params(ctx: FileContext, d: Decl) -> list[tuple[str, TypeRef]]:
    params: list[tuple[str, TypeRef]] = []
    if d.params is None:
        return params
    for p in d.params.named_children:
        if p.type != "parameter_declaration":
            continue
        pd = ctx.decl(p.child_by_field_name("declarator"))
        if pd.name is None:
            continue
        ptype = "fn" if pd.funcptr or pd.function else ctx.spec_type(p.child_by_field_name("type"))
        params.append((pd.name, ptype))
    return params


def _definer(ctx: FileContext, fnode: Node) -> str | None:
    """A head rewritten by clean from a definer macro: the raw text still names the macro."""
    mm = _DEFINER_CALL.match(ctx.raw[fnode.start_byte : fnode.start_byte + 40])
    return mm.group(1).decode() if mm else None


# -- declarations -------------------------------------------------------------------------------

def declarations(ctx: FileContext, matches: list[Match]) -> None:
    """Prototypes (for their return type), locals, static locals and globals with initializers."""
    for m in matches:
        dnode = m["decl"][0]
        tnode = m["decl.type"][0]
        dcl = m["decl.declarator"][0]
        if tnode.type in _SCALAR_TYPES and _plain_name(dcl):
            continue  # int err = 0; — cannot hold a function or a table
        d = ctx.decl(dcl)
        if d.name is None:
            continue
        fi = ctx.fn_at(dnode.start_byte)
        if d.function:
            if fi < 0:
                _prototype(ctx, d, tnode)
            continue
        ty = "fn" if d.funcptr else ctx.spec_type(tnode)
        table = d.init is not None and d.init.type == "initializer_list"
        static = _is_static(ctx, dnode, tnode) if fi < 0 or table else False
        if fi >= 0 and not (static and table):
            _local(ctx, fi, d, ty, dnode)
        else:
            _global(ctx, fi, d, ty, static, dnode, dcl)


def _plain_name(dcl: Node) -> bool:
    t = dcl.type
    return t == "identifier" or (t == "init_declarator" and dcl.child(0).type == "identifier")


def _is_static(ctx: FileContext, dnode: Node, tnode: Node) -> bool:
    static = False
    for ch in dnode.children:
        if ch.type == "storage_class_specifier":
            static |= ctx.text(ch) == "static"
        elif ch is tnode:
            break
    return static


def _prototype(ctx: FileContext, d: Decl, tnode: Node) -> None:
    """Every declared function: its return type types calls, and its name tells a macro call that
    stands for an out-of-scope function under some configuration (mutex_lock)."""
    ctx.protos.append(Proto(d.name, ctx.spec_type(tnode)))


def _local(ctx: FileContext, fi: int, d: Decl, ty: TypeRef, dnode: Node) -> None:
    """A local variable; its initializer is an assignment when it may carry a function."""
    ctx.locals.append(Local(fi, d.name, ty))
    if d.init is None:
        return
    if d.init.type == "initializer_list":
        _local_fields(ctx, fi, d, dnode)
        return
    rhs = ctx.expr(d.init)
    if rhs[0] in _LOCAL_VALUE_KINDS:
        ctx.assigns.append(Assign(fi, d.init.start_point[0] + 1, ("v", d.name), rhs, ctx.text(dnode)[:160],
                                  ctx.cond_at(dnode.start_byte), None))


def _local_fields(ctx: FileContext, fi: int, d: Decl, dnode: Node) -> None:
    """``struct unix_stream_read_state state = { .recv_actor = f, ... };`` — each designated field
    that may carry a function is an assignment ``state.recv_actor = f``."""
    leaves: list = []
    ctx.init_leaves(d.init, (), leaves)
    for lpath, lval, lnode in leaves:
        if not lpath or any(step != "." for step, _ in lpath) or lval[0] not in _LOCAL_VALUE_KINDS:
            continue
        lhs: Expr = ("v", d.name)
        for _, fld in lpath:
            lhs = ("f", lhs, fld)
        text = f"{d.name}.{'.'.join(str(f) for _, f in lpath)} = {ctx.text(lnode)}"
        ctx.assigns.append(Assign(fi, lnode.start_point[0] + 1, lhs, lval, text[:160], ctx.cond_at(lnode.start_byte),
                                  None))


def _global(ctx: FileContext, fi: int, d: Decl, ty: TypeRef, static: bool, dnode: Node, dcl: Node) -> None:
    """A file-scope variable or a static local table, with the leaves of its initializer."""
    cond = ctx.cond_at(dnode.start_byte)
    ctx.globals.append(Global(d.name, ty, static, dcl.start_point[0] + 1, cond, d.array, fi))
    if d.init is None:
        return
    if d.init.type == "initializer_list":
        leaves: list = []
        ctx.init_leaves(d.init, (), leaves)
        for lpath, lval, lnode in leaves:
            ctx.inits.append(Init(d.name, lnode.start_point[0] + 1, lpath, lval, ctx.cond_at(lnode.start_byte), fi))
        return
    v = ctx.expr(d.init)
    if v[0] in _GLOBAL_VALUE_KINDS:
        ctx.inits.append(Init(d.name, d.init.start_point[0] + 1, (), v, cond, fi))


# -- structs and typedefs -----------------------------------------------------------------------

def structs(ctx: FileContext, matches: list[Match]) -> None:
    """Tagged struct and union definitions with their fields."""
    for m in matches:
        snode = m["struct"][0]
        fields: list[Field] = []
        sname = ctx.text(m["struct.name"][0])
        scond = ctx.cond_at(snode.start_byte)
        ctx.collect_fields(m["struct.body"][0], fields, 0, sname, ctx.structs, scond)
        ctx.structs.append(Struct(sname, snode.start_point[0] + 1, tuple(fields), scond))


def typedefs(ctx: FileContext, matches: list[Match]) -> None:
    """Typedefs; ``typedef struct { ... } name;`` also makes a struct named after the typedef."""
    for m in matches:
        tnode = m["typedef.type"][0]
        d = ctx.decl(m["typedef.declarator"][0])
        if d.name is None:
            continue
        line = m["typedef"][0].start_point[0] + 1
        if d.funcptr or d.function:
            ctx.typedefs.append(Typedef(d.name, "fn", line))
            continue
        ty = ctx.spec_type(tnode)
        body = anonymous_body(tnode)
        if body is not None:
            fields: list[Field] = []
            tcond = ctx.cond_at(tnode.start_byte)
            ctx.collect_fields(body, fields, 0, d.name, ctx.structs, tcond)
            ctx.structs.append(Struct(d.name, line, tuple(fields), tcond))
            ty = "s:" + d.name
        ctx.typedefs.append(Typedef(d.name, ty, line))
