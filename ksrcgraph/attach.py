"""Attachability: can a kprobe (or an fentry program) attach to a function of the built kernel, and
under which symbol?

In: the linked program (``features``, once per graph: the facts each prediction reads, stored as the
graph's ``attach`` part), and at query time a function's ``Features`` with, optionally, the
``symbols.SymbolTable`` of the built kernel.
Out: an ``Attach``: verdict ``yes`` / ``no`` / ``maybe``, the reason, the symbol names to use, whether
ftrace lists them, and whether this is the binary's word (``binary``) or a prediction from source.

From source (``predict``): the rules of ``data/attach_rules.tsv``, in order, over the function's
features — static, inline, in a header, the classes of the words in its head and of the file-scope
macros naming it (``data/attach_annotations.tsv``: ``__always_inline``, ``noinline``, ``notrace``,
``noinstr``, ``__init``, ``EXPORT_SYMBOL``, ...), how many call sites and calling functions the
linker resolved to it, how often its address is taken (stored in a table, assigned, passed as an
argument, named by ``INDIRECT_CALL_*``), its length in lines. The first rule that holds decides.
From a binary (``from_symbols``): the table's symbols for the name — the exact name or gcc's copies.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from typing import TYPE_CHECKING, NamedTuple

from . import kdata
from .link import dead

if TYPE_CHECKING:
    from .graph import CallGraph
    from .link import Program
    from .symbols import SymbolTable

PART = "attach"  # the graph part holding every function's Features (as plain tuples)


class Features(NamedTuple):
    static: bool
    inline: bool
    header: bool  # defined in a header
    attrs: str  # facts.Function.attrs
    lines: int  # length of the definition
    calls: int  # direct call sites resolved to it (in its file for a static of a .c file)
    callers: int  # distinct functions among them (a recursive call counts its own function)
    taken: int  # uses of its name as a value: initializers, assignments, arguments, INDIRECT_CALL_*,
    # file-scope macros (``NAME()`` in attrs)
    defs: int  # definitions (#if variants)
    recursive: bool  # calls itself
    out: int  # call sites in its body (a measure of its size besides lines)


class Attach(NamedTuple):
    verdict: str  # yes | no | maybe
    reason: str
    symbols: tuple[str, ...] = ()  # the names to attach to, entry points first
    traceable: bool | None = None  # ftrace lists one of them (fentry works); None: unknown
    binary: bool = False  # decided by the built kernel's symbol table, not predicted
    rule: str = ""  # the rule of attach_rules.tsv that decided (prediction)

    def doc(self) -> dict:
        return {"prediction": self.verdict, "reason": self.reason, "symbols": list(self.symbols),
                "traceable": self.traceable, "source": "binary" if self.binary else "predicted"}


# -- features, once per graph --------------------------------------------------------------------------
_VALUE_NAME = re.compile(r"(?<![\w.>])([A-Za-z_]\w*)\b(?!\s*[(\w])")


def _names_in(e: tuple, out: list[str], depth: int = 0) -> None:
    """Identifiers an expression uses as values (a called name is not one; its arguments are)."""
    if depth > 16 or not e:
        return
    k = e[0]
    if k == "v":
        out.append(e[1])
    elif k == "c":
        for a in e[2]:
            if a:
                _names_in(a, out, depth + 1)
    elif k == "x":
        _names_in(e[2], out, depth + 1)
    elif k in ("a", "d"):
        _names_in(e[1], out, depth + 1)
    elif k == "?":
        _names_in(e[1], out, depth + 1)
        _names_in(e[2], out, depth + 1)
    elif k == "{":
        for _path, v in e[2]:
            _names_in(v, out, depth + 1)


class _Counts:
    def __init__(self) -> None:
        self.calls: Counter[str] = Counter()
        self.callers: dict[str, set[str]] = defaultdict(set)
        self.taken: Counter[str] = Counter()
        self.out: Counter[str] = Counter()

    def take(self, prog: Program, fi: int, names: list[str] | tuple[str, ...]) -> None:
        for name in names:
            fid = prog.function_for(fi, name)
            if fid is not None:
                self.taken[fid] += 1


def _count_file(prog: Program, fi: int, c: _Counts) -> None:
    ff = prog.facts[fi]
    ids = prog.fn_ids[fi]
    for call in ff.calls:
        if dead(call.cond) or (0 <= call.caller < len(ids) and ids[call.caller] is None):
            continue
        if 0 <= call.caller < len(ids):
            c.out[ids[call.caller]] += 1  # type: ignore[index]
        if call.callee[0] == "v":
            fid = prog.function_for(fi, call.callee[1])
            if fid is not None:
                c.calls[fid] += 1
                c.callers[fid].add(ids[call.caller] or "" if 0 <= call.caller < len(ids) else "")
        c.take(prog, fi, call.candidates)
        if call.args and not call.args.isdigit():
            c.take(prog, fi, _VALUE_NAME.findall(call.args))
    for init in ff.inits:
        if not dead(init.cond):
            out: list[str] = []
            _names_in(init.value, out)
            c.take(prog, fi, out)
    for a in ff.assigns:
        if not dead(a.cond):
            out = []
            _names_in(a.rhs, out)
            c.take(prog, fi, out)
    for m in ff.macros:
        if m.params is not None and not dead(m.cond):
            for name, _args in m.calls:
                fid = prog.function_for(fi, name)
                if fid is not None:
                    c.calls[fid] += 1
                    c.callers[fid].add("#define " + m.name)


def features(prog: Program) -> dict[str, tuple]:
    """Every function's Features (as a plain tuple, for the store), by id."""
    c = _Counts()
    for fi in range(len(prog.facts)):
        _count_file(prog, fi, c)
    out: dict[str, tuple] = {}
    for fid, info in prog.funcs.items():
        d = info.primary
        fn = prog.facts[d.fi].functions[d.fn]
        callers = c.callers.get(fid, set())
        taken = c.taken[fid] + sum(1 for w in fn.attrs.split() if w.endswith("()"))
        out[fid] = tuple(Features(d.static, d.inline, d.file.endswith(".h"), fn.attrs, d.end_line - d.line + 1,
                                  c.calls[fid], len(callers), taken, len(info.defs), fid in callers, c.out[fid]))
    return out


# -- prediction from source ------------------------------------------------------------------------------
def classes(f: Features) -> dict[str, str]:
    """The annotation classes of f's attrs -> the first word giving each."""
    known = kdata.attach_annotations()
    out: dict[str, str] = {}
    for w in f.attrs.split():
        w = w.removesuffix("()")
        if w in known:
            out.setdefault(known[w][0], w)
    return out


_TERM = re.compile(r"^(!?)(@?[a-z_]+)(?:(<=|>=|==|<|>)(\d+))?$")
_OPS = {"<=": int.__le__, ">=": int.__ge__, "==": int.__eq__, "<": int.__lt__, ">": int.__gt__}


def holds(when: str, f: Features, cls: dict[str, str]) -> bool:
    """A rule's condition: terms joined by ``&``; a term is ``@class`` (an annotation class of
    attach_annotations.tsv), a feature name (true when set), ``feature<=N`` (also >=, ==, <, >), or
    ``global``; ``!`` negates a term."""
    for term in when.split("&"):
        m = _TERM.match(term.strip())
        if m is None:
            raise ValueError(f"attach_rules.tsv: bad term {term!r}")
        neg, name, op, num = m.groups()
        if name.startswith("@"):
            val = name[1:] in cls
        elif name == "global":
            val = not f.static
        elif name == "any":
            val = True
        elif op:
            val = _OPS[op](int(getattr(f, name)), int(num))
        else:
            val = bool(getattr(f, name))
        if val == bool(neg):
            return False
    return True


def predict(f: Features | tuple, cond: str = "") -> Attach:
    """The source-only prediction for a function with features f (cond: its ``#if``, if any)."""
    f = Features._make(f)
    cls = classes(f)
    for when, verdict, reason in kdata.attach_rules():
        if holds(when, f, cls):
            text = reason.format(**{k: v for k, v in f._asdict().items()}, **{"word_" + k: v for k, v in cls.items()})
            traceable = None
            if verdict != "no" and ("notrace" in cls or f.inline):
                word = cls.get("notrace", "inline")
                text += f"; {word} (no __fentry__ call): kprobe only, no fentry"
                traceable = False
            if verdict == "yes" and cond:
                text += f"; only when {cond}"
            return Attach(verdict, text, traceable=traceable, rule=when)
    return Attach("maybe", "no rule applies")


# -- the binary's word ---------------------------------------------------------------------------------
def from_symbols(names: list[str], table: SymbolTable, f: Features | tuple | None = None) -> Attach:
    """What the built kernel's symbol table says about a source function, known under names (its
    own, then the wrappers of a system call entry: ``__x64_sys_sendto``)."""
    syms = [s for n in names for s in table.of(n, module=None)]  # a kallsyms dump lists modules' symbols too
    entries = [s for s in syms if not s.where]
    partial = [s for s in syms if s.where == "partial"]
    if entries:
        found = tuple(dict.fromkeys(s.name for s in entries))
        tr = [table.is_traceable(s.name) for s in entries]
        traceable = None if tr[0] is None else any(tr)
        why = "out of line" if found == (names[0],) else "out of line as " + ", ".join(found)
        modules = sorted({s.module for s in entries if s.module})
        if modules:
            why += " in module " + ", ".join(modules)
        if len(entries) > len(found):
            why += f" ({len(entries)} copies{_namesakes(f)})"
        if traceable is False:
            why += "; not in available_filter_functions: kprobe only, no fentry"
        return Attach("yes", why, found, traceable, True)
    if partial:
        found = tuple(dict.fromkeys(s.name for s in partial))
        return Attach("maybe", f"only {', '.join(found)}: {partial[0].why} (the rest is inlined into its callers)",
                      found, None, True)
    if syms:
        return Attach("no", f"{syms[0].name}: {syms[0].why}", (), None, True)
    if "map" not in table.kinds:
        return Attach("no", "not in available_filter_functions (inlined, notrace, or not built)", (), False, True)
    return Attach("no", "no symbol: inlined into its callers, or not built in this configuration", (), None, True)


def _namesakes(f: Features | tuple | None) -> str:
    if f is None:
        return ""
    f = Features._make(f)
    if f.header:
        return ": one in each file that kept one out of line"
    return ": static functions of that name in other files are among them" if f.static else ""


# -- a function of a graph -------------------------------------------------------------------------------
def symbol_names(cg: CallGraph, nid: str) -> list[str]:
    """The names a function's symbols can have: its own, then for a system call entry (sys_X) the
    names its wrappers get (``__x64_sys_X``, ``__do_sys_X``, ...; data/syscall_aliases.tsv)."""
    name = cg.name(nid)
    out = [name]
    for entry in kdata.syscall_entries():
        if name.startswith(entry):
            first = {r["name"] for r in kdata.symbol_names() if r["kind"] == "syscall"}
            pres = sorted(kdata.syscall_aliases_of(entry), key=lambda p: (p not in first, p))
            out += [pre + name[len(entry):] for pre in pres]
            break
    return out


def _version(text: str | None) -> tuple[int, ...]:
    nums = re.findall(r"\d+", (text or "").split("-")[0])[:3]
    return tuple(int(n) for n in nums) if nums else (999,)


def _predicted_symbol(cg: CallGraph, nid: str) -> str:
    """The symbol name a predicted-attachable function should have (a system call entry: its
    architecture wrapper, data/symbol_names.tsv kind syscall)."""
    name = cg.name(nid)
    version = _version(cg.meta.get("version") or cg.meta.get("label"))
    for r in kdata.symbol_names():
        if r["kind"] == "syscall" and name.startswith("sys_") and version >= _version(r["end"]):
            return r["name"] + name[len("sys_"):]
    return name


def of_node(cg: CallGraph, nid: str, table: SymbolTable | None = None) -> Attach:
    """A function of cg: the binary's word when its symbol table is given, else the prediction."""
    feats = (cg.part(PART) or {}).get(nid)
    if table is not None:
        return from_symbols(symbol_names(cg, nid), table, feats)
    node = cg.nodes.get(nid)
    if feats is None or node is None or node.external:
        return Attach("maybe", "not defined in the indexed scope (widen --scope to predict it)")
    a = predict(feats, node.cond)
    return a._replace(symbols=(_predicted_symbol(cg, nid),)) if a.verdict != "no" else a


# -- hops of paths ---------------------------------------------------------------------------------------
def merge_hops(paths: list[list[str]]) -> list[str]:
    """The hop names of several paths in one order: each path's order kept, a name shared by paths
    once (the first path's order first, another path's own hops inserted where they fall)."""
    import difflib

    out: list[str] = []
    for p in paths:
        if not out:
            out = list(dict.fromkeys(p))
            continue
        merged: list[str] = []
        sm = difflib.SequenceMatcher(a=out, b=p, autojunk=False)
        for op, a0, a1, b0, b1 in sm.get_opcodes():
            merged += out[a0:a1]
            if op in ("replace", "insert"):
                merged += [x for x in p[b0:b1] if x not in out and x not in merged]
        out = merged
    return out


def nearest(ok: list[bool], i: int) -> int | None:
    """The position nearest to i whose hop is attachable: its caller side first at equal distance
    (a function inlined into its caller runs inside it); None when no hop is."""
    for d in range(1, len(ok)):
        for j in (i - d, i + d):
            if 0 <= j < len(ok) and ok[j]:
                return j
    return None
