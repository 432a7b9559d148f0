"""Scope-based cleanup (``include/linux/cleanup.h``, kernels since 6.5): the classes its ``DEFINE_*``
macros define, and the uses of those classes inside functions.

In: a ``FileContext`` after the query extractors ran (function spans, ``#if`` map, rare branches).
Out: appended to the context —

* per definer invocation standing at the top level (``DEFINE_CLASS(fd, struct fd, fdput(_T),
  fdget(fd), int fd)``; the definers and the roles of their arguments are data,
  ``data/cleanup_definers.tsv``): ``Macro`` facts named as the kernel names the functions the definer
  makes (``class_fd_constructor`` with the calls of the init expression, ``class_fd_destructor`` with
  those of the exit expression, ``__free_kfree``), their alias ``("v", definer)``. Clean blanks these
  lines (top-level invocations), so they are read from the raw bytes;
* per use inside a function (``CLASS(fd, f)(fd)``, ``guard(mutex)(&m)``, ``scoped_guard(mutex, &m) {
  ... }``, ``p __free(kfree)``; ``data/cleanup_uses.tsv``): a ``Call`` of the constructor, its
  wrapper ``facts.CLEANUP_INIT``, and a ``Call`` of the destructor, its wrapper ``facts.SCOPE_EXIT``
  followed by the line where the scope ends; their candidates: (class name, name template), so that
  a class named through an object-like macro (``scoped_guard(RSEQ_EVENT_GUARD)``) can be renamed.

The file alone cannot tell what a class does (its definer sits in a header): ``resolve_cleanup`` reads
the uses against the macros of the whole program. A tree without these ``DEFINE_*`` lines has no such
macros, and its uses make no edges.
"""

from __future__ import annotations

import re
from functools import cache

from tree_sitter import Node

from . import kdata
from .ctext import match_paren, split_args
from .extract_context import FileContext
from .extract_preproc import _function_like
from .facts import CLEANUP_INIT, SCOPE_EXIT, Call

_IDENT = re.compile(r"^[A-Za-z_]\w*$")
_PARAM_NAME = re.compile(r"([A-Za-z_]\w*)\s*(?:\[[^\]]*\]\s*)*$")
_NOT_CODE = frozenset(("comment", "string_literal", "string_content", "char_literal", "preproc_arg",
                       "system_lib_string"))


@cache
def _definer_re() -> re.Pattern[bytes]:
    names = sorted(kdata.cleanup_definers(), key=len, reverse=True)
    return re.compile(rb"^[ \t]*(" + b"|".join(re.escape(n.encode()) for n in names) + rb")[ \t]*\(", re.M)


@cache
def _use_re() -> re.Pattern[bytes]:
    names = sorted(kdata.cleanup_uses(), key=len, reverse=True)
    return re.compile(rb"(?<![\w.>])(" + b"|".join(re.escape(n.encode()) for n in names) + rb")\s*\(")


def scan(ctx: FileContext) -> None:
    """The cleanup classes defined in the file and the uses of cleanup classes in its functions."""
    if b"DEFINE_" in ctx.raw or b"EXTEND_CLASS" in ctx.raw:
        _definitions(ctx)
    if ctx.functions:
        _uses(ctx)


def _not_code(ctx: FileContext, pos: int) -> bool:
    """The byte at pos is in a comment, a string or a directive (the definers' own #defines)."""
    n: Node | None = ctx.root.descendant_for_byte_range(pos, pos + 1)
    while n is not None:
        if n.type in _NOT_CODE or n.type.startswith("preproc_def") or n.type == "preproc_function_def":
            return True
        if n.type in ("compound_statement", "translation_unit", "function_definition"):
            return False
        n = n.parent
    return False


def _arguments(raw: bytes, open_pos: int) -> tuple[list[str], int] | None:
    close = match_paren(raw, open_pos, limit=8000)
    if close < 0:
        return None
    args = [" ".join(a.decode("utf-8", "replace").replace("\\\n", " ").split()) for a in split_args(raw[open_pos + 1 : close])]
    return args, close


def _line(ctx: FileContext, pos: int) -> int:
    return ctx.raw.count(b"\n", 0, pos) + 1


# -- definitions --------------------------------------------------------------------------------

def _definitions(ctx: FileContext) -> None:
    table = kdata.cleanup_definers()
    for m in _definer_re().finditer(ctx.raw):
        start = m.start(1)
        got = _arguments(ctx.raw, m.end() - 1)
        if got is None or _not_code(ctx, start):
            continue
        args = got[0]
        definer = m.group(1).decode()
        d = table[definer]
        if d.name >= len(args) or not _IDENT.match(args[d.name]):
            continue
        cls = args[d.name] + (args[d.ext] if 0 <= d.ext < len(args) and _IDENT.match(args[d.ext]) else "")
        line, cond = _line(ctx, start), ctx.cond_at(start)
        if 0 <= d.init < len(args) and d.constructor != "-":
            params = d.params if d.params_at < 0 else tuple(_param_name(a) for a in args[d.params_at :] if a)
            _add_class_macro(ctx, d.constructor.format(name=cls), params, args[d.init], line, cond, definer)
        exit_expr = (d.destructor.format(name=args[d.name]) + "(_T)" if d.exit == -2
                     else args[d.exit] if 0 <= d.exit < len(args) else None)
        if exit_expr is not None:
            _add_class_macro(ctx, d.destructor.format(name=cls), ("_T",), exit_expr, line, cond, definer)


def _param_name(decl: str) -> str:
    """``int fd`` -> ``fd``; ``struct file *f`` -> ``f``."""
    m = _PARAM_NAME.search(decl)
    return m.group(1) if m else decl


def _add_class_macro(ctx: FileContext, name: str, params: tuple[str, ...], expr: str, line: int, cond: str,
                     definer: str) -> None:
    mac = _function_like(name, params, expr, line, cond, ctx.container)
    ctx.macros.append(mac._replace(alias=("v", definer), type=None))


# -- uses ---------------------------------------------------------------------------------------

def _uses(ctx: FileContext) -> None:
    table = kdata.cleanup_uses()
    for m in _use_re().finditer(ctx.raw):
        pos = m.start(1)
        fi = ctx.fn_at(pos)
        if fi < 0:
            continue
        got = _arguments(ctx.raw, m.end() - 1)
        if got is None or _not_code(ctx, pos):
            continue
        args, close = got
        u = table[m.group(1).decode()]
        if u.cls >= len(args) or not _IDENT.match(args[u.cls]):
            continue
        ctor_args = _constructor_args(ctx.raw, u, args, close)
        if u.args == -1 and ctor_args is None:
            continue  # CLASS(name, var) without its argument list: not a use
        text = " ".join(ctx.raw[pos : close + 1].decode("utf-8", "replace").split())[:120]
        line, cond, cold = _line(ctx, pos), ctx.cond_at(pos), ctx.cold_at(pos)
        cls = args[u.cls]
        if ctor_args is not None and u.constructor != "-":
            ctx.calls.append(Call(fi, line, ("v", u.constructor.format(name=cls)), text, ctor_args, cond,
                                  (cls, u.constructor), CLEANUP_INIT, None, cold))
        end = _scope_end(ctx, pos, u.body)
        ctx.calls.append(Call(fi, line, ("v", u.destructor.format(name=cls)), text, "", cond,
                              (cls, u.destructor), f"{SCOPE_EXIT}{end}", None, cold))


def _constructor_args(raw: bytes, u: kdata.CleanupUse, args: list[str], close: int) -> str | None:
    """The constructor's argument list as written, or None when the use calls no constructor."""
    if u.args >= 0:
        return ", ".join(args[u.args :]) if u.args <= len(args) else None
    if u.args == -1:
        j = close + 1
        while j < len(raw) and raw[j : j + 1] in b" \t\r\n\\":
            j += 1
        if raw[j : j + 1] == b"(":
            got = _arguments(raw, j)
            if got is not None:
                return ", ".join(got[0])
    return None


def _scope_end(ctx: FileContext, pos: int, body: bool) -> int:
    """The line where the scope of a use ends: the end of the statement a scoped_guard heads (clean
    made it a ``while``), else the closing brace of the enclosing block."""
    n: Node | None = ctx.root.descendant_for_byte_range(pos, pos + 1)
    if body:
        w = n
        while w is not None and w.type != "while_statement" and w.start_byte == pos:
            w = w.parent
        stmt = w.child_by_field_name("body") if w is not None and w.type == "while_statement" else None
        if stmt is not None:
            return stmt.end_point[0] + 1
    while n is not None and n.type != "compound_statement":
        n = n.parent
    return n.end_point[0] + 1 if n is not None else _line(ctx, pos)


def is_use_call(ctx: FileContext, callee: Node) -> bool:
    """``CLASS(fd, f)`` as the callee of ``CLASS(fd, f)(fd)``: the use is read by ``scan``, not as a
    call through a computed pointer."""
    if callee.type != "call_expression":
        return False
    fn = callee.child_by_field_name("function")
    if fn is None or fn.type != "identifier":
        return False
    u = kdata.cleanup_uses().get(ctx.text(fn))
    return u is not None and u.args == -1
