"""Tree-sitter nodes read as plain values: declarators, type specifiers, expressions, initializer
lists and struct bodies.

In: nodes of a file's syntax tree and the file's bytes (cleaned, and raw with the same offsets).
Out: names, ``TypeRef`` strings and ``Expr`` tuples (see ``facts``) — never a node.
"""

from __future__ import annotations

from collections.abc import Callable

from tree_sitter import Node

from . import kdata
from .ctext import split_args, type_from_text
from .facts import UNKNOWN, Expr, Field, Struct, TypeRef

_DECL_WRAPPERS = frozenset(
    ("pointer_declarator", "array_declarator", "parenthesized_declarator", "attributed_declarator",
     "init_declarator", "abstract_pointer_declarator", "abstract_array_declarator",
     "abstract_parenthesized_declarator")
)
_NAME_TYPES = frozenset(("identifier", "field_identifier", "type_identifier"))
_ANONYMOUS_BODIES = ("struct_specifier", "union_specifier")
_PREPROC_IN_BODY = ("preproc_if", "preproc_ifdef", "preproc_else", "preproc_elif", "preproc_elifdef")


class Decl:
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


def unwrap(node: Node | None, src: bytes) -> Decl:
    """Walk a declarator down to the name it declares, noting what wraps it."""
    d = Decl()
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


def type_of_spec(node: Node | None, src: bytes) -> TypeRef:
    """TypeRef of a type specifier: a struct/union/enum tag, a typedef name, or 'p'."""
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


def anonymous_body(spec: Node | None) -> Node | None:
    """The field list of ``struct { ... }`` / ``union { ... }`` without a tag, else None."""
    if spec is not None and spec.type in _ANONYMOUS_BODIES and spec.child_by_field_name("name") is None:
        return spec.child_by_field_name("body")
    return None


class NodeReader:
    """Reads the nodes of one file: its text, expressions, initializers, struct bodies."""

    def __init__(self, src: bytes, raw: bytes | None = None) -> None:
        self.src = src
        self.raw = raw if raw is not None else src  # before cleaning: same offsets
        self.transparent = kdata.transparent_macros()
        self.container = kdata.container_macros()

    def text(self, node: Node) -> str:
        return self.src[node.start_byte : node.end_byte].decode("utf-8", "replace")

    def spec_type(self, spec: Node | None) -> TypeRef:
        return type_of_spec(spec, self.src)

    def decl(self, node: Node | None) -> Decl:
        return unwrap(node, self.src)

    # -- expressions -----------------------------------------------------------------------------
    def expr(self, node: Node | None, depth: int = 0) -> Expr:
        """Convert an expression node to the small Expr tuple language (see facts)."""
        if node is None or depth > 12:
            return UNKNOWN
        t = node.type
        if t == "identifier":
            return ("v", self.text(node))
        convert = _EXPR_FORMS.get(t)
        return UNKNOWN if convert is None else convert(self, node, depth)

    def _field(self, node: Node, depth: int) -> Expr:
        f = node.child_by_field_name("field")
        if f is None:
            return UNKNOWN
        return ("f", self.expr(node.child_by_field_name("argument"), depth + 1), self.text(f))

    def _first_child(self, node: Node, depth: int) -> Expr:
        return self.expr(node.named_child(0) if node.named_child_count else None, depth + 1)

    def _call(self, node: Node, depth: int) -> Expr:
        fn = node.child_by_field_name("function")
        args = node.child_by_field_name("arguments")
        if fn is None or fn.type != "identifier" or args is None:
            return UNKNOWN
        name = self.text(fn)
        if name in self.container:
            return self._container_type(name, args)
        arg_nodes = [a for a in args.named_children if a.type != "comment"]
        if name in self.transparent:
            k = self.transparent[name]
            return self.expr(arg_nodes[k], depth + 1) if k < len(arg_nodes) else UNKNOWN
        return ("c", name, tuple(self.expr(a, depth + 1) for a in arg_nodes[:3]))

    def _container_type(self, name: str, args: Node) -> Expr:
        """container_of(p, struct T, member): a value of type T (read from the raw text, whose
        ``struct`` keyword clean blanked)."""
        parts = split_args(self.raw[args.start_byte + 1 : args.end_byte - 1])
        k = self.container[name]
        if k < len(parts):
            tr = type_from_text(parts[k].decode("utf-8", "replace"))
            if tr:
                return ("t", tr)
        return UNKNOWN

    def _cast_type(self, node: Node) -> TypeRef:
        td = node.child_by_field_name("type")
        return self.spec_type(td.child_by_field_name("type")) if td is not None else "p"

    def _cast(self, node: Node, depth: int) -> Expr:
        return ("x", self._cast_type(node), self.expr(node.child_by_field_name("value"), depth + 1))

    def _subscript(self, node: Node, depth: int) -> Expr:
        return ("i", self.expr(node.child_by_field_name("argument"), depth + 1))

    def _pointer(self, node: Node, depth: int) -> Expr:
        op = node.child_by_field_name("operator")
        inner = self.expr(node.child_by_field_name("argument"), depth + 1)
        return ("a", inner) if op is not None and op.type == "&" else ("d", inner)

    def _conditional(self, node: Node, depth: int) -> Expr:
        return ("?", self.expr(node.child_by_field_name("consequence"), depth + 1),
                self.expr(node.child_by_field_name("alternative"), depth + 1))

    def _comma(self, node: Node, depth: int) -> Expr:
        return self.expr(node.child_by_field_name("right"), depth + 1)

    def _assignment(self, node: Node, depth: int) -> Expr:
        return self.expr(node.child_by_field_name("left"), depth + 1)

    def _literal(self, node: Node, depth: int) -> Expr:
        return ("n", self.text(node))

    def _compound_literal(self, node: Node, depth: int) -> Expr:
        value = node.child_by_field_name("value")
        leaves: list = []
        if value is not None and value.type == "initializer_list" and depth < 4:
            self.init_leaves(value, (), leaves)
        return ("{", self._cast_type(node), tuple((p, v) for p, v, _ in leaves))

    # -- initializer lists -----------------------------------------------------------------------
    def init_leaves(self, node: Node, path: tuple, out: list, depth: int = 0) -> None:
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
                value = ch.child_by_field_name("value")
                if value is None:
                    continue
                full = path + self._designators(ch)
                if value.type == "initializer_list":
                    self.init_leaves(value, full, out, depth + 1)
                else:
                    self._init_leaf(value, full, out)
            elif t == "initializer_list":
                self.init_leaves(ch, path + (("#", pos),), out, depth + 1)
            else:
                self._init_leaf(ch, path + (("#", pos),), out)
            pos += 1

    def _designators(self, pair: Node) -> tuple[tuple[str, object], ...]:
        """The path steps ``.a.b[2] =`` (or GNU ``a:``) of one initializer pair."""
        steps: list[tuple[str, object]] = []
        for i, sub in enumerate(pair.children):
            if pair.field_name_for_child(i) != "designator":
                continue
            if sub.type == "field_designator":
                f = sub.named_child(0)
                if f is not None:
                    steps.append((".", self.text(f)))
            elif sub.type == "field_identifier":  # GNU old style  name: value
                steps.append((".", self.text(sub)))
            elif sub.type == "subscript_designator":
                idx = sub.named_child(0)
                steps.append(("[", " ".join(self.text(idx).split()) if idx is not None else "?"))
            elif sub.type == "subscript_range_designator":
                steps.append(("[", " ".join(self.text(sub).split())))
        return tuple(steps)

    def _init_leaf(self, value: Node, path: tuple, out: list) -> None:
        v = self.expr(value)
        if v[0] == "u":
            return
        if v[0] == "c":
            # keep a call's text for values like cpu_to_be16(ETH_P_IP)
            v = ("c", v[1], tuple(a for a in v[2] if a[0] in ("v", "n")))
        out.append((path, v, value))

    # -- struct bodies ---------------------------------------------------------------------------
    def collect_fields(self, body: Node, out: list[Field], depth: int, owner: str = "",
                       extra: list[Struct] | None = None, cond: str = "") -> None:
        """Fields of a struct body; members of anonymous structs/unions are flattened in. A named
        member of an anonymous struct type (``union { ... } u;``) gets a synthetic type ``owner.u``
        whose fields are recorded in ``extra``."""
        if depth > 6:
            return
        for fd in body.named_children:
            if fd.type != "field_declaration":
                if fd.type in _PREPROC_IN_BODY:
                    self.collect_fields(fd, out, depth + 1, owner, extra, cond)
                continue
            tnode = fd.child_by_field_name("type")
            decls = fd.children_by_field_name("declarator")
            anon_body = anonymous_body(tnode)
            if not decls:
                if anon_body is not None:
                    self.collect_fields(anon_body, out, depth + 1, owner, extra, cond)
                continue
            base = self.spec_type(tnode)
            for dn in decls:
                d = self.decl(dn)
                if d.name is None:
                    continue
                ftype = "fn" if (d.funcptr or d.function) else base
                if anon_body is not None and extra is not None and owner and not (d.funcptr or d.function):
                    ftype = self._synthetic_struct(anon_body, tnode, f"{owner}.{d.name}", depth, extra, cond)
                out.append(Field(d.name, ftype))

    def _synthetic_struct(self, body: Node, spec: Node, name: str, depth: int, extra: list[Struct],
                          cond: str) -> TypeRef:
        inner: list[Field] = []
        self.collect_fields(body, inner, depth + 1, name, extra, cond)
        extra.append(Struct(name, spec.start_point[0] + 1, tuple(inner), cond))
        return "s:" + name


_EXPR_FORMS: dict[str, Callable[[NodeReader, Node, int], Expr]] = {
    "field_expression": NodeReader._field,
    "parenthesized_expression": NodeReader._first_child,
    "call_expression": NodeReader._call,
    "cast_expression": NodeReader._cast,
    "subscript_expression": NodeReader._subscript,
    "pointer_expression": NodeReader._pointer,
    "conditional_expression": NodeReader._conditional,
    "comma_expression": NodeReader._comma,
    "assignment_expression": NodeReader._assignment,
    "number_literal": NodeReader._literal,
    "char_literal": NodeReader._literal,
    "compound_literal_expression": NodeReader._compound_literal,
}
