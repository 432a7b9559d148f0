"""Stages 3–4 — parse and extract: cleaned C bytes in, ``facts.FileFacts`` out.

In: a relative path and the raw bytes of one file. The bytes go through ``clean.clean`` and are
parsed by tree-sitter-c; the patterns of ``queries/*.scm`` select the nodes (in C); Python only
looks at the matches, never walks the whole tree.
Out: a ``FileFacts`` of plain tuples (see ``facts``). The ``extract*`` modules are the only ones that
touch tree-sitter objects; none leaves them.

One extractor per query file, run in the order of ``EXTRACTORS``: each gets the matches of its own
file — told apart by their capture names, all files compiled as one query for a single pass over
the tree — and the file's ``FileContext``, where it appends facts and what later extractors need
(the ``#if`` map, the function spans, the guards).

A file that does not parse cleanly is not an error: facts come from what parsed, and the number of
ERROR/MISSING nodes and the bytes no construct could absorb are counted.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import cache
from importlib import resources

import tree_sitter_c
from tree_sitter import Language, Node, Parser, Query, QueryCursor

from . import extract_calls, extract_cleanup, extract_decls, extract_preproc, kdata
from .clean import clean
from .extract_context import FileContext, Match
from .facts import FileFacts

# Bump when the facts produced for the same bytes change; part of the cache key with the data digest.
EXTRACTOR_VERSION = 6

Extractor = Callable[[FileContext, list[Match]], None]


def errors(ctx: FileContext, matches: list[Match]) -> None:
    """ERROR and MISSING nodes counted, and the bytes of the tokens inside ERROR nodes."""
    if not ctx.root.has_error:
        return
    ctx.error_count = len(matches)
    for m in matches:
        if "error" in m:
            for ch in m["error"][0].children:
                if ch.child_count == 0 and not ch.is_missing:
                    ctx.error_bytes += ch.end_byte - ch.start_byte


# (query file, its extractor), in the order they run: the #if map first (every fact records its
# condition), then functions (every later fact records the function around it), then the guards
# (calls and assignments record theirs).
EXTRACTORS: tuple[tuple[str, Extractor], ...] = (
    ("conditions", extract_preproc.conditions),
    ("functions", extract_decls.functions),
    ("guards", extract_calls.guards),
    ("declarations", extract_decls.declarations),
    ("calls", extract_calls.calls),
    ("assignments", extract_calls.assignments),
    ("structs", extract_decls.structs),
    ("typedefs", extract_decls.typedefs),
    ("macros", extract_preproc.macros),
    ("errors", errors),
)
QUERY_FILES = tuple(name for name, _ in EXTRACTORS)


@cache
def language() -> Language:
    return Language(tree_sitter_c.language())


@cache
def queries() -> tuple[Query, dict[str, str]]:
    """All query files compiled as one query (one pass over the tree), and the query file each
    top-level capture name (``call``, ``decl``, ``if``, ...: the names without a dot) comes from."""
    lang = language()
    pkg = resources.files("ksrcgraph.queries")
    texts: list[str] = []
    owner: dict[str, str] = {}
    for name in QUERY_FILES:
        text = pkg.joinpath(name + ".scm").read_text(encoding="utf-8")
        own = Query(lang, text)
        for i in range(own.capture_count):
            capture = own.capture_name(i)
            if "." not in capture:
                if owner.setdefault(capture, name) != name:
                    raise ValueError(f"capture @{capture} is used by {owner[capture]}.scm and {name}.scm")
        texts.append(text)
    return Query(lang, "\n".join(texts)), owner


@cache
def _parser() -> Parser:
    return Parser(language())


def extractor_key() -> str:
    """Cache key component: facts for the same bytes are reusable while this does not change."""
    return f"x{EXTRACTOR_VERSION}-{kdata.data_digest()}-{kdata.package_digest(only=kdata.FRONT_END)}"


def _matches_by_file(root: Node) -> dict[str, list[Match]]:
    """The query matches under root, grouped by the query file their top-level capture comes from."""
    query, owner = queries()
    by_file: dict[str, list[Match]] = {name: [] for name in QUERY_FILES}
    by_capture = {capture: by_file[name] for capture, name in owner.items()}
    for _, m in QueryCursor(query).matches(root):
        for capture in m:
            bucket = by_capture.get(capture)
            if bucket is not None:
                bucket.append(m)
                break
    return by_file


def extract(path: str, raw: bytes) -> FileFacts:
    """Facts of one file. Never raises on bad C; raises only on programming errors."""
    src = clean(raw)
    tree = _parser().parse(src)
    ctx = FileContext(path, src, raw, tree.root_node)
    matches = _matches_by_file(tree.root_node)
    for name, extractor in EXTRACTORS:
        extractor(ctx, matches[name])
    extract_cleanup.scan(ctx)  # cleanup.h classes and their uses: read from the raw text, no query
    return ctx.facts()
