"""Extractors for what runs inside functions: ``guards.scm``, ``calls.scm``, ``assignments.scm``.

In: a ``FileContext`` (with the function spans already recorded) and the matches of one query file
(capture name -> nodes).
Out: appended to the context — guards (case labels with fall-through, if conditions) and the
``Exit`` facts among them; ``Call`` sites (and the ``Assign`` a store macro such as ``WRITE_ONCE``
makes); ``Assign`` for assignments of values that may be functions or tables.
"""

from __future__ import annotations

import re

from tree_sitter import Node

from . import extract_cleanup, kdata
from .extract_context import FileContext, Match
from .facts import UNKNOWN, Assign, Call, Exit

_ENDS_CASE = ("break_statement", "return_statement", "goto_statement", "continue_statement")
_ENDS_BLOCK = ("break_statement", "return_statement")
_STORED_KINDS = ("v", "a", "f", "?", "x", "c", "t")  # values a store macro may store a function with
_ASSIGNED_KINDS = (*_STORED_KINDS, "i", "{")


# -- guards -------------------------------------------------------------------------------------

def guards(ctx: FileContext, matches: list[Match]) -> None:
    """The case labels and if conditions that calls and assignments record as their guard."""
    exit_words = kdata.exit_conditions()
    for m in matches:
        if "switch" in m:
            _switch(ctx, m)
        elif "label" in m:
            _label(ctx, m["label"][0])
        else:
            _if(ctx, m, exit_words)
    ctx.sort_guards()


def _switch(ctx: FileContext, m: Match) -> None:
    """One guard per case: its labels, with those of the cases falling through into it."""
    sc = m.get("switch.cond")
    scond = " ".join(ctx.text(sc[0]).split()).strip("() ") if sc else ""
    pending: list[str] = []
    for c in m["switch.body"][0].named_children:
        if c.type != "case_statement":
            continue
        v = c.child_by_field_name("value")
        labels = tuple(pending) + ((" ".join(ctx.text(v).split()) if v is not None else "default"),)
        pending = [] if _case_ends(c, v) else list(labels)
        ctx.add_guard(c.start_byte, c.end_byte, ("case", scond, labels))


def _case_ends(case: Node, value: Node | None) -> bool:
    """True when the case does not fall through into the next one."""
    stmts = [x for x in case.named_children if x.type not in ("comment",) and x is not value]
    last = stmts[-1] if stmts else None
    if last is None:
        return False
    if last.type in _ENDS_CASE:
        return True
    return bool(last.type == "compound_statement" and last.named_child_count
                and last.named_children[-1].type in _ENDS_BLOCK)


def _if(ctx: FileContext, m: Match, exit_words: tuple[str, ...]) -> None:
    cond = " ".join(ctx.text(m["if.cond"][0]).split()).strip()
    if cond.startswith("(") and cond.endswith(")"):
        cond = cond[1:-1].strip()
    then = m["if.then"][0]
    if any(word in cond for word in exit_words):
        _early_exit(ctx, cond, then)
    ctx.add_guard(then.start_byte, then.end_byte, ("if", cond, True))
    el = m["if.else"][0] if "if.else" in m else None
    if el is not None:
        ctx.add_guard(el.start_byte, el.end_byte, ("if", cond, False))
    rare_then, rare_else = branch_coldness(cond, el is not None)
    if rare_then:
        ctx.add_cold(then.start_byte, then.end_byte, rare_then)
    if rare_else and el is not None:
        ctx.add_cold(el.start_byte, el.end_byte, rare_else)
    elif rare_else and _jumps_away(then) and m["if"][0].parent is not None:
        _rest_is_rare(ctx, m["if"][0], rare_else)


_JUMPS = ("return_statement", "goto_statement", "continue_statement", "break_statement")


def _jumps_away(then: Node) -> bool:
    """Does the branch end by leaving its block (return, goto, continue, break)?"""
    return _last_statement(then).type in _JUMPS


def _last_statement(branch: Node) -> Node:
    last = branch
    while last.type in ("compound_statement", "labeled_statement") and last.named_child_count:
        last = last.named_children[-1]
    return last


def _label(ctx: FileContext, label: Node) -> None:
    """``return 0; reset: tcp_v4_send_reset(...);`` — only jumps reach a label after a statement that
    never falls through: from there to the end of its block is an exit path (error handling,
    cleanup), rare beside the main line."""
    before = label.prev_named_sibling
    while before is not None and (before.type == "comment" or before.type.startswith("preproc")):
        before = before.prev_named_sibling
    if before is not None and _last_statement(before).type in _JUMPS:
        _rest_is_rare(ctx, label, 1, from_start=True)


def _rest_is_rare(ctx: FileContext, stmt: Node, score: int, from_start: bool = False) -> None:
    """``if (likely(c)) return ...;`` — the function is expected to leave here: what follows the
    statement in its block runs in the rare case (tcp_mtu_probe returns early unless probing is on)."""
    block = stmt.parent
    if block is not None and block.type == "compound_statement":
        ctx.add_cold(stmt.start_byte if from_start else stmt.end_byte, block.end_byte, score)


_OTHER = {"then": "else", "else": "then"}
# A bit test against a named constant: x & FLAG, (A | B) & x.
_FLAG_TEST = re.compile(r"(?<![&])&(?![&=])\s*\(?\s*[A-Z][A-Z0-9_]{2,}|\b[A-Z][A-Z0-9_]{2,}\s*\)?\s*&(?![&=])")


def branch_coldness(cond: str, has_else: bool) -> tuple[int, int]:
    """(then, else): how rare each branch of ``if (cond)`` reads as. A branch-prediction hint
    (data/branch_hints.tsv: unlikely(...) marks the then-branch, likely(...) the else-branch); and a
    then-branch without an else whose whole condition is that a flag is set (``if (flags &
    RTCF_MULTICAST)``; not ``if (!(flags & MSG_MORE))``, the main line): a special case beside the
    main line, which goes on after it."""
    rare = {"then": 0, "else": 0}
    for word, branch in kdata.branch_hints().items():
        if m := re.match(rf"(!?)\s*{word}\s*\(", cond):
            rare[_OTHER[branch] if m.group(1) else branch] += 1  # !unlikely(x): the then-branch is the main line
            break
    if not has_else and "&&" not in cond and "||" not in cond and not cond.startswith("!") and _FLAG_TEST.search(cond):
        rare["then"] += 1
    return rare["then"], rare["else"]


def _early_exit(ctx: FileContext, cond: str, then: Node) -> None:
    """``if (cond) return ...;`` (the return alone or first in a block) -> Exit."""
    if then.type == "return_statement":
        first = then
    elif then.type == "compound_statement":
        first = then.named_child(0) if then.named_child_count else None
    else:
        return
    if first is not None and first.type == "return_statement":
        fi = ctx.fn_at(then.start_byte)
        if fi >= 0:
            ctx.exits.append(Exit(fi, then.start_point[0] + 1, cond))


# -- calls --------------------------------------------------------------------------------------

class _CallSite:
    """Where a call's argument list is: its function, line, #if condition and text."""

    __slots__ = ("node", "fn", "line", "cond", "args", "cold", "needs", "lits", "sock", "case_of")

    def __init__(self, ctx: FileContext, args: Node, fn: int) -> None:
        self.node = args
        self.fn = fn
        self.line = args.start_point[0] + 1
        self.cond = ctx.cond_at(args.start_byte)
        self.args = ctx.src[args.start_byte + 1 : args.end_byte - 1].decode("utf-8", "replace")
        self.cold = ctx.cold_at(args.start_byte)
        params = [name for name, _type in ctx.functions[fn].params]
        guards = ctx.guards_around(args.start_byte)
        self.needs = _needs(guards, params)
        self.sock = _sock_needs(guards)
        self.case_of = _switch_line(args) if guards and guards[0][0] == "case" else 0
        self.lits = _literals(ctx, [a for a in args.named_children if a.type != "comment"], params)

    def call(self, callee: tuple, text: str, args: str, candidates: tuple = (), wrapper: str | None = None,
             guard: tuple | None = None, needs: tuple = ()) -> Call:
        return Call(self.fn, self.line, callee, text, args, self.cond, candidates, wrapper, guard, self.cold,
                    self.needs + needs, self.lits, self.sock, self.case_of)


# -- parameters that select a branch ---------------------------------------------------------------

_FALSE = frozenset(("0", "NULL", "false"))


def _switch_line(node: Node) -> int:
    """The line of the switch statement around node (0 if none)."""
    while node is not None and node.type != "switch_statement":
        node = node.parent
    return node.start_point[0] + 1 if node is not None else 0


def _literals(ctx: FileContext, args: list[Node], params: list[str]) -> tuple:
    """Per argument: "0" a false constant, "1" a true one (a non-zero number, true), "p<i>" the
    caller's parameter i passed on as it is, "?" anything else (trailing "?"s dropped)."""
    out = []
    for a in args:
        t = ctx.text(a).strip()
        if t in _FALSE or a.type == "number_literal" and t.rstrip("uUlL") in ("0", "0x0"):
            out.append("0")
        elif t == "true" or a.type == "number_literal":
            out.append("1")
        elif a.type == "identifier" and t in params:
            out.append(f"p{params.index(t)}")
        else:
            out.append("?")
    while out and out[-1] == "?":
        out.pop()
    return tuple(out)


def _param_test(text: str, params: list[str]) -> tuple | None:
    """``p`` or ``!p`` for a parameter p: (its index, name, whether p is true when text holds)."""
    t = text.strip()
    while t.startswith("(") and t.endswith(")"):
        t = t[1:-1].strip()
    truthy = not t.startswith("!")
    name = t.lstrip("!").strip()
    return (params.index(name), name, truthy) if name in params else None


def _needs(guards: list[tuple], params: list[str]) -> tuple:
    """What the enclosing if-branches require of the function's parameters: each conjunct of a
    then-branch's condition that tests a parameter (``if (used_address && ...)``); the negation of an
    else-branch's condition that is such a test alone."""
    out = []
    for g in guards:
        if g[0] != "if" or "||" in g[1]:
            continue
        if g[2]:
            out.extend(t for t in (_param_test(c, params) for c in g[1].split("&&")) if t)
        elif "&&" not in g[1]:
            t = _param_test(g[1], params)
            if t:
                out.append((t[0], t[1], not t[2]))
    return tuple(sorted(set(out)))


# A test of the socket's own type or family: sk->sk_type == SOCK_RAW, sock->type != SOCK_STREAM,
# sk->sk_family == AF_INET6 (PF_ spelled as AF_).
_SOCK_TEST = re.compile(r"\(?\s*(sk|sock)\s*(?:->|\.)\s*(sk_type|sk_family|type)\s*(==|!=)\s*((?:SOCK|AF|PF)_[A-Z0-9]+)\s*\)?")


def _sock_test(text: str) -> tuple | None:
    """(property, constant, equal) of a condition testing the socket's type or family, else None."""
    m = _SOCK_TEST.fullmatch(text.strip())
    if not m:
        return None
    holder, prop, op, const = m.groups()
    if prop == "type" and holder != "sock":
        return None  # sk->type: not a field of struct sock
    if const.startswith("SOCK_") != (prop != "sk_family"):
        return None
    return ("family" if prop == "sk_family" else "type", "AF_" + const[3:] if const.startswith("PF_") else const,
            op == "==")


def _sock_needs(guards: list[tuple]) -> tuple:
    """What the enclosing if-branches require of the socket's type or family (as _needs does for
    the function's parameters): ``if (sk->sk_type == SOCK_RAW && sk->sk_family == AF_INET)``."""
    out = []
    for g in guards:
        if g[0] != "if" or "||" in g[1]:
            continue
        if g[2]:
            out.extend(t for t in (_sock_test(c) for c in g[1].split("&&")) if t)
        elif "&&" not in g[1]:
            t = _sock_test(g[1])
            if t:
                out.append((t[0], t[1], not t[2]))
    return tuple(sorted(set(out)))


def calls(ctx: FileContext, matches: list[Match]) -> None:
    """Call sites inside functions: named callees (with the INDIRECT_CALL_* and store macros read
    through) and callees computed by an expression."""
    for m in matches:
        args = m["call.args"][0]
        fi = ctx.fn_at(args.start_byte)
        if fi < 0:
            continue
        site = _CallSite(ctx, args, fi)
        if "call.name" in m:
            _named_call(ctx, m, site)
            continue
        if extract_cleanup.is_use_call(ctx, m["call.expr"][0]):
            continue  # CLASS(fd, f)(fd): a cleanup class's constructor (extract_cleanup)
        params = [name for name, _type in ctx.functions[fi].params]
        for e, needs in _callee_branches(ctx, m["call.expr"][0], params):
            if e.type == "identifier":  # (nosec ? sock_recvmsg_nosec : sock_recvmsg)(sock, ...)
                ctx.calls.append(site.call(("v", ctx.text(e)), "", site.args, needs=needs))
            else:
                ctx.calls.append(site.call(ctx.expr(e), ctx.text(e)[:120], site.args, needs=needs))


def _callee_branches(ctx: FileContext, e: Node, params: list[str], needs: tuple = ()) -> list[tuple[Node, tuple]]:
    """The callees a computed callee may be, each with what it needs of the parameters: both
    branches of ``(c ? f : g)`` (nested, in parentheses; f needs a parameter c true, g false), else
    the expression itself."""
    inner = e
    while inner.type == "parenthesized_expression" and inner.named_child_count == 1:
        inner = inner.named_child(0)
    if inner.type != "conditional_expression":
        return [(e, needs)]
    cond = inner.child_by_field_name("condition")
    test = _param_test(ctx.text(cond), params) if cond is not None else None
    out: list[tuple[Node, tuple]] = []
    for fld, holds in (("consequence", True), ("alternative", False)):
        branch = inner.child_by_field_name(fld)
        if branch is not None:
            more = ((test[0], test[1], test[2] == holds),) if test else ()
            out.extend(_callee_branches(ctx, branch, params, needs + more))
    return out or [(e, needs)]


def _named_call(ctx: FileContext, m: Match, site: _CallSite) -> None:
    name = ctx.text(m["call.name"][0])
    wrap = kdata.indirect_call_macros().get(name)
    store = kdata.store_macros().get(name)
    if wrap is None and store is None:
        guard = ctx.guard_at(site.node.start_byte) if name in kdata.guarded_calls() else None
        ctx.calls.append(site.call(("v", name), "", site.args, guard=guard))
        return
    arg_nodes = [a for a in site.node.named_children if a.type != "comment"]
    if wrap is not None and len(arg_nodes) > wrap.pointer + wrap.candidates:
        _indirect_call(ctx, name, wrap, arg_nodes, site)
        return
    if store is not None and len(arg_nodes) > max(store.dest, store.value):
        _store(ctx, m["call"][0], store, arg_nodes, site)
    ctx.calls.append(site.call(("v", name), "", site.args))


def _indirect_call(ctx: FileContext, name: str, wrap: kdata.IndirectCallMacro, arg_nodes: list[Node],
                   site: _CallSite) -> None:
    """INDIRECT_CALL_2(f, f1, f2, args...): a call through f, naming candidates f1 and f2."""
    after = wrap.pointer + 1
    ptr = arg_nodes[wrap.pointer]
    cands = tuple(ctx.text(a) for a in arg_nodes[after : after + wrap.candidates] if a.type == "identifier")
    rest = arg_nodes[after + wrap.candidates :]
    rest_text = ctx.src[rest[0].start_byte : site.node.end_byte - 1].decode("utf-8", "replace") if rest else ""
    ctx.calls.append(site.call(ctx.expr(ptr), ctx.text(ptr)[:120], rest_text, cands, name))


def _store(ctx: FileContext, call: Node, store: kdata.StoreMacro, arg_nodes: list[Node], site: _CallSite) -> None:
    """WRITE_ONCE(x->f, v): the assignment x->f = v."""
    lhs = ctx.expr(arg_nodes[store.dest])
    if store.deref and lhs[0] == "a":
        lhs = lhs[1]
    rhs = ctx.expr(arg_nodes[store.value])
    if rhs[0] in _STORED_KINDS:
        ctx.assigns.append(Assign(site.fn, site.line, lhs, rhs, ctx.text(call)[:160], site.cond,
                                  ctx.guard_at(site.node.start_byte), site.cold))


# -- assignments --------------------------------------------------------------------------------

def assignments(ctx: FileContext, matches: list[Match]) -> None:
    """Assignments inside functions whose value may be a function or a table."""
    for m in matches:
        lnode = m["assign.lhs"][0]
        rnode = m["assign.rhs"][0]
        if lnode.type == "identifier" and rnode.type == "call_expression" and not _transparent_call(ctx, rnode):
            continue  # x = f(...): a return value, not a stored function
        anode = m["assign"][0]
        fi = ctx.fn_at(anode.start_byte)
        if fi < 0:
            continue
        lhs = ctx.expr(lnode)
        rhs = ctx.expr(rnode)
        if lhs == UNKNOWN or rhs[0] not in _ASSIGNED_KINDS:
            continue
        if rhs[0] == "{":
            td = rnode.child_by_field_name("type")
            text = f"{' '.join(ctx.text(lnode).split())} = ({ctx.text(td) if td is not None else '?'}){{...}}"
        else:
            text = " ".join(ctx.text(anode).split())[:160]
        ctx.assigns.append(Assign(fi, anode.start_point[0] + 1, lhs, rhs, text, ctx.cond_at(anode.start_byte),
                                  ctx.guard_at(anode.start_byte), ctx.cold_at(anode.start_byte)))


def _transparent_call(ctx: FileContext, call: Node) -> bool:
    """READ_ONCE(p) and friends: the value is p's, not a return value."""
    fnn = call.child_by_field_name("function")
    return fnn is not None and fnn.type == "identifier" and ctx.text(fnn) in ctx.transparent
