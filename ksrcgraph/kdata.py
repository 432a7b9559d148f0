"""Kernel knowledge loaded from the TSV files in ``ksrcgraph/data/``.

In: the data files (a header row, ``#`` comments, tab-separated columns, a ``reason`` column).
Out: small read-only tables used by clean, extract, link and the reference stack; and the digests of
the data and of the package's code that cache keys are made of.
Nothing about a particular kernel function lives in code; it lives in these files.
"""

from __future__ import annotations

import hashlib
import re
from functools import cache
from importlib import resources
from pathlib import Path
from typing import NamedTuple

from .ctext import type_from_text

DATA_PACKAGE = "ksrcgraph.data"


def _rows(name: str) -> list[dict[str, str]]:
    text = resources.files(DATA_PACKAGE).joinpath(name).read_text(encoding="utf-8")
    lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
    header = lines[0].split("\t")
    rows = []
    for ln in lines[1:]:
        cells = ln.split("\t")
        rows.append(dict(zip(header, cells + [""] * (len(header) - len(cells)))))
    return rows


# Data read only when a query is answered, never while facts or graphs are made (attachability of
# functions, symbol names of built kernels): left out of the cache keys, so that tuning them re-parses
# and re-links nothing.
QUERY_TIME_DATA = frozenset(("attach_annotations.tsv", "attach_rules.tsv", "symbol_names.tsv"))


@cache
def data_digest() -> str:
    """Hash of every data file but QUERY_TIME_DATA: part of the extractor version (a data change
    re-extracts)."""
    h = hashlib.sha256()
    for entry in sorted(resources.files(DATA_PACKAGE).iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".tsv") and entry.name not in QUERY_TIME_DATA:
            h.update(entry.name.encode())
            h.update(entry.read_bytes())
    return h.hexdigest()[:16]


# The modules that turn a file's bytes into its facts (the C front end and what it imports; a test
# checks the closure): the facts cache is keyed by their code, so a change elsewhere keeps every
# file's facts. The graph is keyed by all the code but the command line and the rendering.
FRONT_END = ("clean", "ctext", "extract", "facts", "kdata")
# code that only reads a built graph (commands, reports, queries, replay): changing it rebuilds nothing
NOT_IN_GRAPH = ("cli/", "report/", "query.py", "diff.py", "refstack/replay.py", "refstack/socket_paths.py",
                "refstack/model.py")


@cache
def package_digest(only: tuple[str, ...] = (), but: tuple[str, ...] = ()) -> str:
    """Hash of the package's code for cache keys — the ``.py`` files under ``ksrcgraph/`` whose module
    name starts with one of ``only`` (all when empty) and none of ``but``, and the query files — so
    that facts and graphs made by other code are never reused. (The data files go into
    ``data_digest``.)"""
    h = hashlib.sha256()
    root = Path(__file__).resolve().parent
    code = [(p.relative_to(root).as_posix(), p) for p in root.rglob("*.py") if "__pycache__" not in p.parts]
    for rel, p in sorted(code):
        if (only and not rel.startswith(only)) or rel.startswith(but):
            continue
        h.update(rel.encode() + b"\0")
        h.update(p.read_bytes())
    queries = resources.files("ksrcgraph.queries")
    for entry in sorted(queries.iterdir(), key=lambda p: p.name):
        if entry.name.endswith(".scm"):
            h.update(entry.name.encode() + b"\0")
            h.update(entry.read_bytes())
    return h.hexdigest()[:12]


@cache
def annotations() -> tuple[frozenset[str], frozenset[str]]:
    """(words, with_args): annotation identifiers blanked alone / with their argument list."""
    words, args = set(), set()
    for r in _rows("annotations.tsv"):
        (args if r["kind"] == "args" else words).add(r["name"])
    return frozenset(words), frozenset(args)


@cache
def loop_macros() -> tuple[tuple[re.Pattern[str], str], ...]:
    """(full-name regex, literal key) of statement-like macros (loop_macros.tsv, scoped_blocks.tsv)."""
    rows = _rows("loop_macros.tsv") + _rows("scoped_blocks.tsv")
    return tuple((re.compile("^(?:" + r["pattern"] + ")$"), r["key"]) for r in rows)


@cache
def definer_macros() -> tuple[tuple[re.Pattern[str], str, str], ...]:
    """(full-name regex, literal key, name prefix) of function-defining macros."""
    return tuple(
        (re.compile("^(?:" + r["pattern"] + ")$"), r["key"], r["prefix"]) for r in _rows("definer_macros.tsv")
    )


@cache
def definer_prefixes() -> tuple[str, ...]:
    """The non-empty name prefixes definer macros give the functions they make (``sys_``, ...)."""
    return tuple(r["prefix"] for r in _rows("definer_macros.tsv") if r["prefix"])


@cache
def always_defined() -> frozenset[str]:
    """Macros every kernel build defines (``__KERNEL__``): an #if on one is no condition."""
    return frozenset(r["name"] for r in _rows("always_defined.tsv"))


@cache
def branch_hints() -> dict[str, str]:
    """Branch-prediction hint word -> the branch it marks as rare ("then" / "else")."""
    return {r["word"]: r["rare"] for r in _rows("branch_hints.tsv")}


@cache
def syscall_entries() -> tuple[str, ...]:
    """Prefixes of system call entry functions (``sys_``, ``compat_sys_``), the native one first."""
    return tuple(dict.fromkeys(r["entry"] for r in _rows("syscall_aliases.tsv")))


@cache
def syscall_aliases_of(entry: str) -> tuple[str, ...]:
    """The other prefixes under which an entry ``<entry>X`` is known (``__x64_sys_`` for ``sys_``)."""
    return tuple(sorted((r["prefix"] for r in _rows("syscall_aliases.tsv") if r["entry"] == entry
                         and r["prefix"] != entry), key=len, reverse=True))


@cache
def syscall_prefixes() -> tuple[str, ...]:
    """Alias prefixes of system call entries, longest first."""
    return tuple(sorted((r["prefix"] for r in _rows("syscall_aliases.tsv")), key=len, reverse=True))


class IndirectCallMacro(NamedTuple):
    pointer: int  # index of the argument holding the pointer called
    candidates: int  # how many candidate function names follow it


@cache
def indirect_call_macros() -> dict[str, IndirectCallMacro]:
    return {r["name"]: IndirectCallMacro(int(r["pointer"]), int(r["candidates"]))
            for r in _rows("indirect_call_macros.tsv")}


@cache
def transparent_macros() -> dict[str, int]:
    return {r["name"]: int(r["arg"]) for r in _rows("transparent_macros.tsv")}


@cache
def container_macros() -> dict[str, int]:
    """Macro -> position of its argument that is a type, the type of its value (container_of, and
    the typed allocators of typed_alloc_macros.tsv)."""
    rows = _rows("container_macros.tsv") + _rows("typed_alloc_macros.tsv")
    return {r["name"]: int(r["arg"]) for r in rows}


@cache
def typed_names() -> dict[str, str]:
    """Identifier -> the TypeRef of the object it names (``s:task_struct``), for objects declared
    outside the scope (typed_names.tsv, where the type is written as C: ``struct task_struct *``)."""
    return {r["name"]: type_from_text(r["type"].rstrip(" *")) or "" for r in _rows("typed_names.tsv")}


class StoreMacro(NamedTuple):
    dest: int  # index of the argument stored into
    value: int  # index of the argument stored
    deref: bool  # the destination argument is a pointer to the place (&x->f)


@cache
def store_macros() -> dict[str, StoreMacro]:
    return {r["name"]: StoreMacro(int(r["dest"]), int(r["value"]), r["deref"] == "1") for r in _rows("store_macros.tsv")}


@cache
def registrations() -> dict[str, tuple[int, int, str]]:
    return {r["function"]: (int(r["arg"]), int(r["key"]), r["registers"]) for r in _rows("registrations.tsv")}


@cache
def guarded_calls() -> frozenset[str]:
    """Calls whose guard (case label / if condition) is recorded: the reference stack needs them."""
    return frozenset(r["function"] for r in _rows("guarded_calls.tsv"))


@cache
def exit_conditions() -> tuple[str, ...]:
    """Texts that make an ``if (COND) return ...;`` an early exit worth a fact (facts.Exit)."""
    return tuple(r["contains"] for r in _rows("early_exits.tsv"))


@cache
def refstack_rules() -> tuple[tuple[str, str, str, str], ...]:
    """(struct, field or *, state, state field or *) per rule."""
    out = []
    for r in _rows("refstack_rules.tsv"):
        struct, _, field = r["slot"].partition(".")
        out.append((struct, field, r["state"], r["field"]))
    return tuple(out)


@cache
def refstack_families() -> dict[str, dict[str, str]]:
    return {r["family"]: r for r in _rows("refstack_families.tsv")}


@cache
def refstack_state() -> dict[str, tuple[str, str]]:
    return {r["state"]: (r["how"], r["value"]) for r in _rows("refstack_state.tsv")}


class CleanupDefiner(NamedTuple):
    """A cleanup.h definer: argument positions (-1 for none) of the class name, the name suffix,
    the constructor's and the destructor's expressions (exit -2: the destructor of the base class),
    and where the constructor's parameters start (params_at) or their fixed name (params)."""

    name: int
    ext: int
    init: int
    exit: int
    params_at: int
    params: tuple[str, ...]
    constructor: str  # name template: "class_{name}_constructor" ("-" for none)
    destructor: str


def _position(cell: str) -> int:
    return -1 if cell in ("-", "") else -2 if cell == "base" else int(cell)


@cache
def cleanup_definers() -> dict[str, CleanupDefiner]:
    """Definer macro name -> how its arguments define a class (data/cleanup_definers.tsv)."""
    out = {}
    for r in _rows("cleanup_definers.tsv"):
        fixed = not r["params"].isdigit()
        out[r["definer"]] = CleanupDefiner(
            _position(r["name"]), _position(r["ext"]), _position(r["init"]), _position(r["exit"]),
            -1 if fixed else int(r["params"]), (r["params"],) if fixed and r["params"] != "-" else (),
            r["constructor"], r["destructor"])
    return out


class CleanupUse(NamedTuple):
    """A cleanup.h use macro: argument position of the class name; where the constructor's
    arguments are (a position, -1 for the list that follows the macro, -2 for none); the name
    templates of the functions it calls; whether the scope is the statement the macro heads."""

    cls: int
    args: int
    constructor: str
    destructor: str
    body: bool


@cache
def cleanup_uses() -> dict[str, CleanupUse]:
    """Use macro name -> CleanupUse (data/cleanup_uses.tsv)."""
    where = {"next": -1, "-": -2}
    return {r["macro"]: CleanupUse(int(r["class"]), where[r["args"]] if r["args"] in where else int(r["args"]),
                                   r["constructor"], r["destructor"], r["scope"] == "body")
            for r in _rows("cleanup_uses.tsv")}


@cache
def cleanup_statement_args() -> dict[str, int]:
    """Use macro name -> position of its argument that is a statement (data/cleanup_uses.tsv)."""
    return {r["macro"]: int(r["statement"]) for r in _rows("cleanup_uses.tsv") if r["statement"].isdigit()}


# -- attachability (issue 11); QUERY_TIME_DATA ---------------------------------------------------------
@cache
def symbol_names() -> tuple[dict[str, str], ...]:
    """Rows of symbol_names.tsv: clone suffixes, text ranges refusing kprobes, the blacklist prefix."""
    return tuple(_rows("symbol_names.tsv"))


@cache
def attach_annotations() -> dict[str, tuple[str, str]]:
    """A word of a function's attrs (facts.Function.attrs) -> (class, reason)."""
    return {r["word"]: (r["class"], r["reason"]) for r in _rows("attach_annotations.tsv")}


@cache
def attach_rules() -> tuple[tuple[str, str, str], ...]:
    """(condition, verdict, reason) of attach_rules.tsv, in order: the first that holds decides."""
    return tuple((r["when"], r["verdict"], r["reason"]) for r in _rows("attach_rules.tsv"))
