"""C read as text, where no syntax tree is at hand: parentheses, argument lists, type names.

In: C text, as ``bytes`` (clean works on the raw file, extract on macro bodies and ``container_of``
arguments) or as ``str`` (link reads the argument lists kept in ``facts.Call.args``).
Out: positions, pieces of the same type as the input, ``TypeRef`` strings (see ``facts``).

One implementation serves both text types: each scanning pattern is compiled once for ``bytes`` and
once for ``str``. Nothing here knows a kernel name.
"""

from __future__ import annotations

import re
from typing import AnyStr


def _both(pattern: str) -> dict[type, re.Pattern]:
    return {str: re.compile(pattern), bytes: re.compile(pattern.encode())}


def _for(patterns: dict[type, re.Pattern], text: str | bytes | bytearray) -> re.Pattern:
    return patterns[str] if isinstance(text, str) else patterns[bytes]


# group 1: an opening parenthesis; no group: a closing one
_PARENS = _both(r"(\()|\)")
# group 1: an opening bracket, group 2: a closing one; no group: a comma
_ARG_MARKS = _both(r"([(\[{])|([)\]}])|,")
_COMMENT = re.compile(r"/\*.*?\*/|//[^\n]*", re.S)


def match_paren(text: AnyStr | bytearray, open_pos: int, limit: int = 20000) -> int:
    """Index of the ")" matching the "(" at open_pos, or -1 (unbalanced, or not closed within
    limit characters)."""
    depth = 0
    for m in _for(_PARENS, text).finditer(text, open_pos, min(len(text), open_pos + limit)):
        if m.lastindex:
            depth += 1
            continue
        depth -= 1
        if depth == 0:
            return m.start()
    return -1


def split_args(text: AnyStr) -> list[AnyStr]:
    """An argument list (without its outer parentheses) split on its top-level commas: commas
    inside (), [] or {} do not split."""
    out = []
    depth = start = 0
    for m in _for(_ARG_MARKS, text).finditer(text):
        group = m.lastindex
        if group == 1:
            depth += 1
        elif group == 2:
            depth -= 1
        elif depth == 0:
            out.append(text[start : m.start()])
            start = m.end()
    out.append(text[start:])
    return out


def split_arg_text(text: str) -> list[str]:
    """An argument list as written in a source file, comments dropped, split on its top-level
    commas."""
    if "/" in text:
        text = _COMMENT.sub(" ", text)
    return split_args(text)


# --------------------------------------------------------------------------------------------------
# types written as text

_STRUCT_TEXT = re.compile(r"^\s*(?:const\s+|volatile\s+)*(struct|union|enum)?\s*([A-Za-z_]\w*)\s*[*\s]*$")
_TYPE_TEXT = re.compile(
    r"^\s*(?:const\s+|volatile\s+)*(?:(?:struct|union|enum)\s+)?[A-Za-z_]\w*(?:\s+[A-Za-z_]\w*)*[\s*]*$")
_C_SCALARS = frozenset(
    "void char short int long float double signed unsigned bool _Bool u8 u16 u32 u64 s8 s16 s32 s64 "
    "__u8 __u16 __u32 __u64 __s8 __s16 __s32 __s64 __be16 __be32 __be64 __le16 __le32 __le64 size_t "
    "ssize_t gfp_t".split()
)


def type_from_text(text: str) -> str | None:
    """The TypeRef a type name written as text stands for: 'struct tcp_sock' -> 's:tcp_sock',
    'socket_lock_t' -> 't:socket_lock_t', 'unsigned' -> 'p'; None when text is no type name."""
    m = _STRUCT_TEXT.match(text)
    if not m:
        return None
    if m.group(1):
        return "s:" + m.group(2)
    if m.group(2) in _C_SCALARS:
        return "p"
    return "t:" + m.group(2)


def looks_like_type(text: str) -> bool:
    """True when text can be the type of a cast: 'const struct sock *', 'unsigned long'."""
    return _TYPE_TEXT.match(text) is not None
