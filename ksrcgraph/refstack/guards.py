"""Socket-type guards: does an assignment (or an early exit) apply to a socket of this type?

In: a guard as extract records it — ``("case", switch expression, labels)`` or ``("if", condition,
branch)`` — or a condition's text, and a socket type (``dgram``). Out: True, False, or None when the
guard does not test the socket type (or cannot be read).
"""

from __future__ import annotations

import re


def guard_holds(guard, sock_type: str) -> bool | None:  # type: ignore[no-untyped-def]
    """Whether an assignment's guard holds for a socket of this type: True, False, or None when
    the guard does not test the socket type (or cannot be read)."""
    if not guard:
        return True
    const = type_const(sock_type)
    if guard[0] == "case":
        expr, labels = guard[1], guard[2]
        if not _is_type_expr(expr):
            return None
        if const is None:
            return None
        if "default" in labels and const not in labels:
            return None
        return const in labels
    cond, branch = guard[1], guard[2]
    value = eval_type_cond(cond, const)
    if value is None:
        return None
    return value if branch else not value


def _is_type_expr(expr: str) -> bool:
    """sock->type, type, sk->sk_type: an expression holding the socket type."""
    return re.search(r"(^|->|\.)(sk_)?type$", expr.replace(" ", "")) is not None


def type_const(sock_type: str) -> str | None:
    """dgram -> SOCK_DGRAM; None for no type."""
    return "SOCK_" + sock_type.upper() if sock_type else None


def eval_type_cond(cond: str, const: str | None) -> bool | None:
    """A condition's text (``sock->type != SOCK_RAW``, with || and &&) for a socket whose type is
    the constant const: True, False, or None when it does not test the type."""
    if const is None:
        return None
    ors = [p.strip() for p in re.split(r"\|\|", cond)]
    if len(ors) > 1:
        vals = [eval_type_cond(p, const) for p in ors]
        if any(v is True for v in vals):
            return True
        return None if any(v is None for v in vals) else False
    ands = [p.strip().strip("()").strip() for p in re.split(r"&&", cond)]
    if len(ands) > 1:
        vals = [eval_type_cond(p, const) for p in ands]
        if any(v is False for v in vals):
            return False
        return None if any(v is None for v in vals) else True
    m = re.fullmatch(r"\(?\s*([\w>.\- ]+?)\s*(==|!=)\s*(SOCK_[A-Z]+)\s*\)?", cond)
    if not m or not _is_type_expr(m.group(1)):
        return None
    eq = m.group(3) == const
    return eq if m.group(2) == "==" else not eq
