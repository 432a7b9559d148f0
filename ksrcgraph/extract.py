"""Stages 3–4 — parse and extract: cleaned C bytes in, ``facts.FileFacts`` out.

In: a relative path and the raw bytes of one file. The bytes go through ``clean.clean`` and are
parsed by tree-sitter-c; the patterns of ``queries/*.scm`` select the nodes (in C); Python only
looks at the matches, never walks the whole tree.
Out: a ``FileFacts`` of plain tuples (see ``facts``). This is the only module that touches
tree-sitter objects; none leaves it.

A file that does not parse cleanly is not an error: facts come from what parsed, and the number of
ERROR/MISSING nodes and the bytes no construct could absorb are counted.
"""

from __future__ import annotations

import bisect
import re
from functools import cache
from importlib import resources

import tree_sitter_c
from tree_sitter import Language, Node, Parser, Query, QueryCursor

from . import kdata
from .clean import clean, split_args
from .facts import (
    UNKNOWN,
    Assign,
    Call,
    Exit,
    Expr,
    Field,
    FileFacts,
    Function,
    Global,
    Init,
    Local,
    Macro,
    Proto,
    Struct,
    Typedef,
    TypeRef,
)

# Bump when the facts produced for the same bytes change; part of the cache key with the data digest.
EXTRACTOR_VERSION = 4

QUERY_FILES = (
    "functions",
    "calls",
    "declarations",
    "structs",
    "typedefs",
    "assignments",
    "macros",
    "conditions",
    "errors",
    "guards",
)


@cache
def language() -> Language:
    return Language(tree_sitter_c.language())


@cache
def queries() -> tuple[Query, tuple[str, ...]]:
    """All query files compiled as one query (one pass over the tree), and the kind of each
    pattern index (the file it came from)."""
    lang = language()
    pkg = resources.files("ksrcgraph.queries")
    texts, kinds = [], []
    for name in QUERY_FILES:
        text = pkg.joinpath(name + ".scm").read_text(encoding="utf-8")
        kinds.extend([name] * Query(lang, text).pattern_count)
        texts.append(text)
    return Query(lang, "\n".join(texts)), tuple(kinds)


@cache
def _parser() -> Parser:
    return Parser(language())


def extractor_key() -> str:
    """Cache key component: facts for the same bytes are reusable while this does not change."""
    return f"x{EXTRACTOR_VERSION}-{kdata.data_digest()}-{kdata.code_digest('clean', 'extract', 'facts')}"


# --------------------------------------------------------------------------------------------------
# small helpers on nodes

_DECL_WRAPPERS = frozenset(
    ("pointer_declarator", "array_declarator", "parenthesized_declarator", "attributed_declarator",
     "init_declarator", "abstract_pointer_declarator", "abstract_array_declarator",
     "abstract_parenthesized_declarator")
)
_NAME_TYPES = frozenset(("identifier", "field_identifier", "type_identifier"))


class _Decl:
    """What a declarator says: the declared name, and whether it is a function, a function
    pointer or an array."""

    __slots__ = ("name", "function", "funcptr", "array", "params", "init")

    def __init__(self) -> None:
        self.name: str | None = None
        self.function = False  # declarator declares a function (prototype / definition)
        self.funcptr = False  # declares a pointer to a function
        self.array = False
        self.params: Node | None = None
        self.init: Node | None = None


def _unwrap(node: Node | None, src: bytes) -> _Decl:
    d = _Decl()
    seen_paren = False
    while node is not None:
        t = node.type
        if t in _NAME_TYPES:
            d.name = src[node.start_byte : node.end_byte].decode("utf-8", "replace")
            return d
        if t == "function_declarator":
            inner = node.child_by_field_name("declarator")
            if inner is not None and inner.type == "parenthesized_declarator":
                d.funcptr = True
            elif not d.funcptr and not seen_paren:
                d.function = True
                if d.params is None:
                    d.params = node.child_by_field_name("parameters")
            node = inner
            continue
        if t == "init_declarator":
            d.init = node.child_by_field_name("value")
        elif t == "array_declarator":
            d.array = True
        elif t == "parenthesized_declarator":
            seen_paren = True
            node = node.named_child(0) if node.named_child_count else None
            continue
        elif t not in _DECL_WRAPPERS:
            return d
        node = node.child_by_field_name("declarator")
    return d


def _type_of_spec(node: Node | None, src: bytes) -> TypeRef:
    if node is None:
        return "p"
    t = node.type
    if t in ("struct_specifier", "union_specifier", "enum_specifier"):
        name = node.child_by_field_name("name")
        if name is None:
            return "p"
        return "s:" + src[name.start_byte : name.end_byte].decode("utf-8", "replace")
    if t == "type_identifier":
        return "t:" + src[node.start_byte : node.end_byte].decode("utf-8", "replace")
    return "p"


_STRUCT_TEXT = re.compile(r"^\s*(?:const\s+|volatile\s+)*(struct|union|enum)?\s*([A-Za-z_]\w*)\s*[*\s]*$")


def type_from_text(text: str) -> TypeRef | None:
    """'struct tcp_sock' -> 's:tcp_sock'; 'socket_lock_t' -> 't:socket_lock_t'."""
    m = _STRUCT_TEXT.match(text)
    if not m:
        return None
    if m.group(1):
        return "s:" + m.group(2)
    if m.group(2) in _C_SCALARS:
        return "p"
    return "t:" + m.group(2)


_C_SCALARS = frozenset(
    "void char short int long float double signed unsigned bool _Bool u8 u16 u32 u64 s8 s16 s32 s64 "
    "__u8 __u16 __u32 __u64 __s8 __s16 __s32 __s64 __be16 __be32 __be64 __le16 __le32 __le64 size_t "
    "ssize_t gfp_t".split()
)


class _Ctx:
    """Per-file extraction state."""

    def __init__(self, src: bytes, raw: bytes | None = None) -> None:
        self.src = src
        self.raw = raw if raw is not None else src  # before cleaning: same offsets
        self.transparent = kdata.transparent_macros()
        self.container = kdata.container_macros()

    def text(self, node: Node) -> str:
        return self.src[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def expr(self, node: Node | None, depth: int = 0) -> Expr:
        """Convert an expression node to the small Expr tuple language (see facts)."""
        if node is None or depth > 12:
            return UNKNOWN
        t = node.type
        if t == "identifier":
            return ("v", self.text(node))
        if t == "field_expression":
            f = node.child_by_field_name("field")
            if f is None:
                return UNKNOWN
            return ("f", self.expr(node.child_by_field_name("argument"), depth + 1), self.text(f))
        if t == "parenthesized_expression":
            return self.expr(node.named_child(0) if node.named_child_count else None, depth + 1)
        if t == "call_expression":
            fn = node.child_by_field_name("function")
            args = node.child_by_field_name("arguments")
            if fn is None or fn.type != "identifier" or args is None:
                return UNKNOWN
            name = self.text(fn)
            if name in self.container:
                parts = split_args(self.raw[args.start_byte + 1 : args.end_byte - 1])
                k = self.container[name]
                if k < len(parts):
                    tr = type_from_text(parts[k].decode("utf-8", "replace"))
                    if tr:
                        return ("t", tr)
                return UNKNOWN
            arg_nodes = [a for a in args.named_children if a.type != "comment"]
            if name in self.transparent:
                k = self.transparent[name]
                return self.expr(arg_nodes[k], depth + 1) if k < len(arg_nodes) else UNKNOWN
            return ("c", name, tuple(self.expr(a, depth + 1) for a in arg_nodes[:3]))
        if t == "cast_expression":
            td = node.child_by_field_name("type")
            ty = _type_of_spec(td.child_by_field_name("type"), self.src) if td is not None else "p"
            return ("x", ty, self.expr(node.child_by_field_name("value"), depth + 1))
        if t == "subscript_expression":
            return ("i", self.expr(node.child_by_field_name("argument"), depth + 1))
        if t == "pointer_expression":
            op = node.child_by_field_name("operator")
            inner = self.expr(node.child_by_field_name("argument"), depth + 1)
            return ("a", inner) if op is not None and op.type == "&" else ("d", inner)
        if t == "conditional_expression":
            return ("?", self.expr(node.child_by_field_name("consequence"), depth + 1),
                    self.expr(node.child_by_field_name("alternative"), depth + 1))
        if t == "comma_expression":
            return self.expr(node.child_by_field_name("right"), depth + 1)
        if t == "assignment_expression":
            return self.expr(node.child_by_field_name("left"), depth + 1)
        if t in ("number_literal", "char_literal"):
            return ("n", self.text(node))
        if t == "compound_literal_expression":
            td = node.child_by_field_name("type")
            ty = _type_of_spec(td.child_by_field_name("type"), self.src) if td is not None else "p"
            value = node.child_by_field_name("value")
            leaves: list = []
            if value is not None and value.type == "initializer_list" and depth < 4:
                _init_leaves(self, value, (), leaves)
            return ("{", ty, tuple((p, v) for p, v, _ in leaves))
        return UNKNOWN

    def arg(self, node: Node) -> Expr | None:
        """A call argument, kept only in the forms that can carry a function or a table."""
        t = node.type
        if t == "identifier":
            return ("v", self.text(node))
        if t in ("pointer_expression", "field_expression", "cast_expression", "parenthesized_expression",
                 "conditional_expression", "number_literal"):
            e = self.expr(node)
            return None if e == UNKNOWN else e
        if t == "call_expression":
            fn = node.child_by_field_name("function")
            if fn is not None and fn.type == "identifier":
                name = self.text(fn)
                if name in self.transparent or name in self.container:
                    e = self.expr(node)
                    return None if e == UNKNOWN else e
                return ("c", name, ())
        return None


# --------------------------------------------------------------------------------------------------
# preprocessor conditions


class _Conditions:
    """Maps a byte offset to the conjunction of #if conditions around it (include guards dropped)."""

    def __init__(self, nodes: list[Node], ctx: _Ctx) -> None:
        intervals: list[tuple[int, int, str]] = []
        for n in nodes:
            if n.type not in ("preproc_if", "preproc_ifdef"):
                continue  # #elif / #else are reached through their #if
            prior: list[str] = []
            cur: Node | None = n
            while cur is not None:
                alt = cur.child_by_field_name("alternative")
                end = alt.start_byte if alt is not None else cur.end_byte
                if cur.type == "preproc_else":
                    if prior:
                        intervals.append((cur.start_byte, cur.end_byte, " && ".join(_neg(c) for c in prior)))
                    break
                own = self._cond_of(cur, ctx)
                if own is None and cur is n:
                    break  # include guard
                own = own or "?"
                intervals.append((cur.start_byte, end, " && ".join([_neg(c) for c in prior] + [own])))
                prior.append(own)
                cur = alt
        intervals.sort(key=lambda x: (x[0], -x[1]))
        points: list[tuple[int, str]] = []
        stack: list[tuple[int, str]] = []
        for s, e, c in intervals:
            while stack and stack[-1][0] <= s:
                end, _ = stack.pop()
                points.append((end, " && ".join(x[1] for x in stack)))
            stack.append((e, c))
            points.append((s, " && ".join(x[1] for x in stack)))
        while stack:
            end, _ = stack.pop()
            points.append((end, " && ".join(x[1] for x in stack)))
        self.points = [p[0] for p in points]
        self.values = [p[1] for p in points]

    @staticmethod
    def _cond_of(n: Node, ctx: _Ctx) -> str | None:
        if n.type in ("preproc_ifdef", "preproc_elifdef"):
            name = n.child_by_field_name("name")
            if name is None:
                return None
            first = n.child(0)
            word = ctx.text(first) if first is not None else "#ifdef"
            nm = ctx.text(name)
            if "ndef" not in word:
                return nm
            nxt = name.next_named_sibling
            if n.type == "preproc_ifdef" and nxt is not None and nxt.type == "preproc_def":
                dn = nxt.child_by_field_name("name")
                if dn is not None and ctx.text(dn) == nm:
                    return None  # include guard: #ifndef X / #define X
            return "!" + nm
        c = n.child_by_field_name("condition")
        if c is None:
            return None
        return " ".join(ctx.text(c).split())

    def at(self, pos: int) -> str:
        i = bisect.bisect_right(self.points, pos) - 1
        return self.values[i] if i >= 0 else ""


def _neg(cond: str) -> str:
    if cond.startswith("!") and re.fullmatch(r"![\w]+", cond):
        return cond[1:]
    if re.fullmatch(r"[\w]+", cond):
        return "!" + cond
    return "!(" + cond + ")"


# --------------------------------------------------------------------------------------------------
# macro bodies (opaque text to the grammar)

_CALL_IN_BODY = re.compile(r"(?<![\w.>])(\(\s*)?([A-Za-z_]\w*)\s*(\))?\s*\(")
_NOT_CALLS = frozenset(
    "if while for switch return sizeof typeof __typeof__ __typeof do defined __builtin_expect "
    "__builtin_constant_p _Generic __same_type __stringify asm __asm__ volatile __attribute__ "
    "offsetof case else".split()
)
_FIELD_PATH = re.compile(r"^\(?\s*([A-Za-z_]\w*(?:\s*(?:\.|->)\s*[A-Za-z_]\w*)*)\s*\)?$")
_ARG_ID = re.compile(r"^\(?\s*(&)?\s*\(?\s*([A-Za-z_]\w*)\s*\)?\s*\)?$")


def _body_arg(text: str) -> Expr | None:
    m = _ARG_ID.match(text.strip())
    if not m:
        return None
    return ("a", ("v", m.group(2))) if m.group(1) else ("v", m.group(2))


def _macro_facts(name: str, params: tuple[str, ...] | None, body: str, line: int, cond: str,
                 container: dict[str, int]) -> Macro:
    alias: Expr | None = None
    mtype: TypeRef | None = None
    calls: list[tuple[str, tuple[Expr | None, ...]]] = []
    body = body.replace("\\\n", " ").strip()
    if params is None:
        m = _FIELD_PATH.match(body)
        if m:
            parts = re.split(r"\s*(?:\.|->)\s*", m.group(1))
            e: Expr = ("v", parts[0])
            for p in parts[1:]:
                e = ("f", e, p)
            alias = e
        return Macro(name, line, None, (), alias, None, cond)
    if "(" in body:
        raw = body.encode("utf-8", "replace")
        for m in _CALL_IN_BODY.finditer(body):
            callee = m.group(2)
            if callee in _NOT_CALLS or callee.startswith("__builtin"):
                continue
            open_pos = len(body[: m.end() - 1].encode("utf-8", "replace"))
            from .clean import match_paren

            close = match_paren(raw, open_pos, limit=4000)
            if close < 0:
                continue
            args_txt = [a.decode("utf-8", "replace") for a in split_args(raw[open_pos + 1 : close])]
            if callee in container and mtype is None and m.start() <= 2:
                k = container[callee]
                if k < len(args_txt):
                    mtype = type_from_text(args_txt[k])
            calls.append((callee, tuple(_body_arg(a) for a in args_txt[:8])))
            if len(calls) >= 24:
                break
    return Macro(name, line, params, tuple(calls), alias, mtype, cond)


# --------------------------------------------------------------------------------------------------
# the extractor


def extract(path: str, raw: bytes) -> FileFacts:
    """Facts of one file. Never raises on bad C; raises only on programming errors."""
    src = clean(raw)
    tree = _parser().parse(src)
    root = tree.root_node
    ctx = _Ctx(src, raw)
    query, kinds = queries()
    buckets: dict[str, list[tuple[int, dict[str, list[Node]]]]] = {k: [] for k in QUERY_FILES}
    first_pattern = {k: kinds.index(k) for k in QUERY_FILES}
    for pi, m in QueryCursor(query).matches(root):
        kind = kinds[pi]
        buckets[kind].append((pi - first_pattern[kind], m))

    conds = _Conditions([m["cond"][0] for _, m in buckets["conditions"]], ctx)

    # -- functions ---------------------------------------------------------------------------
    functions: list[Function] = []
    fstarts: list[int] = []
    fends: list[int] = []
    locals_: list[Local] = []
    for _, m in buckets["functions"]:
        fnode = m["function"][0]
        d = _unwrap(m["function.declarator"][0], src)
        if d.name is None or not d.function:
            continue
        static = inline = False
        ret_spec = fnode.child_by_field_name("type")
        for ch in fnode.children:
            if ch.type == "storage_class_specifier":
                w = ctx.text(ch)
                static |= w == "static"
                inline |= "inline" in w
            elif ch.type in ("function_declarator", "pointer_declarator", "compound_statement"):
                break
        ret = _type_of_spec(ret_spec, src)
        decl_node = m["function.declarator"][0]
        definer = None
        name = d.name
        params: list[tuple[str, TypeRef]] = []
        if d.params is not None:
            for p in d.params.named_children:
                if p.type != "parameter_declaration":
                    continue
                pd = _unwrap(p.child_by_field_name("declarator"), src)
                if pd.name is None:
                    continue
                ptype = "fn" if pd.funcptr or pd.function else _type_of_spec(p.child_by_field_name("type"), src)
                params.append((pd.name, ptype))
        line = decl_node.start_point[0] + 1
        if name.startswith(("sys_", "compat_sys_", "sys32_")) and src[decl_node.start_byte : decl_node.start_byte + 1]:
            # a head rewritten by clean from a definer macro: the raw text still names the macro
            head = raw[fnode.start_byte : fnode.start_byte + 40]
            mm = re.match(rb"\s*([A-Z][A-Z0-9_]*DEFINE[0-9]*)\s*\(", head)
            if mm:
                definer = mm.group(1).decode()
        idx = len(functions)
        body = m["function.body"][0]
        head = " ".join(src[fnode.start_byte : body.start_byte].decode("utf-8", "replace").split())[:300]
        functions.append(
            Function(name, line, fnode.end_point[0] + 1, static, inline, None if ret == "p" else ret,
                     tuple(params), conds.at(fnode.start_byte), definer, head)
        )
        fstarts.append(fnode.start_byte)
        fends.append(fnode.end_byte)
        for pname, ptype in params:
            locals_.append(Local(idx, pname, ptype))

    def fn_at(pos: int) -> int:
        i = bisect.bisect_right(fstarts, pos) - 1
        if i >= 0 and pos < fends[i]:
            return i
        return -1

    # -- guards: case labels (with fall-through) and if conditions -----------------------------
    guard_starts: list[int] = []
    guard_info: list[tuple[int, tuple]] = []
    exits: list[Exit] = []
    for pi, m in buckets["guards"]:
        if pi == 0:
            sc = m.get("switch.cond")
            scond = " ".join(ctx.text(sc[0]).split()).strip("() ") if sc else ""
            pending: list[str] = []
            for c in m["switch.body"][0].named_children:
                if c.type != "case_statement":
                    continue
                v = c.child_by_field_name("value")
                labels = tuple(pending) + ((" ".join(ctx.text(v).split()) if v is not None else "default"),)
                stmts = [x for x in c.named_children if x.type not in ("comment",) and x is not v]
                last = stmts[-1] if stmts else None
                ends = last is not None and (last.type in ("break_statement", "return_statement", "goto_statement",
                                                           "continue_statement")
                                             or (last.type == "compound_statement" and last.named_child_count and
                                                 last.named_children[-1].type in ("break_statement", "return_statement")))
                pending = [] if ends else list(labels)
                guard_starts.append(c.start_byte)
                guard_info.append((c.end_byte, ("case", scond, labels)))
        else:
            cond = " ".join(ctx.text(m["if.cond"][0]).split()).strip()
            if cond.startswith("(") and cond.endswith(")"):
                cond = cond[1:-1].strip()
            then = m["if.then"][0]
            if "type" in cond and then.type in ("return_statement", "compound_statement"):
                first = then if then.type == "return_statement" else (then.named_child(0) if then.named_child_count else None)
                if first is not None and first.type == "return_statement":
                    fi_exit = fn_at(then.start_byte)
                    if fi_exit >= 0:
                        exits.append(Exit(fi_exit, then.start_point[0] + 1, cond))
            guard_starts.append(then.start_byte)
            guard_info.append((then.end_byte, ("if", cond, True)))
            if "if.else" in m:
                el = m["if.else"][0]
                guard_starts.append(el.start_byte)
                guard_info.append((el.end_byte, ("if", cond, False)))
    order = sorted(range(len(guard_starts)), key=lambda i: (guard_starts[i], -guard_info[i][0]))
    guard_starts = [guard_starts[i] for i in order]
    guard_info = [guard_info[i] for i in order]

    def guard_at(pos: int) -> tuple | None:
        """The innermost guard around pos."""
        i = bisect.bisect_right(guard_starts, pos) - 1
        steps = 0
        while i >= 0 and steps < 64:
            end, g = guard_info[i]
            if pos < end:
                return g
            i -= 1
            steps += 1
        return None

    # -- declarations: globals, locals, initializers, prototypes --------------------------------
    globals_: list[Global] = []
    inits: list[Init] = []
    protos: list[Proto] = []
    assigns: list[Assign] = []
    scalar_types = ("primitive_type", "sized_type_specifier")
    for _, m in buckets["declarations"]:
        dnode = m["decl"][0]
        tnode = m["decl.type"][0]
        dcl = m["decl.declarator"][0]
        if tnode.type in scalar_types:
            dt = dcl.type
            if dt == "identifier" or (dt == "init_declarator" and dcl.child(0).type == "identifier"):
                continue  # int err = 0; — cannot hold a function or a table
        d = _unwrap(dcl, src)
        if d.name is None:
            continue
        fi = fn_at(dnode.start_byte)
        if d.function:
            if fi < 0:
                rt = _type_of_spec(tnode, src)
                if rt != "p":
                    protos.append(Proto(d.name, rt))
            continue
        ty = "fn" if d.funcptr else _type_of_spec(tnode, src)
        static = False
        if fi < 0 or d.init is not None and d.init.type == "initializer_list":
            for ch in dnode.children:
                if ch.type == "storage_class_specifier":
                    static |= ctx.text(ch) == "static"
                elif ch is tnode:
                    break
        if fi >= 0 and not (static and d.init is not None and d.init.type == "initializer_list"):
            locals_.append(Local(fi, d.name, ty))
            if d.init is not None and d.init.type != "initializer_list":
                rhs = ctx.expr(d.init)
                if rhs[0] in ("v", "a", "f", "?", "x", "t"):
                    assigns.append(Assign(fi, d.init.start_point[0] + 1, ("v", d.name), rhs,
                                          ctx.text(dnode)[:160], conds.at(dnode.start_byte), None))
            continue
        line = m["decl.declarator"][0].start_point[0] + 1
        cond = conds.at(dnode.start_byte)
        globals_.append(Global(d.name, ty, static, line, cond, d.array, fi))
        if d.init is not None and d.init.type == "initializer_list":
            leaves: list = []
            _init_leaves(ctx, d.init, (), leaves)
            for lpath, lval, lnode in leaves:
                inits.append(Init(d.name, lnode.start_point[0] + 1, lpath, lval, conds.at(lnode.start_byte), fi))
        elif d.init is not None:
            v = ctx.expr(d.init)
            if v[0] in ("v", "a", "n", "c", "x", "?"):
                inits.append(Init(d.name, d.init.start_point[0] + 1, (), v, cond, fi))

    # -- calls -------------------------------------------------------------------------------
    calls: list[Call] = []
    icm = kdata.indirect_call_macros()
    store = kdata.store_macros()
    guarded = kdata.guarded_calls()
    for pi, m in buckets["calls"]:
        args_node = m["call.args"][0]
        sb = args_node.start_byte
        fi = fn_at(sb)
        if fi < 0:
            continue
        line = args_node.start_point[0] + 1
        cond = conds.at(sb)
        if pi == 0:
            name_node = m["call.name"][0]
            name = src[name_node.start_byte : name_node.end_byte].decode("utf-8", "replace")
            wrap = icm.get(name)
            st = store.get(name)
            if wrap is None and st is None:
                calls.append(Call(fi, line, ("v", name), "", src[sb + 1 : args_node.end_byte - 1].decode("utf-8", "replace"),
                                  cond, (), None, guard_at(sb) if name in guarded else None))
                continue
            arg_nodes = [a for a in args_node.named_children if a.type != "comment"]
            if wrap is not None and len(arg_nodes) > wrap[0] + wrap[1]:
                pidx, ncand = wrap
                ptr = arg_nodes[pidx]
                cands = tuple(ctx.text(a) for a in arg_nodes[pidx + 1 : pidx + 1 + ncand] if a.type == "identifier")
                rest = arg_nodes[pidx + 1 + ncand :]
                rest_text = src[rest[0].start_byte : args_node.end_byte - 1].decode("utf-8", "replace") if rest else ""
                calls.append(Call(fi, line, ctx.expr(ptr), ctx.text(ptr)[:120], rest_text, cond, cands, name, None))
                continue
            if st is not None and len(arg_nodes) > max(st[0], st[1]):
                lhs = ctx.expr(arg_nodes[st[0]])
                if st[2] and lhs[0] == "a":
                    lhs = lhs[1]
                rhs = ctx.expr(arg_nodes[st[1]])
                if rhs[0] in ("v", "a", "f", "?", "x", "c", "t"):
                    assigns.append(Assign(fi, line, lhs, rhs, ctx.text(m["call"][0])[:160], cond, guard_at(sb)))
            calls.append(Call(fi, line, ("v", name), "", src[sb + 1 : args_node.end_byte - 1].decode("utf-8", "replace"),
                              cond, (), None, None))
        else:
            e = m["call.expr"][0]
            calls.append(Call(fi, line, ctx.expr(e), ctx.text(e)[:120],
                              src[sb + 1 : args_node.end_byte - 1].decode("utf-8", "replace"), cond, (), None, None))

    # -- assignments -------------------------------------------------------------------------
    transparent = ctx.transparent
    for _, m in buckets["assignments"]:
        lnode = m["assign.lhs"][0]
        rnode = m["assign.rhs"][0]
        if lnode.type == "identifier" and rnode.type == "call_expression":
            fnn = rnode.child_by_field_name("function")
            if fnn is None or fnn.type != "identifier" or ctx.text(fnn) not in transparent:
                continue  # x = f(...): a return value, not a stored function
        anode = m["assign"][0]
        fi = fn_at(anode.start_byte)
        if fi < 0:
            continue
        lhs = ctx.expr(lnode)
        rhs = ctx.expr(rnode)
        if lhs == UNKNOWN or rhs[0] not in ("v", "a", "f", "?", "x", "c", "t", "i", "{"):
            continue
        if rhs[0] == "{":
            td = rnode.child_by_field_name("type")
            text = f"{' '.join(ctx.text(lnode).split())} = ({ctx.text(td) if td is not None else '?'}){{...}}"
        else:
            text = " ".join(ctx.text(anode).split())[:160]
        assigns.append(Assign(fi, anode.start_point[0] + 1, lhs, rhs, text, conds.at(anode.start_byte),
                              guard_at(anode.start_byte)))

    # -- structs and typedefs ----------------------------------------------------------------
    structs: list[Struct] = []
    for _, m in buckets["structs"]:
        snode = m["struct"][0]
        fields: list[Field] = []
        sname = ctx.text(m["struct.name"][0])
        scond = conds.at(snode.start_byte)
        _collect_fields(ctx, m["struct.body"][0], fields, 0, sname, structs, scond)
        structs.append(Struct(sname, snode.start_point[0] + 1, tuple(fields), scond))
    typedefs: list[Typedef] = []
    for _, m in buckets["typedefs"]:
        tnode = m["typedef.type"][0]
        d = _unwrap(m["typedef.declarator"][0], src)
        if d.name is None:
            continue
        line = m["typedef"][0].start_point[0] + 1
        if d.funcptr or d.function:
            typedefs.append(Typedef(d.name, "fn", line))
            continue
        ty = _type_of_spec(tnode, src)
        if tnode.type in ("struct_specifier", "union_specifier") and tnode.child_by_field_name("name") is None:
            body = tnode.child_by_field_name("body")
            if body is not None:
                fields = []
                tcond = conds.at(tnode.start_byte)
                _collect_fields(ctx, body, fields, 0, d.name, structs, tcond)
                structs.append(Struct(d.name, line, tuple(fields), tcond))
                ty = "s:" + d.name
        typedefs.append(Typedef(d.name, ty, line))

    # -- macros ------------------------------------------------------------------------------
    macros: list[Macro] = []
    container = kdata.container_macros()
    for _, m in buckets["macros"]:
        mnode = m["macro"][0]
        name = ctx.text(m["macro.name"][0])
        bnode = m["macro.body"][0] if "macro.body" in m else None
        body = raw[bnode.start_byte : bnode.end_byte].decode("utf-8", "replace") if bnode is not None else ""
        params: tuple[str, ...] | None = None
        if "macro.params" in m:
            params = tuple(
                ctx.text(p) for p in m["macro.params"][0].named_children if p.type == "identifier"
            )
        elif not body:
            continue
        mf = _macro_facts(name, params, body, mnode.start_point[0] + 1, conds.at(mnode.start_byte), container)
        if mf.params is None and mf.alias is None:
            continue
        macros.append(mf)

    # -- parse errors ------------------------------------------------------------------------
    error_count = 0
    error_bytes = 0
    if root.has_error:
        errs = [m["error"][0] for _, m in buckets["errors"] if "error" in m]
        error_count = len(buckets["errors"])
        for e in errs:
            for ch in e.children:
                if ch.child_count == 0 and not ch.is_missing:
                    error_bytes += ch.end_byte - ch.start_byte

    return FileFacts(
        path,
        tuple(functions),
        tuple(calls),
        tuple(locals_),
        tuple(globals_),
        tuple(inits),
        tuple(structs),
        tuple(typedefs),
        tuple(assigns),
        tuple(macros),
        tuple(protos),
        tuple(exits),
        error_count,
        error_bytes,
        len(raw),
    )


def _init_leaves(ctx: _Ctx, node: Node, path: tuple, out: list, depth: int = 0) -> None:
    """Flatten an initializer list into (path, value, value node) leaves; path steps are
    (".", field) | ("[", index text) | ("#", position)."""
    if depth > 8:
        return
    pos = 0
    for ch in node.named_children:
        t = ch.type
        if t == "comment":
            continue
        if t == "initializer_pair":
            steps: list[tuple[str, object]] = []
            value = ch.child_by_field_name("value")
            for i, sub in enumerate(ch.children):
                if ch.field_name_for_child(i) != "designator":
                    continue
                if sub.type == "field_designator":
                    f = sub.named_child(0)
                    if f is not None:
                        steps.append((".", ctx.text(f)))
                elif sub.type == "field_identifier":  # GNU old style  name: value
                    steps.append((".", ctx.text(sub)))
                elif sub.type == "subscript_designator":
                    idx = sub.named_child(0)
                    steps.append(("[", " ".join(ctx.text(idx).split()) if idx is not None else "?"))
                elif sub.type == "subscript_range_designator":
                    steps.append(("[", " ".join(ctx.text(sub).split())))
            full = path + tuple(steps)
            if value is None:
                continue
            if value.type == "initializer_list":
                _init_leaves(ctx, value, full, out, depth + 1)
            else:
                _init_leaf(ctx, value, full, out)
            pos += 1
        elif t == "initializer_list":
            _init_leaves(ctx, ch, path + (("#", pos),), out, depth + 1)
            pos += 1
        else:
            _init_leaf(ctx, ch, path + (("#", pos),), out)
            pos += 1


def _init_leaf(ctx: _Ctx, value: Node, path: tuple, out: list) -> None:
    v = ctx.expr(value)
    if v[0] == "u":
        return
    if v[0] == "c":
        # keep a call's text for values like cpu_to_be16(ETH_P_IP)
        v = ("c", v[1], tuple(a for a in v[2] if a[0] in ("v", "n")))
    out.append((path, v, value))


def _collect_fields(ctx: _Ctx, body: Node, out: list[Field], depth: int, owner: str = "",
                    extra: list[Struct] | None = None, cond: str = "") -> None:
    """Fields of a struct body; members of anonymous structs/unions are flattened in. A named
    member of an anonymous struct type (``union { ... } u;``) gets a synthetic type ``owner.u``
    whose fields are recorded in ``extra``."""
    if depth > 6:
        return
    for fd in body.named_children:
        if fd.type != "field_declaration":
            if fd.type in ("preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif", "preproc_elifdef"):
                _collect_fields(ctx, fd, out, depth + 1, owner, extra, cond)
            continue
        tnode = fd.child_by_field_name("type")
        decls = fd.children_by_field_name("declarator")
        anon_body = None
        if tnode is not None and tnode.type in ("struct_specifier", "union_specifier") \
                and tnode.child_by_field_name("name") is None:
            anon_body = tnode.child_by_field_name("body")
        if not decls:
            if anon_body is not None:
                _collect_fields(ctx, anon_body, out, depth + 1, owner, extra, cond)
            continue
        base = _type_of_spec(tnode, ctx.src)
        for dn in decls:
            d = _unwrap(dn, ctx.src)
            if d.name is None:
                continue
            ftype = "fn" if (d.funcptr or d.function) else base
            if anon_body is not None and extra is not None and owner and not (d.funcptr or d.function):
                synth = f"{owner}.{d.name}"
                inner: list[Field] = []
                _collect_fields(ctx, anon_body, inner, depth + 1, synth, extra, cond)
                extra.append(Struct(synth, tnode.start_point[0] + 1, tuple(inner), cond))
                ftype = "s:" + synth
            out.append(Field(d.name, ftype))
