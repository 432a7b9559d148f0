"""The facts extracted from one source file: plain, immutable, picklable tuples.

Produced by ``extract`` (the only stage that touches tree-sitter), stored by ``store``, consumed by
``link``. No tree-sitter object ever appears here.

Types (``TypeRef``) are short strings: ``s:NAME`` a struct/union/enum tag, ``t:NAME`` a typedef
name, ``fn`` a function pointer, ``p`` anything else (scalars). Pointer depth is not kept: for
following calls it does not matter whether ``x`` or ``*x`` is typed ``struct sock``.

Expressions (``Expr``) are nested tuples, just detailed enough to type a receiver and to follow a
value:

=============================  ======================================================
``("v", name)``                identifier
``("f", base, field)``         ``base->field`` or ``base.field``
``("c", name, args)``          call of ``name``; args: tuple of Expr (first three; () if not kept)
``("x", TypeRef, inner)``      cast ``(type)inner``
``("t", TypeRef)``             a value whose type alone is known (container_of and friends)
``("i", base)``                ``base[...]``
``("d", inner)``               ``*inner``
``("a", inner)``               ``&inner``
``("?", a, b)``                ``cond ? a : b``
``("n", text)``                number or character literal
``("{", TypeRef, leaves)``     compound literal ``(struct T){ .f = v }``; leaves: ((path, Expr), ...)
``("u",)``                     anything else
=============================  ======================================================
"""

from __future__ import annotations

from typing import NamedTuple

Expr = tuple
TypeRef = str

UNKNOWN: Expr = ("u",)

# Call.wrapper of a call a scope-based cleanup class makes (include/linux/cleanup.h; see
# extract_cleanup): CLEANUP_INIT for the constructor, where the use stands; SCOPE_EXIT + "<line>" for
# the destructor, run when the scope ending at that line is left. The callee names the function-like
# macro the class's DEFINE_* made (``class_fd_constructor``), whose Macro.alias is ("v", "DEFINE_CLASS");
# Call.candidates is then (class name, name template: "class_{name}_constructor").
CLEANUP_INIT = "cleanup"
SCOPE_EXIT = "scope-exit@"


class Function(NamedTuple):
    name: str
    line: int
    end_line: int
    static: bool
    inline: bool
    ret: TypeRef | None
    params: tuple[tuple[str, TypeRef], ...]
    cond: str
    definer: str | None  # "SYSCALL_DEFINE3" when a definer macro made this function
    signature: str  # the head as written, whitespace collapsed: "int ip_output(struct net *net, ...)"
    # words clean blanked in the head (``__always_inline``, ``notrace``, ``__init``, ``noinline``: kept
    # here, since the parse never sees them) and the macros naming the function at file scope
    # (``EXPORT_SYMBOL_GPL``, ``NOKPROBE_SYMBOL``, ``late_initcall``), space-separated, in order
    attrs: str = ""


class Call(NamedTuple):
    caller: int  # index into FileFacts.functions
    line: int
    callee: Expr  # ("v", name) for a named callee, else the pointer expression
    text: str  # callee as written, e.g. "READ_ONCE(sock->ops)->sendmsg" ("" for a named callee)
    args: str  # the argument list as written (parsed on demand by link.parse_args)
    cond: str
    candidates: tuple[str, ...]  # INDIRECT_CALL_* candidates
    wrapper: str | None  # the INDIRECT_CALL_* macro name
    guard: tuple | None  # innermost guard (see Assign), kept for calls listed in data/guarded_calls.tsv
    cold: int = 0  # how many enclosing branches are marked rare (see extract_calls.branch_coldness)
    needs: tuple = ()  # (parameter index, name, truthy): the call runs only when that parameter is so
    lits: tuple = ()  # per argument: "0" a false constant (0, NULL, false), "1" a true one, "p<i>" the
    # caller's parameter i passed on as it is, "?" anything else
    sock: tuple = ()  # (property, constant, equal): the call runs only when the socket's type or family
    # is (equal) or is not that constant — ("sk_type", "SOCK_RAW", True) for if (sk->sk_type == SOCK_RAW)
    case_of: int = 0  # the line of the switch whose case is the innermost guard (0: none): the cases are
    # alternatives, none of them the main line


class Local(NamedTuple):
    fn: int
    name: str
    type: TypeRef


class Global(NamedTuple):
    name: str
    type: TypeRef
    static: bool
    line: int
    cond: str
    array: bool
    fn: int  # -1 at file scope; function index for a static local


class Init(NamedTuple):
    """One leaf of an initializer: var{path} = value."""

    var: str
    line: int
    path: tuple[tuple[str, object], ...]  # (".", field) | ("[", index text) | ("#", position)
    value: Expr
    cond: str
    fn: int  # -1 at file scope


class Field(NamedTuple):
    name: str
    type: TypeRef


class Struct(NamedTuple):
    name: str
    line: int
    fields: tuple[Field, ...]
    cond: str


class Typedef(NamedTuple):
    name: str
    type: TypeRef
    line: int


class Assign(NamedTuple):
    fn: int
    line: int
    lhs: Expr
    rhs: Expr
    text: str
    cond: str
    guard: tuple | None  # innermost ("case", switch expr, labels incl. fall-through) or ("if", cond, branch)
    cold: int = 0  # as Call.cold


class Macro(NamedTuple):
    name: str
    line: int
    params: tuple[str, ...] | None  # None for an object-like macro
    calls: tuple[tuple[str, tuple[Expr | None, ...]], ...]  # calls in the body
    alias: Expr | None  # object-like macro standing for a field path or a name; ("v", definer) for
    # a function a cleanup.h definer makes (class_fd_constructor from DEFINE_CLASS)
    type: TypeRef | None  # type of the value, when the body is container_of(..., struct X, ...)
    cond: str


class Exit(NamedTuple):
    """An early return under a condition on a socket type: ``if (sock->type != SOCK_RAW) return
    -ESOCKTNOSUPPORT;`` — how a create function rejects the types it does not support."""

    fn: int
    line: int
    cond: str


class Proto(NamedTuple):
    """A function declaration without body; kept for its return type."""

    name: str
    ret: TypeRef


class FileFacts(NamedTuple):
    path: str
    functions: tuple[Function, ...]
    calls: tuple[Call, ...]
    locals: tuple[Local, ...]
    globals: tuple[Global, ...]
    inits: tuple[Init, ...]
    structs: tuple[Struct, ...]
    typedefs: tuple[Typedef, ...]
    assigns: tuple[Assign, ...]
    macros: tuple[Macro, ...]
    protos: tuple[Proto, ...]
    exits: tuple[Exit, ...]
    error_count: int  # ERROR and MISSING nodes after cleaning
    error_bytes: int  # bytes inside ERROR nodes that no construct could absorb
    size: int


_PARTS = (
    ("functions", Function),
    ("calls", Call),
    ("locals", Local),
    ("globals", Global),
    ("inits", Init),
    ("structs", Struct),
    ("typedefs", Typedef),
    ("assigns", Assign),
    ("macros", Macro),
    ("protos", Proto),
    ("exits", Exit),
)


def to_plain(ff: FileFacts) -> tuple:
    """FileFacts as nested builtin tuples (for marshal); the inverse is from_plain."""
    out: list = [ff.path]
    for (_name, cls), items in zip(_PARTS, ff[1 : 1 + len(_PARTS)]):
        if cls is Struct:
            out.append(tuple((s.name, s.line, tuple(tuple(f) for f in s.fields), s.cond) for s in items))
        else:
            out.append(tuple(tuple(i) for i in items))
    out.extend(ff[1 + len(_PARTS) :])
    return tuple(out)


def from_plain(t: tuple) -> FileFacts:
    path, *parts = t
    out = [path]
    new = tuple.__new__  # NamedTuple construction without _make's checks: these tuples came from to_plain
    for (_, cls), items in zip(_PARTS, parts[: len(_PARTS)]):
        if cls is Struct:
            out.append(tuple(Struct(n, ln, tuple(new(Field, f) for f in fs), c) for n, ln, fs, c in items))
        else:
            out.append(tuple(new(cls, i) for i in items))
    out.extend(parts[len(_PARTS) :])
    return FileFacts(*out)
