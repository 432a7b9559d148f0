"""Stage 2 — clean: make kernel C palatable to the C grammar without moving a byte.

In: the raw bytes of one source file.
Out: bytes of exactly the same length, with every newline where it was, so that byte offsets and
line numbers of everything downstream still point into the original file. Three rewrites, all driven
by ``ksrcgraph/data``:

* annotations (``__user``, ``__rcu``, ``__init``, ``__printf(1, 2)``, ``__attribute__((...))`` ...)
  are replaced by spaces;
* function-defining macros (``SYSCALL_DEFINE3(socket, int, family, ...)``) become the C function head
  they expand to (``long sys_socket(int family, ...)``), padded with spaces;
* statement-like macros (``list_for_each_entry(pos, head, member) { ... }``) become ``while``, so their
  body stays inside the loop and no call in it is lost (an argument that is a statement, such as
  the fail action of ``scoped_cond_guard``, becomes ``0``);
* declaration-making macro invocations standing alone at the top level, without a semicolon
  (``DEV_CORE_STATS_INC(rx_dropped)``, ``BTF_ID(func, f)``, ``module_init(f)``), are replaced by spaces:
  their expansion is not visible here, and left in place they glue themselves to the next definition,
  which then parses under the macro's name or not at all;
* a label standing alone right before a directive line (``ncls:`` then ``#endif``) becomes the
  expression statement ``ncls;``: a label needs a statement, and without one the grammar hangs the
  statement after the ``#endif`` on the label, inside the ``#ifdef`` block, so its calls inherit the
  block's condition (labels are never read: only goto uses them);
* a ``/* comment */`` on a line continued by a backslash (inside a multi-line ``#define``) is
  replaced by spaces: the grammar ends the macro's value at such a comment, and the rest of the
  macro body spills into the file as code.

Directive lines (``#define __rcu``) are left alone: the macro definitions themselves are facts.
"""

from __future__ import annotations

import re
from functools import cache

from . import kdata
from .ctext import match_paren, split_args


class _Rules:
    """Compiled scanning rules. Every scan starts from a literal (fast substring search in C);
    only the few hits are examined in Python."""

    def __init__(self) -> None:
        words, with_args = kdata.annotations()
        us = sorted((w[2:] for w in words if w.startswith("__")), key=len, reverse=True)
        self.us_words = re.compile(rb"__(?:" + b"|".join(re.escape(w.encode()) for w in us) + rb")\b")
        self.other_words = tuple(
            re.compile(re.escape(w.encode()) + rb"\b") for w in sorted(words) if not w.startswith("__")
        )
        ua = sorted((w[2:] for w in with_args if w.startswith("__")), key=len, reverse=True)
        self.us_args = re.compile(rb"__(?:" + b"|".join(re.escape(w.encode()) for w in ua) + rb")\s*\(")
        self.other_args = tuple(
            re.compile(re.escape(w.encode()) + rb"\s*\(") for w in sorted(with_args) if not w.startswith("__")
        )
        self.containers = kdata.container_macros()
        self.container_re = re.compile(
            rb"\b(" + b"|".join(re.escape(n.encode()) for n in sorted(self.containers, key=len, reverse=True)) + rb")\s*\(")
        self.definers = kdata.definer_macros()
        self.loops = kdata.loop_macros()
        keys = {k for _, k, _ in self.definers} | {k for _, k in self.loops}
        self.keys = tuple(sorted(k.encode() for k in keys))


@cache
def _rules() -> _Rules:
    return _Rules()


def _word_start(buf: bytes, pos: int) -> bool:
    return pos == 0 or not (buf[pos - 1] == 0x5F or chr(buf[pos - 1]).isalnum())


def _identifier_at(buf: bytes, pos: int) -> tuple[int, int]:
    """Bounds of the identifier containing pos."""
    s = pos
    while s > 0 and (buf[s - 1] == 0x5F or 48 <= buf[s - 1] <= 57 or 65 <= buf[s - 1] <= 90 or 97 <= buf[s - 1] <= 122):
        s -= 1
    e = pos
    n = len(buf)
    while e < n and (buf[e] == 0x5F or 48 <= buf[e] <= 57 or 65 <= buf[e] <= 90 or 97 <= buf[e] <= 122):
        e += 1
    return s, e


_DIRECTIVE_RE = re.compile(rb"[ \t]*#[ \t]*(?:define|undef|ifdef|ifndef|if|elif)\b[^\n]*$")


_LOOKBACK = 4096  # a directive line is never longer: bounded look-back keeps huge one-line files linear


def _line_start(buf: bytes | bytearray, pos: int) -> int:
    """Start of the line holding pos, or -1 when it starts more than _LOOKBACK bytes back."""
    lo = max(0, pos - _LOOKBACK)
    nl = buf.rfind(b"\n", lo, pos)
    if nl < 0:
        return 0 if lo == 0 else -1
    return nl + 1


def _in_directive_head(buf: bytes | bytearray, pos: int) -> bool:
    """True when pos sits on a preprocessor directive line (before any continuation)."""
    start = _line_start(buf, pos)
    return start >= 0 and _DIRECTIVE_RE.match(bytes(buf[start:pos])) is not None


def _in_directive(buf: bytes | bytearray, pos: int) -> bool:
    """True when pos is inside a directive, including its backslash-continued lines."""
    start = _line_start(buf, pos)
    for _ in range(256):  # continuation lines of one directive
        if start < 0:
            return False
        if bytes(buf[start:pos]).lstrip().startswith(b"#"):
            return True
        if start >= 2 and buf[start - 2] == 0x5C:  # previous line ends with a backslash
            pos = start - 1
            start = _line_start(buf, pos)
            continue
        return False
    return False


def _blank(buf: bytearray, start: int, end: int) -> None:
    """Replace buf[start:end] by spaces, keeping newlines (and line continuations) in place."""
    seg = buf[start:end]
    buf[start:end] = bytes(0x0A if c == 0x0A else 0x20 for c in seg)


_COMMENTS = re.compile(rb"/\*.*?\*/|//[^\n]*", re.S)


def _uncommented(buf: bytearray, start: int, limit: int = 20000) -> bytes:
    """buf from start (limit bytes) with its comments blanked, same length: a comment inside a macro's
    arguments — ``/* see sendto(2 */`` — holds neither parentheses nor commas."""
    text = bytes(buf[start : start + limit])
    return _COMMENTS.sub(lambda m: b" " * len(m.group()), text) if b"/" in text else text


def _rewrite_definer(buf: bytearray, start: int, open_pos: int, prefix: str) -> bool:
    text = _uncommented(buf, open_pos)
    close = match_paren(text, 0)
    if close < 0:
        return False
    args = [b" ".join(a.split()) for a in split_args(text[1:close])]
    close += open_pos
    if not args or not re.fullmatch(rb"\w+", args[0]):
        return False
    rest = args[1:]
    if len(rest) % 2:
        return False
    params = b",".join(rest[i] + b" " + rest[i + 1] for i in range(0, len(rest), 2)) or b"void"
    head = b"long " + prefix.encode() + args[0] + b"(" + params + b")"
    span = bytes(buf[start : close + 1])
    packed = _pack_lines(head.split(b" "), span.split(b"\n"))
    if packed is None:
        return False
    buf[start : close + 1] = packed
    return True


def _pack_lines(tokens: list[bytes], lines: list[bytes]) -> bytes | None:
    """Lay tokens out (space-separated) over lines of the given lengths, newlines kept in place;
    None when they do not fit."""
    out: list[bytes] = []
    i = 0
    for seg in lines:
        cap = len(seg)
        cur = b""
        while i < len(tokens):
            tok = tokens[i]
            need = len(tok) + (1 if cur else 0)
            if len(cur) + need > cap:
                break
            cur = cur + b" " + tok if cur else tok
            i += 1
        out.append(cur + b" " * (cap - len(cur)))
    if i < len(tokens):
        return None
    return b"\n".join(out)


_STATEMENT_BEFORE = frozenset(b";{}):/")


def _statement_position(buf: bytes | bytearray, pos: int) -> bool:
    """True when the identifier at pos starts a statement (not a declaration or an expression)."""
    i = pos - 1
    while i >= 0 and buf[i] in b" \t\r\n":
        i -= 1
    if i < 0:
        return False
    if buf[i] in _STATEMENT_BEFORE:
        return True
    m = re.search(rb"(\w+)$", bytes(buf[max(0, i - 8) : i + 1]))
    return bool(m and m.group(1) in (b"else", b"do"))


def clean(src: bytes) -> bytes:
    """Return src with annotations blanked and macro forms rewritten; same length, same lines."""
    rules = _rules()
    buf = bytearray(src)
    for rx in (rules.us_words, *rules.other_words):
        for m in rx.finditer(src):
            if _word_start(src, m.start()) and not _in_directive_head(src, m.start()):
                buf[m.start() : m.end()] = b" " * (m.end() - m.start())
    for rx in (rules.us_args, *rules.other_args):
        for m in rx.finditer(src):
            if not _word_start(src, m.start()) or _in_directive_head(src, m.start()):
                continue
            close = match_paren(buf, m.end() - 1)
            if close > 0:
                _blank(buf, m.start(), close + 1)
    _blank_type_keywords(buf, rules)
    _blank_top_level_invocations(buf)
    for m in _CONTINUED_COMMENT.finditer(src):
        _blank(buf, m.start(), m.end())
    for m in _LABEL_BEFORE_DIRECTIVE.finditer(src):
        buf[m.start(1) : m.end(1)] = b";"
    snapshot = bytes(buf)
    seen: set[int] = set()
    for key in rules.keys:
        pos = snapshot.find(key)
        while pos >= 0:
            s, e = _identifier_at(snapshot, pos)
            pos = snapshot.find(key, e)
            if s in seen:
                continue
            seen.add(s)
            j = e
            while j < len(snapshot) and snapshot[j] in b" \t":
                j += 1
            if j >= len(snapshot) or snapshot[j] != 0x28 or _in_directive(snapshot, s):
                continue
            _rewrite_macro(buf, snapshot, snapshot[s:e].decode(), s, j, rules)
    return bytes(buf)


_LABEL_BEFORE_DIRECTIVE = re.compile(rb"(?m)^[ \t]*(?!default\b)[A-Za-z_]\w*[ \t]*(:)[ \t]*\r?\n(?=[ \t]*#)")
_TYPE_KEYWORD = re.compile(rb"^\s*(?:const\s+)?(struct|union|enum)\s+[A-Za-z_]\w*\s*$")


def _blank_type_keywords(buf: bytearray, rules: _Rules) -> None:
    """container_of(p, struct tcp_sock, sk): a type is not an expression; blank its ``struct``
    keyword so the argument parses as the identifier tcp_sock (extract still reads it as a type)."""
    src = bytes(buf)
    if not any(n.encode() in src for n in rules.containers):
        return
    for m in rules.container_re.finditer(src):
        k = rules.containers[m.group(1).decode()]
        close = match_paren(src, m.end() - 1, limit=4000)
        if close < 0:
            continue
        pos = m.end()
        for i, arg in enumerate(split_args(src[pos:close])):
            if i == k:
                tm = _TYPE_KEYWORD.match(arg)
                if tm:
                    s = pos + tm.start(1)
                    buf[s : s + len(tm.group(1))] = b" " * len(tm.group(1))
                break
            pos += len(arg) + 1


def _rewrite_macro(buf: bytearray, snapshot: bytes, name: str, start: int, open_pos: int, rules: _Rules) -> None:
    for pat, _key, prefix in rules.definers:
        if pat.match(name):
            _rewrite_definer(buf, start, open_pos, prefix)
            return
    n = len(name)
    if n < 5 or not any(pat.match(name) for pat, _ in rules.loops):
        return
    if not _statement_position(snapshot, start):
        return
    close = match_paren(snapshot, open_pos)
    if close < 0:
        return
    j = close + 1
    while j < len(snapshot) and snapshot[j] in b" \t\r\n":
        j += 1
    if j < len(snapshot) and snapshot[j] not in b";,)=?:|&+-*/.<>[]":
        buf[start : start + n] = b"while" + b" " * (n - 5)
        if not snapshot[open_pos + 1 : close].strip() and close + 1 - start >= 9:  # scoped_with_kernel_creds()
            buf[start : close + 1] = b"while (1)".ljust(close + 1 - start)
        _zero_statement_argument(buf, snapshot, name, open_pos, close)


def _zero_statement_argument(buf: bytearray, snapshot: bytes, name: str, open_pos: int, close: int) -> None:
    """``scoped_cond_guard(mutex_intr, return -EINTR, &m) { ... }``: the fail argument is a statement,
    which cannot stand in the head of the ``while`` the macro became; it is made ``0`` padded with
    spaces (data/cleanup_uses.tsv, column statement)."""
    k = kdata.cleanup_statement_args().get(name)
    if k is None:
        return
    pos = open_pos + 1
    for i, arg in enumerate(split_args(snapshot[pos:close])):
        if i == k:
            lead = len(arg) - len(arg.lstrip())
            if lead < len(arg):
                _blank(buf, pos, pos + len(arg))
                buf[pos + lead] = 0x30
            return
        pos += len(arg) + 1


# A one-line block comment followed by a line continuation (no "*/" inside it).
_CONTINUED_COMMENT = re.compile(rb"/\*(?:[^*\n]|\*(?!/))*\*/(?=[ \t]*\\\n)")


# A line that starts, in column 0, with ``NAME(`` is either the second line of a function head whose
# type sits on the line before (``static int\nfoo(int a)\n{``) or a macro invoked at file scope.
# (Searched from the newline: a literal first character makes the scan ~6x faster than ``^`` in
# multi-line mode. A file's first line is matched on its own.)
_TOP_CALL = re.compile(rb"\n([A-Za-z_]\w*)[ \t]*\(")
_FIRST_CALL = re.compile(rb"([A-Za-z_]\w*)[ \t]*\(")
_NOT_MACROS = frozenset(b"if while for switch return sizeof typeof __typeof__ do else case defined _Static_assert "
                        b"static_assert asm __asm__ _Generic".split())
_ENDS_DECLARATION = frozenset(b";})")


def _blank_top_level_invocations(buf: bytearray) -> None:
    """Blank ``MACRO(args)`` standing alone at file scope: it starts a line in column 0, its
    argument list ends its line, the line before it ends a declaration (``;``, ``}``, ``)``, a
    comment or a directive) and what follows is not a body, a ``;`` or the rest of an expression."""
    src = bytes(buf)
    n = len(src)
    first = _FIRST_CALL.match(src)
    for m in ([first] if first else []) + list(_TOP_CALL.finditer(src)):
        if m.group(1) in _NOT_MACROS:
            continue
        start = m.start(1)
        if not _after_declaration(src, start):
            continue
        close = match_paren(src, m.end() - 1, limit=4000)
        if close < 0:
            continue
        eol = src.find(b"\n", close)
        eol = n if eol < 0 else eol
        rest = src[close + 1 : eol].strip()
        if rest and not rest.startswith(b"//") and not (rest.startswith(b"/*") and rest.endswith(b"*/")):
            continue
        j = eol
        while j < n and src[j] in b" \t\r\n":
            j += 1
        if j < n and not (src[j] == 0x5F or src[j] == 0x23 or src[j] == 0x2F or chr(src[j]).isalpha()):
            continue  # a body, a ";", an operator: a function head or an expression
        _blank(buf, start, close + 1)


def _after_declaration(src: bytes, pos: int) -> bool:
    """True when the text before pos (the start of a line) ends a declaration, a comment or a
    directive — not a type that a function head on this line would continue."""
    before = src[max(0, pos - 256) : pos].rstrip()  # usually enough to hold the line before
    if not before and pos > 256:
        before = src[max(0, pos - _LOOKBACK) : pos].rstrip()
    if not before:
        return True  # start of file
    line = before[before.rfind(b"\n") + 1 :].strip()
    if line.endswith(b"\\"):
        return False  # inside a macro definition
    return line[-1] in _ENDS_DECLARATION or line.endswith(b"*/") or line.startswith((b"#", b"//"))
