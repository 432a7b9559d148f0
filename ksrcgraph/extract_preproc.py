"""Extractors for the preprocessor: ``conditions.scm`` and ``macros.scm``.

In: a ``FileContext`` and the matches of one query file (capture name -> nodes).
Out: the context's ``#if`` map (every other fact records the condition it sits under), and
``Macro`` facts: function-like macros with the calls in their bodies (bodies are opaque text to the
grammar, so they are read here as text), object-like macros that alias a field path.
"""

from __future__ import annotations

import re

from .ctext import match_paren, split_args, type_from_text
from .extract_context import Conditions, FileContext, Match
from .facts import Expr, Macro, TypeRef

_CALL_IN_BODY = re.compile(r"(?<![\w.>])(\(\s*)?([A-Za-z_]\w*)\s*(\))?\s*\(")
_NOT_CALLS = frozenset(
    "if while for switch return sizeof typeof __typeof__ __typeof do defined __builtin_expect "
    "__builtin_constant_p _Generic __same_type __stringify asm __asm__ volatile __attribute__ "
    "offsetof case else".split()
)
_FIELD_PATH = re.compile(r"^\(?\s*([A-Za-z_]\w*(?:\s*(?:\.|->)\s*[A-Za-z_]\w*)*)\s*\)?$")
_ARG_ID = re.compile(r"^\(?\s*(&)?\s*\(?\s*([A-Za-z_]\w*)\s*\)?\s*\)?$")
_MAX_BODY_CALLS = 24
_MAX_BODY_ARGS = 8


def conditions(ctx: FileContext, matches: list[Match]) -> None:
    """The #if / #ifdef / #elif / #else nodes of the file, made into the context's #if map."""
    ctx.conds = Conditions([m["cond"][0] for m in matches], ctx)


def macros(ctx: FileContext, matches: list[Match]) -> None:
    """Function-like macros, and object-like ones that stand for a field path or a name."""
    for m in matches:
        mnode = m["macro"][0]
        name = ctx.text(m["macro.name"][0])
        bnode = m["macro.body"][0] if "macro.body" in m else None
        body = ctx.raw[bnode.start_byte : bnode.end_byte].decode("utf-8", "replace") if bnode is not None else ""
        line = mnode.start_point[0] + 1
        cond = ctx.cond_at(mnode.start_byte)
        if "macro.params" in m:
            params = tuple(ctx.text(p) for p in m["macro.params"][0].named_children if p.type == "identifier")
            ctx.macros.append(_function_like(name, params, body, line, cond, ctx.container))
        elif body:
            alias = _alias(body)
            if alias is not None:
                ctx.macros.append(Macro(name, line, None, (), alias, None, cond))


def _alias(body: str) -> Expr | None:
    """``#define sk_prot __sk_common.skc_prot`` -> the field path ('f', ('v', '__sk_common'), 'skc_prot')."""
    m = _FIELD_PATH.match(body.replace("\\\n", " ").strip())
    if not m:
        return None
    parts = re.split(r"\s*(?:\.|->)\s*", m.group(1))
    e: Expr = ("v", parts[0])
    for p in parts[1:]:
        e = ("f", e, p)
    return e


def _function_like(name: str, params: tuple[str, ...], body: str, line: int, cond: str,
                   container: dict[str, int]) -> Macro:
    """A function-like macro: the calls in its body (with the arguments that are names), and the
    type of its value when the body starts with container_of(..., struct X, ...)."""
    mtype: TypeRef | None = None
    calls: list[tuple[str, tuple[Expr | None, ...]]] = []
    body = body.replace("\\\n", " ").strip()
    if "(" not in body:
        return Macro(name, line, params, (), None, None, cond)
    raw = body.encode("utf-8", "replace")
    for m in _CALL_IN_BODY.finditer(body):
        callee = m.group(2)
        if callee in _NOT_CALLS or callee.startswith("__builtin"):
            continue
        open_pos = len(body[: m.end() - 1].encode("utf-8", "replace"))
        close = match_paren(raw, open_pos, limit=4000)
        if close < 0:
            continue
        args_txt = [a.decode("utf-8", "replace") for a in split_args(raw[open_pos + 1 : close])]
        if callee in container and mtype is None and m.start() <= 2:
            k = container[callee]
            if k < len(args_txt):
                mtype = type_from_text(args_txt[k])
        calls.append((callee, tuple(_body_arg(a) for a in args_txt[:_MAX_BODY_ARGS])))
        if len(calls) >= _MAX_BODY_CALLS:
            break
    return Macro(name, line, params, tuple(calls), None, mtype, cond)


def _body_arg(text: str) -> Expr | None:
    m = _ARG_ID.match(text.strip())
    if not m:
        return None
    return ("a", ("v", m.group(2))) if m.group(1) else ("v", m.group(2))
