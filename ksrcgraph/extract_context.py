"""The state of one file's extraction, shared by the extractors of ``extract``.

In: the file's path, raw and cleaned bytes, and what earlier extractors record: the ``#if`` map, the
byte spans of the functions, the guards (case labels, if conditions).
Out: answers by byte offset (``cond_at``, ``fn_at``, ``guard_at``) and, at the end, the
``facts.FileFacts`` the extractors filled in.
"""

from __future__ import annotations

import bisect
import re

from tree_sitter import Node

from .extract_nodes import NodeReader
from .facts import Assign, Call, Exit, FileFacts, Function, Global, Init, Local, Macro, Proto, Struct, Typedef

Match = dict[str, list[Node]]  # one query match: capture name -> the nodes captured


class Conditions:
    """Maps a byte offset to the conjunction of #if conditions around it (include guards dropped)."""

    def __init__(self, nodes: list[Node], reader: NodeReader) -> None:
        intervals: list[tuple[int, int, str]] = []
        for n in nodes:
            if n.type in ("preproc_if", "preproc_ifdef"):  # #elif / #else are reached through their #if
                _add_chain(n, reader, intervals)
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

    def at(self, pos: int) -> str:
        i = bisect.bisect_right(self.points, pos) - 1
        return self.values[i] if i >= 0 else ""


def _add_chain(n: Node, reader: NodeReader, intervals: list[tuple[int, int, str]]) -> None:
    """The intervals of an #if / #elif / #else chain, each with its own condition."""
    prior: list[str] = []
    cur: Node | None = n
    while cur is not None:
        alt = cur.child_by_field_name("alternative")
        end = alt.start_byte if alt is not None else cur.end_byte
        if cur.type == "preproc_else":
            if prior:
                intervals.append((cur.start_byte, cur.end_byte, " && ".join(_neg(c) for c in prior)))
            break
        own = _cond_of(cur, reader)
        if own is None and cur is n:
            break  # include guard
        own = own or "?"
        intervals.append((cur.start_byte, end, " && ".join([_neg(c) for c in prior] + [own])))
        prior.append(own)
        cur = alt


def _cond_of(n: Node, reader: NodeReader) -> str | None:
    if n.type in ("preproc_ifdef", "preproc_elifdef"):
        return _ifdef_cond(n, reader)
    c = n.child_by_field_name("condition")
    if c is None:
        return None
    return " ".join(reader.text(c).split())


def _ifdef_cond(n: Node, reader: NodeReader) -> str | None:
    """'X' for #ifdef X, '!X' for #ifndef X; None for an include guard (#ifndef X / #define X)."""
    text = reader.text
    name = n.child_by_field_name("name")
    if name is None:
        return None
    first = n.child(0)
    word = text(first) if first is not None else "#ifdef"
    nm = text(name)
    if "ndef" not in word:
        return nm
    nxt = name.next_named_sibling
    if n.type == "preproc_ifdef" and nxt is not None and nxt.type == "preproc_def":
        dn = nxt.child_by_field_name("name")
        if dn is not None and text(dn) == nm:
            return None
    return "!" + nm


def _neg(cond: str) -> str:
    if cond.startswith("!") and re.fullmatch(r"![\w]+", cond):
        return cond[1:]
    if re.fullmatch(r"[\w]+", cond):
        return "!" + cond
    return "!(" + cond + ")"


class FileContext(NodeReader):
    """One file's extraction: the bytes, what the extractors learnt so far, the facts so far."""

    def __init__(self, path: str, src: bytes, raw: bytes, root: Node) -> None:
        super().__init__(src, raw)
        self.path = path
        self.root = root
        self.conds = Conditions([], self)
        self._fstarts: list[int] = []
        self._fends: list[int] = []
        self._guard_starts: list[int] = []
        self._cold: list[tuple[int, int, int]] = []
        self._guard_info: list[tuple[int, tuple]] = []  # (end, guard) by start
        self.functions: list[Function] = []
        self.calls: list[Call] = []
        self.locals: list[Local] = []
        self.globals: list[Global] = []
        self.inits: list[Init] = []
        self.structs: list[Struct] = []
        self.typedefs: list[Typedef] = []
        self.assigns: list[Assign] = []
        self.macros: list[Macro] = []
        self.protos: list[Proto] = []
        self.exits: list[Exit] = []
        self.error_count = 0
        self.error_bytes = 0

    def cond_at(self, pos: int) -> str:
        """The #if condition around pos ('' when none)."""
        return self.conds.at(pos)

    # -- functions -------------------------------------------------------------------------------
    def add_function(self, fn: Function, node: Node) -> int:
        """Record a function defined by node (in source order); returns its index."""
        self.functions.append(fn)
        self._fstarts.append(node.start_byte)
        self._fends.append(node.end_byte)
        return len(self.functions) - 1

    def fn_at(self, pos: int) -> int:
        """Index of the function whose definition holds pos, or -1."""
        i = bisect.bisect_right(self._fstarts, pos) - 1
        if i >= 0 and pos < self._fends[i]:
            return i
        return -1

    # -- rare branches -------------------------------------------------------------------------
    def add_cold(self, start: int, end: int, score: int) -> None:
        """The bytes start..end are a branch the code marks as rare (see extract_calls)."""
        self._cold.append((start, end, score))

    def cold_at(self, pos: int) -> int:
        """How rare the code at pos is: the scores of the rare branches around it, added."""
        return sum(score for start, end, score in self._cold if start <= pos < end)

    # -- guards ----------------------------------------------------------------------------------
    def add_guard(self, start: int, end: int, guard: tuple) -> None:
        self._guard_starts.append(start)
        self._guard_info.append((end, guard))

    def sort_guards(self) -> None:
        """Order the guards by start, outer first; call once all are added."""
        order = sorted(range(len(self._guard_starts)), key=lambda i: (self._guard_starts[i], -self._guard_info[i][0]))
        self._guard_starts = [self._guard_starts[i] for i in order]
        self._guard_info = [self._guard_info[i] for i in order]

    def guards_around(self, pos: int, limit: int = 256) -> list[tuple]:
        """Every guard around pos, innermost first (looking back over at most limit guards)."""
        out = []
        i = bisect.bisect_right(self._guard_starts, pos) - 1
        while i >= 0 and limit > 0:
            end, g = self._guard_info[i]
            if pos < end:
                out.append(g)
            i -= 1
            limit -= 1
        return out

    def guard_at(self, pos: int) -> tuple | None:
        """The innermost guard around pos."""
        i = bisect.bisect_right(self._guard_starts, pos) - 1
        steps = 0
        while i >= 0 and steps < 64:
            end, g = self._guard_info[i]
            if pos < end:
                return g
            i -= 1
            steps += 1
        return None

    # -- the result ------------------------------------------------------------------------------
    def facts(self) -> FileFacts:
        return FileFacts(
            self.path,
            tuple(self.functions),
            tuple(self.calls),
            tuple(self.locals),
            tuple(self.globals),
            tuple(self.inits),
            tuple(self.structs),
            tuple(self.typedefs),
            tuple(self.assigns),
            tuple(self.macros),
            tuple(self.protos),
            tuple(self.exits),
            self.error_count,
            self.error_bytes,
            len(self.raw),
        )
